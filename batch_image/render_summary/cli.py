"""`render-summary`: the same command in the Batch container and on a laptop.

Reads one render-log CSV (local path or s3:// URI), quarantines malformed rows with the reason,
loads the per-device summary into the warehouse, and logs one JSON run summary. Flags fall back
to environment variables so the Batch job definition passes only --input per run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from job_errors import EXIT_OK, JobError

from render_summary import storage, transform
from render_summary.warehouse import PostgresWarehouse, RedshiftDataWarehouse, Warehouse, load_statements

log = logging.getLogger("render_summary")


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
    chunk_rows: int = transform.DEFAULT_CHUNK_ROWS,
) -> tuple[RunSummary, pd.DataFrame]:
    """Whole job for one file. `warehouse=None` computes and returns the summary without loading it."""
    # Local files are keyed by absolute file:// URI so reruns from another directory stay idempotent.
    source_uri = input_uri if storage.is_s3(input_uri) else Path(input_uri).resolve().as_uri()
    _header, chunks = transform.read_chunks(storage.iter_lines(input_uri), chunk_rows)
    # One running per-device partial: memory tracks devices, not chunks.
    partial = transform.merge_partials([])
    rejected: list[pd.DataFrame] = []
    rows_in = 0
    for chunk in chunks:
        valid, quarantined = transform.validate(chunk.rows)
        partial = transform.merge_partials([partial, transform.partial_aggregate(valid)])
        rejected += [r for r in (chunk.rejected, quarantined) if not r.empty]
        rows_in += len(chunk.rows) + len(chunk.rejected)
        log.info("read %d row(s) so far from %s", rows_in, input_uri)
    summary = transform.finalize(partial)
    rows_quarantined = sum(len(r) for r in rejected)

    q_uri = storage.quarantine_uri(quarantine_prefix, input_uri)
    if rejected:
        all_rejected = pd.concat(rejected, ignore_index=True).sort_values("line_number", ignore_index=True)
        storage.write_quarantine(q_uri, all_rejected)
    else:
        storage.remove_stale_quarantine(q_uri)

    if warehouse is not None and not summary.empty:
        warehouse.run_transaction(load_statements(summary, source_uri, schema, table))
        log.info("merged %d device row(s) into %s.%s", len(summary), schema, table)
    elif summary.empty:
        log.info("no valid rows in %s: %s.%s left untouched", input_uri, schema, table)

    result = RunSummary(
        input=input_uri,
        rows_in=rows_in,
        rows_loaded=rows_in - rows_quarantined,
        rows_quarantined=rows_quarantined,
        devices=len(summary),
        quarantine=q_uri if rejected else None,
        table=f"{schema}.{table}",
        status="succeeded",
    )
    assert result.rows_in == result.rows_loaded + result.rows_quarantined
    assert result.rows_loaded == int(summary["log_count"].sum())
    return result, summary


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
    p.add_argument("--schema", default=env("SUMMARY_SCHEMA", "public"))
    p.add_argument("--table", default=env("SUMMARY_TABLE", "performance_summary"))
    p.add_argument("--chunk-rows", type=int, default=transform.DEFAULT_CHUNK_ROWS)
    args = p.parse_args(argv)
    if not args.quarantine:
        p.error("--quarantine (or RENDER_SUMMARY_QUARANTINE) is required: rejected rows need a home")
    if args.warehouse == "postgres" and not args.postgres_dsn:
        p.error("--warehouse postgres needs --postgres-dsn (or POSTGRES_DSN)")
    if args.warehouse == "redshift-data" and not (args.workgroup and args.database):
        p.error("--warehouse redshift-data needs --workgroup and --database (or REDSHIFT_WORKGROUP/REDSHIFT_DATABASE)")
    if args.chunk_rows < 1:
        p.error("--chunk-rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    warehouse: Warehouse | None = None
    if args.warehouse == "postgres":
        warehouse = PostgresWarehouse(args.postgres_dsn)
    elif args.warehouse == "redshift-data":
        warehouse = RedshiftDataWarehouse(args.workgroup, args.database)
    try:
        result, summary = run(args.input, args.quarantine, warehouse, args.schema, args.table, args.chunk_rows)
    except JobError as exc:
        log.error("%s", exc)
        print(
            json.dumps(
                {
                    "event": "run_summary",
                    "input": args.input,
                    "status": "failed",
                    "exit_code": exc.exit_code,
                    "error": str(exc),
                }
            )
        )
        return exc.exit_code
    print(json.dumps({"event": "run_summary", **asdict(result)}))
    if args.warehouse == "none":
        print(summary.to_string(index=False))
    return EXIT_OK
