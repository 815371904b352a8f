"""Idempotent load of a summary into the warehouse: stage, then MERGE, in one transaction.

Both backends run the very same statements (`load_statements`): PostgreSQL (local runs, tests)
and Amazon Redshift through the Redshift Data API (AWS), whose BatchExecuteStatement runs its SQL
list as a single transaction. The table is keyed by (source_uri, device_id): each input file
contributes its own rows, and a rerun of a file replaces exactly those rows, including removing
devices that a corrected file no longer contains.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa
from job_errors import JobError, TransientError

log = logging.getLogger(__name__)

ROWS_PER_INSERT = 500  # keeps each statement far below the Data API's 100 KB statement limit
DATA_API_MAX_STATEMENTS = 40  # BatchExecuteStatement's limit on statements in one transaction
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")

# Column order follows the seed's performance_summary; source_uri is ours (see module docstring).
TABLE_COLUMNS = (
    ("device_id", "VARCHAR(50) NOT NULL"),
    ("avg_frame_rate", "FLOAT8"),
    ("avg_gpu_usage", "FLOAT8"),
    ("max_latency_ms", "INT4"),
    ("log_count", "INT4"),
    ("source_uri", "VARCHAR(1024) NOT NULL"),
)


def _identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise JobError(f"{what} {name!r} is not a plain lower-case SQL identifier")
    return name


def _literal(value: object) -> str:
    """A SQL literal both dialects read the same way.

    Strings are validated upstream to hold no backslash or control character (Redshift and
    PostgreSQL disagree on backslashes), so doubling quotes is the whole escape.
    """
    if isinstance(value, str):
        if "\\" in value or any(ord(c) < 32 for c in value):
            raise JobError(f"refusing to embed string with backslash/control character: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(value)
    return str(int(value))  # type: ignore[call-overload]


def load_statements(summary: pa.Table, source_uri: str, schema: str, table: str) -> list[str]:
    schema, table = _identifier(schema, "schema"), _identifier(table, "table")
    target = f"{schema}.{table}"
    stage = f"{table}_stage"
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
        f"CREATE TABLE IF NOT EXISTS {target} ("
        + ", ".join(f"{name} {sql_type}" for name, sql_type in TABLE_COLUMNS)
        + ", PRIMARY KEY (source_uri, device_id))",
        f"CREATE TEMP TABLE {stage} (LIKE {target})",
    ]
    for start in range(0, len(values), ROWS_PER_INSERT):
        batch = values[start : start + ROWS_PER_INSERT]
        rows = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in batch)
        statements.append(f"INSERT INTO {stage} ({', '.join(columns)}) VALUES {rows}")
    statements += [
        # Redshift's MERGE has no WHEN NOT MATCHED BY SOURCE: remove this file's vanished devices first.
        f"DELETE FROM {target} WHERE source_uri = {_literal(source_uri)} "
        f"AND device_id NOT IN (SELECT device_id FROM {stage})",
        f"MERGE INTO {target} USING {stage} s ON "
        + " AND ".join(f"{target}.{k} = s.{k}" for k in key)
        + " WHEN MATCHED THEN UPDATE SET "
        + ", ".join(f"{c} = s.{c}" for c in columns if c not in key)
        + f" WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ("
        + ", ".join(f"s.{c}" for c in columns)
        + ")",
        f"DROP TABLE {stage}",
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
            with psycopg.connect(self.dsn, connect_timeout=10) as conn, conn.transaction():
                for sql in statements:
                    conn.execute(sql)
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
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("redshift-data", config=Config(retries={"mode": "standard", "max_attempts": 5}))
        self.client = client

    def run_transaction(self, statements: Sequence[str]) -> None:
        from render_summary.storage import classify_aws_error

        if len(statements) > DATA_API_MAX_STATEMENTS:
            raise JobError(
                f"load needs {len(statements)} statements but one Data API transaction allows "
                f"{DATA_API_MAX_STATEMENTS} (about {(DATA_API_MAX_STATEMENTS - 5) * ROWS_PER_INSERT} devices per file)"
            )
        try:
            statement_id = self.client.batch_execute_statement(
                WorkgroupName=self.workgroup,
                Database=self.database,
                Sqls=list(statements),
                StatementName=f"render-summary-{uuid.uuid4().hex[:8]}",
            )["Id"]
            deadline = time.monotonic() + self.timeout_seconds
            while True:
                described = self.client.describe_statement(Id=statement_id)
                status = described["Status"]
                if status == "FINISHED":
                    return
                if status in ("FAILED", "ABORTED"):
                    error = described.get("Error", "no error text")
                    # Two loads into one table at once: Redshift aborts one; running it again succeeds.
                    cls = TransientError if "Serializable isolation violation" in error else JobError
                    raise cls(f"Redshift load {status.lower()}: {error}")
                if time.monotonic() > deadline:
                    self.client.cancel_statement(Id=statement_id)
                    raise TransientError(f"Redshift load did not finish within {self.timeout_seconds:.0f}s")
                time.sleep(self.poll_seconds)
        except JobError:
            raise
        except Exception as exc:
            raise classify_aws_error(exc, "Redshift Data API") from exc
