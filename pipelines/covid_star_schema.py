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
from collections.abc import Callable
from dataclasses import dataclass

# Redshift's limit is 127 bytes (components/config.py checks covidWarehouseSchema the same way);
# PostgreSQL truncates names beyond 63 bytes.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")
# A bucket, then zero or more non-empty key segments; always ends with "/" so that `<uri><table>/`
# is a folder-like prefix (COPY loads every object under the prefix: `dim_date` must not match `dim_date_old/`).
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(?:[A-Za-z0-9!_.*()=+-]+/)*$")
_S3_MAX_KEY = 1024

# Redshift Data API BatchExecuteStatement limits.
MAX_STATEMENTS = 40
MAX_BATCH_BYTES = 100_000  # 100 KB for the whole batch; counted in UTF-8 bytes, decimal KB to be safe


class StarSchemaInputError(ValueError):
    """A name, URI or ARN that must not be embedded in the load SQL."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # valid in Redshift and PostgreSQL alike
    arrow_type: str  # str() of the pyarrow type of this column in the curated Parquet
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # (column, dimension table): the column references the dimension's primary key of the same name.
    references: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _int(name: str, not_null: bool = False) -> Column:
    return Column(name, "INTEGER", "int32", not_null)


def _bigint(name: str, not_null: bool = False) -> Column:
    return Column(name, "BIGINT", "int64", not_null)


def _varchar(name: str, length: int, not_null: bool = False) -> Column:
    # Redshift sizes VARCHAR in bytes, PostgreSQL in characters: 256 bytes hold any place name.
    return Column(name, f"VARCHAR({length})", "string", not_null)


def _char(name: str, length: int) -> Column:
    return Column(name, f"CHAR({length})", "string")


def _double(name: str) -> Column:
    return Column(name, "DOUBLE PRECISION", "double")


_DIM_DATE = Table(
    "dim_date",
    (
        _int("date_key", True),  # yyyymmdd
        Column("full_date", "DATE", "date32[day]", True),
        _int("year", True),
        _int("quarter", True),
        _int("month", True),
        _int("day", True),
        _int("day_of_week", True),  # ISO: 1 = Monday .. 7 = Sunday
        Column("is_weekend", "BOOLEAN", "bool", True),
    ),
    ("date_key",),
)
_DIM_LOCATION = Table(
    "dim_location",
    (
        _varchar("location_key", 128, True),  # US-01001 (county), US-AL (state), KOREA_SOUTH (country)
        _varchar("country", 256, True),
        _varchar("state", 256),
        _char("state_abbr", 2),
        _varchar("county", 256),
        _char("fips", 5),
        _double("latitude"),
        _double("longitude"),
        _bigint("population"),
    ),
    ("location_key",),
)
_FACT_KEYS = (_int("date_key", True), _varchar("location_key", 128, True))
_FACT_REFERENCES = (("date_key", "dim_date"), ("location_key", "dim_location"))
_FACT_CASES = Table(
    "fact_cases",
    (*_FACT_KEYS, *(_bigint(c) for c in ("confirmed", "deaths", "recovered", "active"))),
    ("date_key", "location_key"),
    _FACT_REFERENCES,
)
_FACT_TESTING = Table(
    "fact_testing",
    (
        *_FACT_KEYS,
        *(
            _bigint(c)
            for c in (
                "positive",
                "negative",
                "pending",
                "hospitalized_currently",
                "in_icu_currently",
                "on_ventilator_currently",
                "recovered",
                "deaths",
                "total_test_results",
            )
        ),
    ),
    ("date_key", "location_key"),
    _FACT_REFERENCES,
)

# Load order: dimensions before the facts that reference them.
TABLES: dict[str, Table] = {t.name: t for t in (_DIM_DATE, _DIM_LOCATION, _FACT_CASES, _FACT_TESTING)}


# --- SQL ---------------------------------------------------------------------------------------------


def identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise StarSchemaInputError(f"{what} {name!r} is not a plain lower-case SQL identifier ([a-z_][a-z0-9_]*)")
    return name


def literal(value: str) -> str:
    """A string literal Redshift and PostgreSQL read alike: no backslashes or control characters
    (the two disagree on backslashes), quotes doubled."""
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise StarSchemaInputError(
            f"refusing to embed a string with a backslash or control character in SQL: {value!r}"
        )
    return "'" + value.replace("'", "''") + "'"


def create_statements(schema: str) -> list[str]:
    """`CREATE TABLE IF NOT EXISTS` per table, dimensions first, with primary and foreign keys. The schema
    must exist: the stack creates it (components/warehouse_access.py)."""
    schema = identifier(schema, "schema")
    statements = []
    for table in TABLES.values():
        parts = [f"{c.name} {c.sql_type}" + (" NOT NULL" if c.not_null else "") for c in table.columns]
        parts.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
        parts.extend(
            f"FOREIGN KEY ({column}) REFERENCES {schema}.{dimension} ({column})"
            for column, dimension in table.references
        )
        statements.append(f"CREATE TABLE IF NOT EXISTS {schema}.{table.name} ({', '.join(parts)})")
    return statements


def merge_statement(schema: str, table: Table, stage: str) -> str:
    """Upsert the stage into the table on its primary key. UPDATE SET names bare target columns
    (neither Redshift nor PostgreSQL accepts qualified ones there)."""
    target = f"{schema}.{table.name}"
    on = " AND ".join(f"{target}.{k} = s.{k}" for k in table.primary_key)
    updates = ", ".join(f"{c} = s.{c}" for c in table.column_names if c not in table.primary_key)
    columns = table.column_names
    return (
        f"MERGE INTO {target} USING {stage} s ON {on} WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({', '.join(f's.{c}' for c in columns)})"
    )


def _load_statements(schema: str, fill: Callable[[Table, str], str]) -> list[str]:
    schema = identifier(schema, "schema")
    statements = create_statements(schema)
    for table in TABLES.values():
        stage = f"{table.name}_stage"
        statements += [
            f"CREATE TEMP TABLE {stage} (LIKE {schema}.{table.name})",
            fill(table, stage),
            merge_statement(schema, table, stage),
            f"DROP TABLE {stage}",
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
    if not isinstance(iam_role, str) or not _IAM_ROLE.match(iam_role):
        raise StarSchemaInputError(
            f"iam_role must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got {iam_role!r}"
        )

    def copy(table: Table, stage: str) -> str:
        source = literal(f"{curated_uri}{table.name}/")
        return f"COPY {stage} FROM {source} IAM_ROLE {literal(iam_role)} FORMAT AS PARQUET"

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
    return _load_statements(schema, lambda table, stage: f"COPY {stage} ({', '.join(table.column_names)}) FROM STDIN")


# --- local load ----------------------------------------------------------------------------------------


def load_postgres(dsn: str, schema: str, curated_dir: str) -> dict[str, int]:
    """Run postgres_load_statements in ONE transaction, feeding each table's COPY FROM STDIN from the
    Parquet under `<curated_dir>/<table>/` (a local folder, or any URI pyarrow reads). Any failure
    (a file off the contract, a key violation) rolls everything back. Returns rows staged per table."""
    import psycopg
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

    staged: dict[str, int] = {}
    stages = {f"{t}_stage": t for t in TABLES}
    with psycopg.connect(dsn, connect_timeout=10) as conn, conn.transaction(), conn.cursor() as cur:
        for sql in statements:
            if not sql.endswith("FROM STDIN"):
                cur.execute(sql)
                continue
            name = stages[sql.split(" ", 2)[1]]
            rows = 0
            with cur.copy(sql) as copy:
                for batch in datasets[name].to_batches():
                    for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                        copy.write_row(row)
                        rows += 1
            staged[name] = rows
    return staged
