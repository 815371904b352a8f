"""The COVID-19 star schema in the warehouse: table specs, and the SQL of the load transaction, generated.

The curated Glue job writes four tables as Snappy Parquet (no partition folders) to
`<curated>/<table>/`, columns in exactly the order of TABLES. The load is ONE transaction (on
Redshift one Data API BatchExecuteStatement, run by the Step Functions state machine):

  CREATE TABLE IF NOT EXISTS per table (dimensions first);
  then per table, dimensions before facts:
  CREATE TEMP TABLE <t>_stage (LIKE <schema>.<t>); fill the stage; MERGE it into <schema>.<t>; DROP the stage.

Redshift fills the stage with `COPY ... FORMAT AS PARQUET` by the cluster's IAM role; a Parquet COPY
maps columns by position, so the table's column order is the curated contract's (tests assert both
the names and the Arrow types). PostgreSQL (local runs, tests) fills it with `COPY <t>_stage (<cols>)
FROM STDIN`, fed by `load_postgres` from the same Parquet. MERGE upserts on the primary key, so a
rerun of the same curated data leaves identical tables; rows that vanish from the curated data are
kept (MERGE here only updates and inserts). Redshift does not enforce primary or foreign keys (they
only inform the planner), so the curated job must write unique keys; PostgreSQL enforces both.

No DISTSTYLE/SORTKEY: the DDL is the same in both dialects, and Redshift Serverless picks AUTO for both.

Pure Python: the Pulumi program and the tests import it; psycopg and pyarrow are imported by
`load_postgres` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from job_runtime import sql
from job_runtime.contracts import COVID_STAR_TABLES, Table
from job_runtime.warehouse import (
    DATA_API_MAX_BATCH_BYTES,
    DATA_API_MAX_STATEMENTS,
    parquet_rows,
    run_postgres_transaction,
)

# A bucket, then zero or more non-empty key segments; always ends with "/" so that `<uri><table>/`
# is a folder-like prefix (COPY loads every object under the prefix: `dim_date` must not match `dim_date_old/`).
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(?:[A-Za-z0-9!_.*()=+-]+/)*$")
_S3_MAX_KEY = 1024

MAX_STATEMENTS = DATA_API_MAX_STATEMENTS
MAX_BATCH_BYTES = DATA_API_MAX_BATCH_BYTES


class StarSchemaInputError(ValueError):
    """A name, URI or ARN that must not be embedded in the load SQL."""


# The curated contract, dimensions before the facts that reference them (job_runtime.contracts, which
# the clean job writes to).
TABLES: dict[str, Table] = COVID_STAR_TABLES


# --- SQL ---------------------------------------------------------------------------------------------


def identifier(name: str, what: str) -> str:
    # Redshift's limit is 127 bytes (components/config.py checks covidWarehouseSchema the same way).
    return sql.identifier(name, what, error=StarSchemaInputError)


def literal(value: str) -> str:
    """A string literal Redshift and PostgreSQL read alike (see job_runtime.sql.literal)."""
    return sql.literal(value, error=StarSchemaInputError)


def create_statements(schema: str) -> list[str]:
    """`CREATE TABLE IF NOT EXISTS` per table, dimensions first, with primary and foreign keys. The schema
    must exist: the stack creates it (components/warehouse_access.py)."""
    schema = identifier(schema, "schema")
    statements = []
    for table in TABLES.values():
        columns = [f"{c.name} {c.sql_type}" + (" NOT NULL" if c.not_null else "") for c in table.columns]
        foreign_keys = [
            f"FOREIGN KEY ({column}) REFERENCES {schema}.{dimension} ({column})"
            for column, dimension in table.references
        ]
        statements.append(sql.create_table(f"{schema}.{table.name}", columns, table.primary_key, foreign_keys))
    return statements


def merge_statement(schema: str, table: Table, stage: str) -> str:
    """Upsert the stage into the table on its primary key."""
    return sql.merge(f"{schema}.{table.name}", stage, table.column_names, table.primary_key)


def _load_statements(schema: str, fill: Callable[[Table, str], str]) -> list[str]:
    schema = identifier(schema, "schema")
    # Loads queue on the lock of every table, taken in one statement in one order (job_runtime.sql.lock).
    statements = [*create_statements(schema), sql.lock(*(f"{schema}.{name}" for name in TABLES))]
    for table in TABLES.values():
        stage = sql.stage_name(table.name)
        statements += [
            sql.create_stage(stage, f"{schema}.{table.name}"),
            fill(table, stage),
            merge_statement(schema, table, stage),
            sql.drop(stage),
        ]
    return statements


def redshift_load_statements(schema: str, curated_uri: str, iam_role: str) -> list[str]:
    """The whole load as one Data API batch: each stage filled by a Parquet COPY of `<curated_uri><table>/`."""
    if not isinstance(curated_uri, str) or not _S3_PREFIX.match(curated_uri):
        raise StarSchemaInputError(
            f"curated_uri must be an s3://bucket/prefix/ URI ending in '/' (plain key characters), got {curated_uri!r}"
        )
    key_prefix = curated_uri.split("/", 3)[3]
    if len(key_prefix) + max(len(t) + 1 for t in TABLES) > _S3_MAX_KEY:
        raise StarSchemaInputError(f"curated_uri's key prefix is too long for S3 keys ({_S3_MAX_KEY} bytes)")
    if not isinstance(iam_role, str) or not sql.IAM_ROLE_ARN.match(iam_role):
        raise StarSchemaInputError(
            f"iam_role must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got {iam_role!r}"
        )

    def copy(table: Table, stage: str) -> str:
        return sql.copy_from_s3(stage, f"{curated_uri}{table.name}/", iam_role)

    statements = _load_statements(schema, copy)
    size = sum(len(s.encode()) for s in statements)
    if len(statements) > MAX_STATEMENTS or size >= MAX_BATCH_BYTES:
        raise StarSchemaInputError(
            f"the load is {len(statements)} statements / {size} bytes, over the Data API batch limits "
            f"({MAX_STATEMENTS} statements, {MAX_BATCH_BYTES} bytes)"
        )
    return statements


def postgres_load_statements(schema: str) -> list[str]:
    """The same transaction for PostgreSQL 15+: each stage filled by `COPY ... FROM STDIN` (see load_postgres)."""
    return _load_statements(schema, lambda table, stage: sql.copy_from_stdin(stage, table.column_names))


# --- local load ----------------------------------------------------------------------------------------


def load_postgres(dsn: str, schema: str, curated_dir: str) -> dict[str, int]:
    """Run postgres_load_statements in ONE transaction, feeding each table's COPY FROM STDIN from the
    Parquet under `<curated_dir>/<table>/` (a local folder, or any URI pyarrow reads). Any failure
    (a file off the contract, a key violation) rolls everything back. Returns rows staged per table."""
    import pyarrow.dataset as ds

    statements = postgres_load_statements(schema)
    root = curated_dir.rstrip("/")
    datasets = {}
    for table in TABLES.values():  # check every table's files before touching the database
        dataset = ds.dataset(f"{root}/{table.name}/", format="parquet")
        found = [(f.name, str(f.type)) for f in dataset.schema]
        expected = [(c.name, c.arrow_type) for c in table.columns]
        if found != expected:
            raise StarSchemaInputError(
                f"curated {table.name} Parquet columns {found} are not the contract's {expected} "
                "(Redshift's Parquet COPY maps columns by position)"
            )
        datasets[table.name] = dataset

    stages = {sql.stage_name(t): t for t in TABLES}

    def rows(copy: str) -> Iterator[tuple]:
        return parquet_rows(datasets[stages[copy.split(" ", 2)[1]]])

    copied = run_postgres_transaction(dsn, statements, rows)
    return {stages[copy.split(" ", 2)[1]]: count for copy, count in copied.items()}
