"""Idempotent load of a summary into the warehouse: stage, then MERGE, in one transaction.

Both backends run the very same statements (`load_statements`): PostgreSQL (local runs, tests)
and Amazon Redshift through the Redshift Data API (AWS), whose BatchExecuteStatement runs its SQL
list as a single transaction. The table is keyed by (source_uri, device_id): each input file
contributes its own rows, and a rerun of a file replaces exactly those rows, including removing
devices that a corrected file no longer contains.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from job_runtime import sql
from job_runtime.errors import JobError, TransientError, classify_aws_error
from job_runtime.warehouse import (
    DATA_API_MAX_STATEMENTS,
    WarehouseError,
    data_api_client,
    run_postgres_transaction,
    run_redshift_transaction,
)

log = logging.getLogger(__name__)

ROWS_PER_INSERT = 500  # keeps each statement far below the Data API's 100 KB statement limit

# Column order follows the seed's performance_summary; source_uri is ours (see module docstring).
TABLE_COLUMNS = (
    ("device_id", "VARCHAR(50) NOT NULL"),
    ("avg_frame_rate", "FLOAT8"),
    ("avg_gpu_usage", "FLOAT8"),
    ("max_latency_ms", "INT4"),
    ("log_count", "INT4"),
    ("source_uri", "VARCHAR(1024) NOT NULL"),
)


def load_statements(summary: pa.Table, source_uri: str, schema: str, table: str) -> list[str]:
    schema = sql.identifier(schema, "schema", error=JobError)
    table = sql.identifier(table, "table", error=JobError)
    target, stage = f"{schema}.{table}", sql.stage_name(table)
    columns = [name for name, _ in TABLE_COLUMNS]
    key = ("source_uri", "device_id")
    values = [
        [
            row["device_id"],
            float(row["avg_frame_rate"]),
            float(row["avg_gpu_usage"]),
            int(row["max_latency_ms"]),
            int(row["log_count"]),
            source_uri,
        ]
        for row in summary.to_pylist()
    ]
    statements = [
        sql.create_table(target, [f"{name} {sql_type}" for name, sql_type in TABLE_COLUMNS], key),
        sql.create_stage(stage, target),
    ]
    for start in range(0, len(values), ROWS_PER_INSERT):
        batch = values[start : start + ROWS_PER_INSERT]
        rows = ", ".join("(" + ", ".join(sql.literal(v, error=JobError) for v in row) + ")" for row in batch)
        statements.append(f"INSERT INTO {stage} ({', '.join(columns)}) VALUES {rows}")
    statements += [
        sql.delete_vanished(target, stage, "source_uri", [source_uri], "device_id"),
        sql.merge(target, stage, columns, key),
        sql.drop(stage),
    ]
    return statements


class Warehouse(Protocol):
    def run_transaction(self, statements: Sequence[str]) -> None: ...


class PostgresWarehouse:
    """Local stand-in for Redshift: same statements, one real transaction."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def run_transaction(self, statements: Sequence[str]) -> None:
        import psycopg

        try:
            run_postgres_transaction(self.dsn, statements)
        except psycopg.OperationalError as exc:
            raise TransientError(f"PostgreSQL unavailable: {exc}") from exc
        except psycopg.Error as exc:
            raise JobError(f"PostgreSQL rejected the load: {exc}") from exc


class RedshiftDataWarehouse:
    """Redshift Serverless through the Data API with the job role's IAM identity (no passwords)."""

    def __init__(
        self, workgroup: str, database: str, client=None, poll_seconds: float = 1.0, timeout_seconds: float = 900.0
    ) -> None:
        self.workgroup, self.database = workgroup, database
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds
        self.client = client or data_api_client()

    def run_transaction(self, statements: Sequence[str]) -> None:
        if len(statements) > DATA_API_MAX_STATEMENTS:
            raise JobError(
                f"load needs {len(statements)} statements but one Data API transaction allows "
                f"{DATA_API_MAX_STATEMENTS} (about {(DATA_API_MAX_STATEMENTS - 5) * ROWS_PER_INSERT} devices per file)"
            )
        try:
            run_redshift_transaction(
                statements,
                workgroup=self.workgroup,
                database=self.database,
                client=self.client,
                name=f"render-summary-{uuid.uuid4().hex[:8]}",
                poll_seconds=self.poll_seconds,
                timeout_seconds=self.timeout_seconds,
            )
        except WarehouseError as exc:
            if exc.timed_out:
                raise TransientError(f"Redshift load did not finish within {self.timeout_seconds:.0f}s") from exc
            # Two loads into one table at once: Redshift aborts one; running it again succeeds.
            cls = TransientError if exc.retryable else JobError
            raise cls(f"Redshift load {exc.status.lower()}: {exc.error or 'no error text'}") from exc
        except Exception as exc:
            raise classify_aws_error(exc, "Redshift Data API") from exc
