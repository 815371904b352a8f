"""The warehouse transaction: Redshift Serverless through the Data API, and PostgreSQL as its local stand-in.

Redshift: BatchExecuteStatement runs its SQL list as ONE transaction (all or nothing) with the caller's
IAM identity (no passwords); DescribeStatement is polled until the statement ends, bounded by a timeout
after which the statement is cancelled. PostgreSQL (local runs, tests): the same statements in one
psycopg transaction, each `COPY ... FROM STDIN` fed with rows by the caller (e.g. from Parquet).

Both run a load's leading `CREATE TABLE IF NOT EXISTS` statements first, each in its own transaction
(`split_setup`): the load's transaction starts with `LOCK`, which needs the table to exist, and a
CREATE inside a long transaction would make a concurrent load's CREATE of the same new table fail
(PostgreSQL: a unique violation on pg_type once the first commits). A short CREATE that loses that
race is retried and then finds the table.

boto3, psycopg and pyarrow are imported by the functions that use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

CREATE_IF_MISSING = "CREATE TABLE IF NOT EXISTS "
SETUP_ATTEMPTS = 5  # a CREATE loses the race at most once per concurrent creator; a few cover a burst
# What a CREATE TABLE IF NOT EXISTS that lost the race to a concurrent one says (then it is retried).
_CREATE_RACE = ("pg_type_typname_nsp_index", "already exists", "Serializable isolation violation")

# Redshift Data API BatchExecuteStatement limits.
DATA_API_MAX_STATEMENTS = 40
DATA_API_MAX_BATCH_BYTES = 100_000  # 100 KB for the whole batch; counted in UTF-8 bytes, decimal KB to be safe


class WarehouseError(RuntimeError):
    """The warehouse rejected or did not finish a statement; the message carries its error text."""

    def __init__(
        self,
        message: str,
        *,
        statement_id: str = "",
        status: str = "",
        error: str | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.statement_id, self.status, self.error, self.timed_out = statement_id, status, error, timed_out

    @property
    def retryable(self) -> bool:
        """True when running the same statements again can succeed: a timeout, or Redshift aborting one of
        two concurrent transactions on the same table."""
        return self.timed_out or "Serializable isolation violation" in (self.error or "")


def split_setup(statements: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the leading CREATE TABLE IF NOT EXISTS statements, the rest): the first run before the second."""
    count = 0
    while count < len(statements) and statements[count].startswith(CREATE_IF_MISSING):
        count += 1
    return list(statements[:count]), list(statements[count:])


def data_api_client() -> Any:  # pragma: no cover - needs AWS
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling before a job gives up.
    return boto3.client("redshift-data", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def wait_for_statement(
    client: Any,
    statement_id: str,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    cancel_on_timeout: bool = True,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll DescribeStatement until the statement FINISHED (returns the description); FAILED/ABORTED raise
    WarehouseError with Redshift's error text, and so does running past the timeout (after cancelling the
    statement, unless told not to)."""
    deadline = now() + timeout_seconds
    while True:
        described = client.describe_statement(Id=statement_id)
        status = described["Status"]
        if status == "FINISHED":
            return dict(described)
        if status in ("FAILED", "ABORTED"):
            error = described.get("Error")
            raise WarehouseError(
                f"Redshift transaction {statement_id} {status}: {error or '(no error text)'}",
                statement_id=statement_id,
                status=status,
                error=error,
                timed_out=False,
            )
        if now() >= deadline:
            if cancel_on_timeout:
                client.cancel_statement(Id=statement_id)
            raise WarehouseError(
                f"Redshift transaction {statement_id} still {status} after {timeout_seconds:g}s"
                + (": cancelled" if cancel_on_timeout else ""),
                statement_id=statement_id,
                status=status,
                error=None,
                timed_out=True,
            )
        sleep(poll_seconds)


def run_redshift_transaction(
    sqls: Sequence[str],
    *,
    workgroup: str,
    database: str,
    client: Any = None,
    name: str = "job",
    poll_seconds: float = 2.0,
    timeout_seconds: float = 1800.0,
) -> str:
    """Run statements as ONE transaction on Redshift Serverless through the Data API (after the leading
    CREATE TABLE IF NOT EXISTS statements, each its own call: see split_setup); returns the statement id."""
    client = client or data_api_client()
    setup, sqls = split_setup(sqls)
    for create in setup:
        for attempt in range(1, SETUP_ATTEMPTS + 1):
            created = client.execute_statement(
                WorkgroupName=workgroup, Database=database, Sql=create, StatementName=f"{name}-create"
            )["Id"]
            try:
                wait_for_statement(client, created, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
                break
            except WarehouseError as exc:
                if attempt == SETUP_ATTEMPTS or not any(text in (exc.error or "") for text in _CREATE_RACE):
                    raise
    statement_id = client.batch_execute_statement(
        WorkgroupName=workgroup, Database=database, Sqls=list(sqls), StatementName=name
    )["Id"]
    wait_for_statement(client, statement_id, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
    return str(statement_id)


def run_postgres_transaction(
    dsn: str, statements: Sequence[str], stdin_rows: Callable[[str], Iterable[Sequence[Any]]] | None = None
) -> dict[str, int]:
    """Run statements in ONE psycopg transaction; each `... FROM STDIN` statement is fed the rows of
    `stdin_rows(statement)`. Any failure rolls everything back (psycopg's exception propagates).
    Returns the rows sent per COPY statement."""
    import psycopg

    copied: dict[str, int] = {}
    setup, statements = split_setup(statements)
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        for create in setup:
            for attempt in range(1, SETUP_ATTEMPTS + 1):
                try:
                    with conn.transaction():
                        conn.execute(create)
                    break
                except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                    if attempt == SETUP_ATTEMPTS:
                        raise
    with psycopg.connect(dsn, connect_timeout=10) as conn, conn.transaction(), conn.cursor() as cur:
        for sql in statements:
            if not sql.endswith("FROM STDIN"):
                cur.execute(sql)
                continue
            if stdin_rows is None:
                raise ValueError(f"no rows to feed {sql!r}")
            rows = 0
            with cur.copy(sql) as copy:
                for row in stdin_rows(sql):
                    copy.write_row(row)
                    rows += 1
            copied[sql] = rows
    return copied


def arrow_location(uri: str) -> str:
    """pyarrow's name for a dataset: a plain local path for file: URIs, anything else as it is."""
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def parquet_rows(dataset: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of a pyarrow dataset (or of the Parquet at a location), as tuples in column order."""
    if isinstance(dataset, str):
        import pyarrow.dataset as ds

        dataset = ds.dataset(arrow_location(dataset), format="parquet")
    for batch in dataset.to_batches():
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
