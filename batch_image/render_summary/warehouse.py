"""Idempotent load of one file's per-device summary: stage Parquet, COPY it, MERGE, in one transaction.

Two tables (both created on first use):
- `<table>_by_file`, keyed (source_uri, device_id): each file's per-device sums, max and count (what
  combines exactly across files). A rerun of a file replaces exactly its rows, including removing
  devices that a corrected file no longer contains.
- `<table>` (default `performance_summary`), keyed device_id: `device_id, avg_frame_rate, avg_gpu_usage,
  max_latency_ms, log_count` over every file loaded (sum of sums / sum of counts, max of max, sum of
  counts). It is a table kept in step by the same transaction, not a view: the analyst role reads it
  through scoped permissions `FOR TABLES IN SCHEMA` like every other table, Redshift cannot LOCK a view,
  and a read does not aggregate every file's rows again. Each load recomputes only the devices its file
  had or has.

The stage is filled from Parquet the job wrote (`write_stage`): Redshift with `COPY ... FORMAT AS PARQUET`
from S3 by the warehouse's copy role, PostgreSQL (local runs, tests) with `COPY ... FROM STDIN` fed from
the same Parquet. The statements are the same but for that one; their number does not depend on the
number of devices. Loads into one table queue on `LOCK` (job_runtime.sql.lock).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from job_runtime import sql
from job_runtime.errors import JobError, TransientError, classify_aws_error
from job_runtime.warehouse import (
    WarehouseError,
    arrow_location,
    data_api_client,
    parquet_rows,
    run_postgres_transaction,
    run_redshift_transaction,
)

log = logging.getLogger(__name__)

BY_FILE_SUFFIX = "_by_file"
TOUCHED_SUFFIX = "_touched"
# `<table>_by_file_stage` is the longest name a load uses: it must fit Redshift's identifier limit.
MAX_TABLE_BYTES = sql.MAX_IDENTIFIER_BYTES - len(BY_FILE_SUFFIX) - len(sql.STAGE_SUFFIX)

# Column order is the Parquet's too (a Parquet COPY maps columns by position).
BY_FILE_COLUMNS = (
    ("source_uri", "VARCHAR(1024) NOT NULL"),
    ("device_id", "VARCHAR(50) NOT NULL"),
    ("sum_frame_rate", "FLOAT8 NOT NULL"),
    ("sum_gpu_usage", "FLOAT8 NOT NULL"),
    ("max_latency_ms", "INT4 NOT NULL"),
    ("log_count", "INT8 NOT NULL"),
)
BY_FILE_SCHEMA = pa.schema(
    [
        ("source_uri", pa.string()),
        ("device_id", pa.string()),
        ("sum_frame_rate", pa.float64()),
        ("sum_gpu_usage", pa.float64()),
        ("max_latency_ms", pa.int32()),
        ("log_count", pa.int64()),
    ]
)
SUMMARY_COLUMNS = (
    ("device_id", "VARCHAR(50) NOT NULL"),
    ("avg_frame_rate", "FLOAT8 NOT NULL"),
    ("avg_gpu_usage", "FLOAT8 NOT NULL"),
    ("max_latency_ms", "INT4 NOT NULL"),
    ("log_count", "INT8 NOT NULL"),
)


def by_file_table(table: str) -> str:
    return table + BY_FILE_SUFFIX


def stage_table(partials: pa.Table, source_uri: str) -> pa.Table:
    """The `<table>_by_file` rows of one file (BY_FILE_SCHEMA) from its per-device partial aggregate."""
    return pa.table(
        [
            pa.repeat(pa.scalar(source_uri, pa.string()), partials.num_rows),
            partials.column("device_id"),
            partials.column("sum_frame_rate"),
            partials.column("sum_gpu_usage"),
            partials.column("max_latency_ms").cast(pa.int32()),  # checked to fit INT4 by the transform
            partials.column("log_count"),
        ],
        schema=BY_FILE_SCHEMA,
    )


def write_stage(rows: pa.Table, path: Path) -> None:
    """Plain Parquet (Redshift's COPY reads it), in row groups so a reader streams it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path, row_group_size=64 * 1024, compression="snappy")


def load_statements(
    source_uri: str, schema: str, table: str, stage_uri: str | None = None, iam_role: str | None = None
) -> list[str]:
    """The load of one file's staged rows. With `stage_uri` and `iam_role` (Redshift) the stage is filled
    by COPY from that S3 prefix; without them (PostgreSQL) by `COPY ... FROM STDIN`."""
    schema = sql.identifier(schema, "schema", error=JobError)
    table = sql.identifier(table, "table", max_bytes=MAX_TABLE_BYTES, error=JobError)
    summary, by_file = f"{schema}.{table}", f"{schema}.{by_file_table(table)}"
    stage, touched = sql.stage_name(by_file_table(table)), table + TOUCHED_SUFFIX
    columns = [name for name, _ in BY_FILE_COLUMNS]
    if stage_uri is not None:
        if not stage_uri.startswith("s3://") or not iam_role or not sql.IAM_ROLE_ARN.match(iam_role):
            raise JobError(f"Redshift COPY needs an s3:// stage and an IAM role ARN, got {stage_uri!r}, {iam_role!r}")
        fill = sql.copy_from_s3(stage, stage_uri, iam_role)
    else:
        fill = sql.copy_from_stdin(stage, columns)
    this_file = f"source_uri = {sql.literal(source_uri, error=JobError)}"
    summary_columns = ", ".join(name for name, _ in SUMMARY_COLUMNS)
    return [
        sql.create_table(by_file, [f"{n} {t}" for n, t in BY_FILE_COLUMNS], ["source_uri", "device_id"]),
        sql.create_table(summary, [f"{n} {t}" for n, t in SUMMARY_COLUMNS], ["device_id"]),
        sql.lock(by_file, summary),
        sql.create_stage(stage, by_file),
        fill,
        # The devices whose totals change: those the file had before and those it has now.
        f"CREATE TEMP TABLE {touched} AS SELECT device_id FROM {by_file} WHERE {this_file} "
        f"UNION SELECT device_id FROM {stage}",
        sql.delete_vanished(by_file, stage, "source_uri", [source_uri], "device_id"),
        sql.merge(by_file, stage, columns, ["source_uri", "device_id"]),
        f"DELETE FROM {summary} WHERE device_id IN (SELECT device_id FROM {touched})",
        f"INSERT INTO {summary} ({summary_columns}) "
        "SELECT device_id, SUM(sum_frame_rate) / CAST(SUM(log_count) AS FLOAT8), "
        "SUM(sum_gpu_usage) / CAST(SUM(log_count) AS FLOAT8), MAX(max_latency_ms), SUM(log_count) "
        f"FROM {by_file} WHERE device_id IN (SELECT device_id FROM {touched}) GROUP BY device_id",
        sql.drop(stage),
        sql.drop(touched),
    ]


class Warehouse(Protocol):
    def load(self, rows: pa.Table, source_uri: str, schema: str, table: str) -> None: ...


class PostgresWarehouse:
    """Local stand-in for Redshift: the same statements in one real transaction, the stage filled by
    `COPY ... FROM STDIN` from the Parquet written under `stage_dir` (removed afterwards)."""

    def __init__(self, dsn: str, stage_dir: str) -> None:
        self.dsn, self.stage_dir = dsn, stage_dir

    def load(self, rows: pa.Table, source_uri: str, schema: str, table: str) -> None:
        import psycopg

        statements = load_statements(source_uri, schema, table)
        path = Path(arrow_location(self.stage_dir)) / uuid.uuid4().hex / "part-0.parquet"
        try:
            write_stage(rows, path)
            run_postgres_transaction(self.dsn, statements, lambda _copy: parquet_rows(str(path)))
        except psycopg.OperationalError as exc:
            raise TransientError(f"PostgreSQL unavailable: {exc}") from exc
        except psycopg.Error as exc:
            raise JobError(f"PostgreSQL rejected the load: {exc}") from exc
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)


class RedshiftDataWarehouse:
    """Redshift Serverless through the Data API with the job role's IAM identity (no passwords): the
    Parquet is uploaded under `stage_prefix` (s3://), COPYed by `copy_role` (the warehouse's own role,
    which reads the processed zone), and deleted after the transaction, whatever its outcome."""

    def __init__(
        self,
        workgroup: str,
        database: str,
        stage_prefix: str,
        copy_role: str,
        client=None,
        s3=None,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 900.0,
    ) -> None:
        self.workgroup, self.database = workgroup, database
        self.stage_prefix, self.copy_role = stage_prefix.rstrip("/"), copy_role
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds
        self.client = client or data_api_client()
        self._s3 = s3

    def load(self, rows: pa.Table, source_uri: str, schema: str, table: str) -> None:
        import tempfile

        from render_summary import storage

        run_id = uuid.uuid4().hex
        stage_uri = f"{self.stage_prefix}/{run_id}/"
        statements = load_statements(source_uri, schema, table, stage_uri, self.copy_role)
        bucket, key = storage.split_s3(stage_uri + "part-0.parquet")
        s3 = self._s3 or storage.s3_client()
        with tempfile.TemporaryDirectory() as local:
            path = Path(local) / "part-0.parquet"
            write_stage(rows, path)
            try:
                s3.upload_file(str(path), bucket, key)  # multipart above 8 MB; a failed one is aborted
            except Exception as exc:
                raise classify_aws_error(exc, f"staging {stage_uri}") from exc
        try:
            self.run_transaction(statements, f"render-summary-{run_id[:8]}")
        finally:
            try:
                s3.delete_object(Bucket=bucket, Key=key)
            except Exception as exc:  # the load's outcome stands; a stale stage object only costs storage
                log.warning("could not delete the stage %s: %s", stage_uri, exc)

    def run_transaction(self, statements: Sequence[str], name: str) -> None:
        try:
            run_redshift_transaction(
                statements,
                workgroup=self.workgroup,
                database=self.database,
                client=self.client,
                name=name,
                poll_seconds=self.poll_seconds,
                timeout_seconds=self.timeout_seconds,
            )
        except WarehouseError as exc:
            if exc.timed_out:
                raise TransientError(f"Redshift load did not finish within {self.timeout_seconds:.0f}s") from exc
            # Another writer's transaction that does not take the LOCK can still conflict: a rerun succeeds.
            cls = TransientError if exc.retryable else JobError
            raise cls(f"Redshift load {exc.status.lower()}: {exc.error or 'no error text'}") from exc
        except Exception as exc:
            raise classify_aws_error(exc, "Redshift Data API") from exc
