"""`render-summary`: the same command in the Batch container and on a laptop.

Reads one render-log CSV (local path or s3:// URI) as a stream of blocks parsed on a thread per CPU,
quarantines malformed rows with the reason as they come, loads the file's per-device sums into the
warehouse through staged Parquet (render_summary.warehouse), and prints one run summary on stdout: a
CloudWatch Embedded Metric Format line (job_runtime.metrics) when the file was loaded, a plain JSON line
with the error when it was not. Flags fall back to environment variables so the Batch job definition
passes only --input per run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from job_runtime import metrics
from job_runtime.errors import EXIT_OK, JobError
from render_summary import storage, transform
from render_summary.warehouse import PostgresWarehouse, RedshiftDataWarehouse, Warehouse, stage_table

log = logging.getLogger("render_summary")

JOB = "render_summary"  # the Job dimension of its metrics
PIPELINE = "render-logs"  # pipelines/registry.py: the Pipeline dimension unless METRICS_PIPELINE says
MAX_WORKERS = 8  # each worker holds a block or two in memory
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class RunSummary:
    input: str  # as given; the warehouse keys rows by its absolute form
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    devices: int
    quarantine: str | None
    table: str
    status: str


def run(
    input_uri: str,
    quarantine_prefix: str,
    warehouse: Warehouse | None,
    schema: str,
    table: str,
    batch_bytes: int = transform.DEFAULT_BATCH_BYTES,
    workers: int | None = None,
) -> tuple[RunSummary, pa.Table]:
    """Whole job for one file. `warehouse=None` computes and returns the summary without loading it."""
    transform.defer_pandas()
    # Local files are keyed by absolute file:// URI so reruns from another directory stay idempotent.
    source_uri = input_uri if storage.is_s3(input_uri) else Path(input_uri).resolve().as_uri()
    workers = workers or min(_cpus(), MAX_WORKERS)
    chunks = storage.iter_chunks(input_uri, batch_bytes)
    with ThreadPoolExecutor(workers, thread_name_prefix="render-summary") as pool:
        # Blocks are parsed on `workers` threads (Arrow releases the GIL) and merged here in file order.
        _header, batches = transform.parse(chunks, partial(_in_order, pool, workers))
        q_uri = storage.quarantine_uri(quarantine_prefix, input_uri)
        # One running per-device partial: memory tracks devices, not blocks.
        partials = transform.merge_partials([])
        rows_in = rows_quarantined = 0
        with storage.QuarantineWriter(q_uri) as quarantine:
            for batch in batches:
                partials = transform.merge_partials([partials, batch.partial])
                quarantine.write(batch.rejected)
                rows_in += batch.rows
                rows_quarantined += len(batch.rejected)
                log.info("read %d row(s) so far from %s", rows_in, input_uri)
            quarantine.commit()
    summary = transform.finalize(partials)

    if warehouse is not None:
        # Also when no row is valid: a corrected file with none removes what the file contributed before.
        warehouse.load(stage_table(partials, source_uri), source_uri, schema, table)
        log.info("merged %d device row(s) of %s into %s.%s", summary.num_rows, source_uri, schema, table)

    result = RunSummary(
        input=input_uri,
        rows_in=rows_in,
        rows_loaded=rows_in - rows_quarantined,
        rows_quarantined=rows_quarantined,
        devices=summary.num_rows,
        quarantine=q_uri if rows_quarantined else None,
        table=f"{schema}.{table}",
        status="succeeded",
    )
    assert result.rows_in == result.rows_loaded + result.rows_quarantined
    assert result.rows_loaded == (pc.sum(summary.column("log_count")).as_py() or 0)
    return result, summary


def _cpus() -> int:
    """CPUs this process may use (a container's affinity), where the OS says; else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _in_order(pool: Executor, ahead: int, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """`map` on the pool with results in input order and at most `ahead` + 1 items in flight (bounded memory)."""
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="render-summary", description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="render-log CSV: local path or s3://bucket/key")
    p.add_argument(
        "--quarantine",
        default=env("RENDER_SUMMARY_QUARANTINE"),
        help="prefix (local dir or s3:// URI) for rejected rows [env RENDER_SUMMARY_QUARANTINE]",
    )
    p.add_argument(
        "--warehouse",
        choices=["postgres", "redshift-data", "none"],
        default=env("WAREHOUSE_BACKEND", "none"),
        help="where to load [env WAREHOUSE_BACKEND]",
    )
    p.add_argument("--postgres-dsn", default=env("POSTGRES_DSN"), help="[env POSTGRES_DSN]")
    p.add_argument("--workgroup", default=env("REDSHIFT_WORKGROUP"), help="[env REDSHIFT_WORKGROUP]")
    p.add_argument("--database", default=env("REDSHIFT_DATABASE"), help="[env REDSHIFT_DATABASE]")
    p.add_argument(
        "--stage",
        default=env("RENDER_SUMMARY_STAGE"),
        help="prefix for the staged Parquet, removed after the load: s3:// for redshift-data, a local "
        "directory for postgres (default: the temporary directory) [env RENDER_SUMMARY_STAGE]",
    )
    p.add_argument(
        "--copy-role",
        default=env("REDSHIFT_COPY_ROLE_ARN"),
        help="IAM role ARN Redshift's COPY reads the stage with [env REDSHIFT_COPY_ROLE_ARN]",
    )
    p.add_argument("--schema", default=env("SUMMARY_SCHEMA", "public"))
    p.add_argument("--table", default=env("SUMMARY_TABLE", "performance_summary"))
    p.add_argument(
        "--batch-bytes",
        type=int,
        default=transform.DEFAULT_BATCH_BYTES,
        help="bytes read and parsed at a time (memory grows with it, never with the file)",
    )
    args = p.parse_args(argv)
    if not args.quarantine:
        p.error("--quarantine (or RENDER_SUMMARY_QUARANTINE) is required: rejected rows need a home")
    if args.warehouse == "postgres" and not args.postgres_dsn:
        p.error("--warehouse postgres needs --postgres-dsn (or POSTGRES_DSN)")
    if args.warehouse == "redshift-data" and not (args.workgroup and args.database):
        p.error("--warehouse redshift-data needs --workgroup and --database (or REDSHIFT_WORKGROUP/REDSHIFT_DATABASE)")
    if args.warehouse == "redshift-data" and not (args.stage and storage.is_s3(args.stage) and args.copy_role):
        p.error(
            "--warehouse redshift-data needs an s3:// --stage and --copy-role "
            "(or RENDER_SUMMARY_STAGE/REDSHIFT_COPY_ROLE_ARN)"
        )
    if args.batch_bytes < 1:
        p.error("--batch-bytes must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    started = time.monotonic()
    args = parse_args(argv)
    stack, pipeline = metrics.dimensions_from_env(PIPELINE)
    warehouse: Warehouse | None = None
    if args.warehouse == "postgres":
        stage = args.stage or str(Path(tempfile.gettempdir()) / "render-summary-stage")
        warehouse = PostgresWarehouse(args.postgres_dsn, stage)
    elif args.warehouse == "redshift-data":
        warehouse = RedshiftDataWarehouse(args.workgroup, args.database, args.stage, args.copy_role)
    try:
        result, summary = run(args.input, args.quarantine, warehouse, args.schema, args.table, args.batch_bytes)
    except JobError as exc:
        log.error("%s", exc)
        print(
            json.dumps(
                {
                    "event": "run_summary",
                    **metrics.dimensions(stack, pipeline, JOB),
                    "input": args.input,
                    "status": "failed",
                    "exit_code": exc.exit_code,
                    "error": str(exc),
                }
            ),
            flush=True,
        )
        return exc.exit_code
    metrics.emit_run_summary(
        {"event": "run_summary", **asdict(result)},
        stack=stack,
        pipeline=pipeline,
        job=JOB,
        duration_seconds=time.monotonic() - started,
        metrics={metrics.FILES: 1, metrics.DEVICES: result.devices},
    )
    if args.warehouse == "none":
        print(summary.to_pandas().to_string(index=False))  # for a person: pandas' table layout
    return EXIT_OK
