"""The COVID-19 star schema: generated SQL checked by sqlglot's Redshift dialect, and real loads into PostgreSQL.

Curated Parquet is written here with pyarrow straight from the contract (CONTRACT below, written out
independently of the module's TABLES), then loaded by `load_postgres` into a fresh schema of the
session's PostgreSQL. Expected table rows are literal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from pipelines import covid_star_schema as star

CURATED = "s3://curated-bucket/covid/curated/"
ROLE = "arn:aws:iam::123456789012:role/redshift-copy"

# The curated contract: Parquet columns in this order, (name, Arrow type, NOT NULL).
CONTRACT: dict[str, list[tuple[str, pa.DataType, bool]]] = {
    "dim_date": [
        ("date_key", pa.int32(), True),
        ("full_date", pa.date32(), True),
        ("year", pa.int32(), True),
        ("quarter", pa.int32(), True),
        ("month", pa.int32(), True),
        ("day", pa.int32(), True),
        ("day_of_week", pa.int32(), True),
        ("is_weekend", pa.bool_(), True),
    ],
    "dim_location": [
        ("location_key", pa.string(), True),
        ("country", pa.string(), True),
        ("state", pa.string(), False),
        ("state_abbr", pa.string(), False),
        ("county", pa.string(), False),
        ("fips", pa.string(), False),
        ("latitude", pa.float64(), False),
        ("longitude", pa.float64(), False),
        ("population", pa.int64(), False),
    ],
    "fact_cases": [
        ("date_key", pa.int32(), True),
        ("location_key", pa.string(), True),
        ("confirmed", pa.int64(), False),
        ("deaths", pa.int64(), False),
        ("recovered", pa.int64(), False),
        ("active", pa.int64(), False),
    ],
    "fact_testing": [
        ("date_key", pa.int32(), True),
        ("location_key", pa.string(), True),
        *(
            (name, pa.int64(), False)
            for name in ("positive", "negative", "pending", "hospitalized_currently", "in_icu_currently",
                         "on_ventilator_currently", "recovered", "deaths", "total_test_results")
        ),
    ],
}  # fmt: skip

DIM_DATE: list[tuple[Any, ...]] = [
    (20200307, date(2020, 3, 7), 2020, 1, 3, 7, 6, True),
    (20200308, date(2020, 3, 8), 2020, 1, 3, 8, 7, True),
    (20200309, date(2020, 3, 9), 2020, 1, 3, 9, 1, False),
]
DIM_LOCATION: list[tuple[Any, ...]] = [
    ("KOREA_SOUTH", "Korea, South", None, None, None, None, 35.907757, 127.766922, 51269183),
    ("US-35013", "US", "New Mexico", "NM", "Doña Ana", "35013", 32.35265, -106.83184, 218195),
    ("US-53033", "US", "Washington", "WA", "King", "53033", 47.49137892, -121.8346131, 2252782),
    ("US-WA", "US", "Washington", "WA", None, None, 47.4009, -121.4905, 7614893),
]
FACT_CASES: list[tuple[Any, ...]] = [
    (20200307, "KOREA_SOUTH", 7041, 48, 135, 6858),
    (20200307, "US-53033", 71, 15, None, None),
    (20200308, "KOREA_SOUTH", 7314, 50, 118, 7146),
    (20200308, "US-53033", 83, 17, None, None),
    (20200309, "US-35013", 0, 0, None, None),
    (20200309, "US-53033", 116, 20, 0, 96),
]
FACT_TESTING: list[tuple[Any, ...]] = [
    (20200307, "US-WA", 102, 1110, None, None, None, None, None, 16, 1212),
    (20200308, "US-WA", 118, 1272, None, None, None, None, None, 18, 1390),
    (20200309, "US-WA", 136, 1110, None, 42, 8, 3, 1, 22, 1246),
]
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "dim_date": DIM_DATE,
    "dim_location": DIM_LOCATION,
    "fact_cases": FACT_CASES,
    "fact_testing": FACT_TESTING,
}
STAGED = {"dim_date": 3, "dim_location": 4, "fact_cases": 6, "fact_testing": 3}
ORDER_BY = {
    "dim_date": "date_key",
    "dim_location": 'location_key COLLATE "C"',
    "fact_cases": 'date_key, location_key COLLATE "C"',
    "fact_testing": 'date_key, location_key COLLATE "C"',
}


def write_curated(root: Path, rows: dict[str, list[tuple]], files_per_table: int = 2) -> str:
    """Snappy Parquet per table under <root>/<table>/, as the curated job writes it (plus Spark's _SUCCESS)."""
    for table, columns in CONTRACT.items():
        folder = root / table
        folder.mkdir(parents=True)
        schema = pa.schema([pa.field(name, dtype, nullable=not not_null) for name, dtype, not_null in columns])
        data = rows[table]
        for part in range(files_per_table):
            chunk = data[part::files_per_table]
            arrays = [pa.array([r[i] for r in chunk], type=f.type) for i, f in enumerate(schema)]
            pq.write_table(
                pa.Table.from_arrays(arrays, schema=schema),
                folder / f"part-{part:05d}-{uuid.uuid4()}-c000.snappy.parquet",
                compression="snappy",
            )
        (folder / "_SUCCESS").write_bytes(b"")
    return str(root)


def snapshot(dsn: str, schema: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT * FROM {schema}.{t} ORDER BY {ORDER_BY[t]}").fetchall() for t in CONTRACT}


def tables_in(dsn: str, schema: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema]).fetchall()
    return [name for (name,) in rows]


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh, empty schema per test (the pipeline creates the schema before the load), dropped afterwards."""
    name = f"covid_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


# --- table specs ---------------------------------------------------------------------------------------


def test_table_specs_follow_the_curated_contract_in_order() -> None:
    # Redshift's Parquet COPY maps by position: names, types and order must be the contract's.
    assert list(star.TABLES) == list(CONTRACT)  # dimensions before facts
    for name, table in star.TABLES.items():
        assert table.name == name
        assert [(c.name, c.arrow_type, c.not_null) for c in table.columns] == [
            (n, str(t), not_null) for n, t, not_null in CONTRACT[name]
        ]
    assert {n: t.primary_key for n, t in star.TABLES.items()} == {
        "dim_date": ("date_key",),
        "dim_location": ("location_key",),
        "fact_cases": ("date_key", "location_key"),
        "fact_testing": ("date_key", "location_key"),
    }
    assert {n: t.references for n, t in star.TABLES.items()} == {
        "dim_date": (),
        "dim_location": (),
        "fact_cases": (("date_key", "dim_date"), ("location_key", "dim_location")),
        "fact_testing": (("date_key", "dim_date"), ("location_key", "dim_location")),
    }
    # SQL types agree with the Arrow types Redshift's COPY accepts for them.
    allowed = {"int32": {"INTEGER"}, "int64": {"BIGINT"}, "double": {"DOUBLE PRECISION"}, "bool": {"BOOLEAN"},
               "date32[day]": {"DATE"}, "string": {"VARCHAR(128)", "VARCHAR(256)", "CHAR(2)", "CHAR(5)"}}  # fmt: skip
    for table in star.TABLES.values():
        for column in table.columns:
            assert column.sql_type in allowed[column.arrow_type], (table.name, column)


def test_written_fixture_parquet_has_the_spec_schema(tmp_path: Path) -> None:
    write_curated(tmp_path, ROWS)
    for name, table in star.TABLES.items():
        files = sorted((tmp_path / name).glob("*.parquet"))
        assert len(files) == 2
        for file in files:
            schema = pq.read_schema(file)
            assert [(f.name, str(f.type)) for f in schema] == [(c.name, c.arrow_type) for c in table.columns]
            assert pq.ParquetFile(file).metadata.row_group(0).column(0).compression == "SNAPPY"


# --- SQL -----------------------------------------------------------------------------------------------


def test_redshift_load_statements_shape_and_exact_text() -> None:
    statements = star.redshift_load_statements("covid", CURATED, ROLE)
    assert len(statements) == 21
    assert [s.split(" (", 1)[0] for s in statements[:4]] == [
        "CREATE TABLE IF NOT EXISTS covid.dim_date",
        "CREATE TABLE IF NOT EXISTS covid.dim_location",
        "CREATE TABLE IF NOT EXISTS covid.fact_cases",
        "CREATE TABLE IF NOT EXISTS covid.fact_testing",
    ]
    # Loads queue on the lock of all four tables, taken first in one statement (job_runtime.sql.lock).
    assert statements[4] == "LOCK covid.dim_date, covid.dim_location, covid.fact_cases, covid.fact_testing"
    assert [" ".join(s.split(" ")[:2]) for s in statements[5:]] == [
        step for t in CONTRACT for step in ("CREATE TEMP", f"COPY {t}_stage", "MERGE INTO", "DROP TABLE")
    ]
    assert statements[2] == (
        "CREATE TABLE IF NOT EXISTS covid.fact_cases (date_key INTEGER NOT NULL, location_key VARCHAR(128) NOT NULL, "
        "confirmed BIGINT, deaths BIGINT, recovered BIGINT, active BIGINT, PRIMARY KEY (date_key, location_key), "
        "FOREIGN KEY (date_key) REFERENCES covid.dim_date (date_key), "
        "FOREIGN KEY (location_key) REFERENCES covid.dim_location (location_key))"
    )
    assert statements[1] == (
        "CREATE TABLE IF NOT EXISTS covid.dim_location (location_key VARCHAR(128) NOT NULL, "
        "country VARCHAR(256) NOT NULL, state VARCHAR(256), state_abbr CHAR(2), county VARCHAR(256), fips CHAR(5), "
        "latitude DOUBLE PRECISION, longitude DOUBLE PRECISION, population BIGINT, PRIMARY KEY (location_key))"
    )
    assert statements[13:17] == [
        "CREATE TEMP TABLE fact_cases_stage (LIKE covid.fact_cases)",
        f"COPY fact_cases_stage FROM '{CURATED}fact_cases/' IAM_ROLE '{ROLE}' FORMAT AS PARQUET",
        "MERGE INTO covid.fact_cases USING fact_cases_stage s "
        "ON covid.fact_cases.date_key = s.date_key AND covid.fact_cases.location_key = s.location_key "
        "WHEN MATCHED THEN UPDATE SET confirmed = s.confirmed, deaths = s.deaths, recovered = s.recovered, "
        "active = s.active "
        "WHEN NOT MATCHED THEN INSERT (date_key, location_key, confirmed, deaths, recovered, active) "
        "VALUES (s.date_key, s.location_key, s.confirmed, s.deaths, s.recovered, s.active)",
        "DROP TABLE fact_cases_stage",
    ]


def test_postgres_statements_differ_only_in_the_stage_fill() -> None:
    redshift = star.redshift_load_statements("covid", CURATED, ROLE)
    postgres = star.postgres_load_statements("covid")
    assert len(postgres) == len(redshift)
    differing = [(r, p) for r, p in zip(redshift, postgres, strict=True) if r != p]
    assert [p for _, p in differing] == [
        "COPY dim_date_stage (date_key, full_date, year, quarter, month, day, day_of_week, is_weekend) FROM STDIN",
        "COPY dim_location_stage (location_key, country, state, state_abbr, county, fips, latitude, longitude, "
        "population) FROM STDIN",
        "COPY fact_cases_stage (date_key, location_key, confirmed, deaths, recovered, active) FROM STDIN",
        "COPY fact_testing_stage (date_key, location_key, positive, negative, pending, hospitalized_currently, "
        "in_icu_currently, on_ventilator_currently, recovered, deaths, total_test_results) FROM STDIN",
    ]
    assert all(r.startswith("COPY ") for r, _ in differing)
    assert star.create_statements("covid") == redshift[:4] == postgres[:4]


def test_every_redshift_statement_parses_as_redshift_sql() -> None:
    statements = star.redshift_load_statements("covid", CURATED, ROLE)
    trees = [sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE) for sql in statements]
    # sqlglot has no LOCK: it keeps it as a Command.
    stages = [exp.Create, exp.Copy, exp.Merge, exp.Drop] * 4
    assert [type(t) for t in trees] == [exp.Create] * 4 + [exp.Command] + stages
    assert (trees[4].this, trees[4].expression.name) == ("LOCK", ", ".join(f"covid.{t}" for t in CONTRACT))

    for tree, (name, columns) in zip(trees[:4], CONTRACT.items(), strict=True):
        assert tree.args["kind"] == "TABLE"
        assert tree.args["exists"] and tree.this.this.sql() == f"covid.{name}"
        assert [(c.name, c.args["kind"].sql("redshift")) for c in tree.find_all(exp.ColumnDef)] == [
            (c.name, c.sql_type) for c in star.TABLES[name].columns
        ]
        not_null = [c.name for c in tree.find_all(exp.ColumnDef) if c.find(exp.NotNullColumnConstraint)]
        assert not_null == [n for n, _, required in columns if required]
        (primary_key,) = tree.find_all(exp.PrimaryKey)
        assert [i.name for i in primary_key.expressions] == list(star.TABLES[name].primary_key)
        references = [
            (fk.expressions[0].name, fk.args["reference"].this.this.sql()) for fk in tree.find_all(exp.ForeignKey)
        ]
        assert references == [(c, f"covid.{d}") for c, d in star.TABLES[name].references]

    for i, name in enumerate(CONTRACT):
        create_stage, copy, merge, drop = trees[5 + 4 * i : 9 + 4 * i]
        assert create_stage.find(exp.TemporaryProperty) is not None
        assert [like.this.sql() for like in create_stage.find_all(exp.LikeProperty)] == [f"covid.{name}"]
        assert copy.this.sql() == f"{name}_stage"
        # The parser, not our quoting, says what the literals are: the source prefix, then the role.
        assert [lit.this for lit in copy.find_all(exp.Literal) if lit.is_string] == [f"{CURATED}{name}/", ROLE]
        assert copy.args["credentials"].args["iam_role"].this == ROLE
        assert [(p.this.name, p.expression.name) for p in copy.args["params"]] == [("FORMAT", "PARQUET")]
        assert merge.this.sql() == f"covid.{name}" and merge.args["using"].alias == "s"
        (matched, not_matched) = merge.args["whens"].expressions
        assert isinstance(matched.args["then"], exp.Update) and isinstance(not_matched.args["then"], exp.Insert)
        # UPDATE SET names bare target columns: neither dialect accepts a qualified one there.
        assignments = matched.args["then"].expressions
        assert all(a.this.table == "" for a in assignments)
        keys = star.TABLES[name].primary_key
        assert [a.this.name for a in assignments] == [c for c in star.TABLES[name].column_names if c not in keys]
        assert [c.name for c in not_matched.args["then"].this.expressions] == star.TABLES[name].column_names
        assert [t.sql() for t in drop.args["tables"]] == [f"{name}_stage"]


def test_every_postgres_statement_parses_as_postgres_sql() -> None:
    trees = [sqlglot.parse_one(sql, read="postgres") for sql in star.postgres_load_statements("covid")]
    stages = [exp.Create, exp.Copy, exp.Merge, exp.Drop] * 4
    assert [type(t) for t in trees] == [exp.Create] * 4 + [exp.Command] + stages


def test_batch_stays_within_the_data_api_limits_even_with_the_longest_names() -> None:
    longest_schema = "s" * 127
    uri = "s3://" + "b" * 63 + "/" + "p/" * 505  # + "dim_location/": a 1023-byte key, S3 allows 1024
    role = "arn:aws:iam::123456789012:role/" + "r" * 64
    statements = star.redshift_load_statements(longest_schema, uri, role)
    assert len(statements) == 21 <= star.MAX_STATEMENTS
    assert sum(len(s.encode()) for s in statements) < 100_000
    normal = star.redshift_load_statements("covid", CURATED, ROLE)
    assert sum(len(s.encode()) for s in normal) == 4703
    with pytest.raises(star.StarSchemaInputError, match=r"curated_uri's key prefix is too long for S3 keys"):
        star.redshift_load_statements("covid", uri + "p/", ROLE)


@pytest.mark.parametrize(("limit", "value"), [("MAX_STATEMENTS", 20), ("MAX_BATCH_BYTES", 4703)])
def test_a_batch_over_the_limits_is_refused(monkeypatch: pytest.MonkeyPatch, limit: str, value: int) -> None:
    monkeypatch.setattr(star, limit, value)
    with pytest.raises(star.StarSchemaInputError, match=r"the load is 21 statements / 4703 bytes, over the Data API"):
        star.redshift_load_statements("covid", CURATED, ROLE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schema": "Covid"}, r"schema 'Covid' is not a plain lower-case SQL identifier"),
        ({"schema": "covid;drop table x"}, r"schema 'covid;drop table x' is not a plain lower-case SQL identifier"),
        ({"schema": "1covid"}, r"schema '1covid' is not a plain lower-case SQL identifier"),
        ({"schema": ""}, r"schema '' is not a plain lower-case SQL identifier"),
        ({"schema": "s" * 128}, r"is not a plain lower-case SQL identifier"),
        (
            {"curated_uri": "s3://curated-bucket/covid/curated"},
            r"curated_uri must be an s3://bucket/prefix/ URI ending",
        ),
        ({"curated_uri": "/tmp/covid/curated/"}, r"got '/tmp/covid/curated/'"),
        ({"curated_uri": "s3://curated-bucket/it's/"}, r"curated_uri must be an s3://bucket/prefix/ URI"),
        ({"curated_uri": "s3://curated-bucket//x/"}, r"curated_uri must be an s3://bucket/prefix/ URI"),
        ({"curated_uri": "s3://Curated_Bucket/x/"}, r"curated_uri must be an s3://bucket/prefix/ URI"),
        ({"iam_role": "redshift-copy"}, r"iam_role must be an IAM role ARN .* got 'redshift-copy'"),
        ({"iam_role": "arn:aws:iam::1234:role/x"}, r"iam_role must be an IAM role ARN"),
        ({"iam_role": "arn:aws:iam::123456789012:user/x"}, r"iam_role must be an IAM role ARN"),
        ({"iam_role": "arn:aws:iam::123456789012:role/x' FORMAT AS CSV --"}, r"iam_role must be an IAM role ARN"),
    ],
)
def test_redshift_load_statements_refuse_unsafe_input(kwargs: dict[str, Any], message: str) -> None:
    arguments = {"schema": "covid", "curated_uri": CURATED, "iam_role": ROLE, **kwargs}
    with pytest.raises(star.StarSchemaInputError, match=message):
        star.redshift_load_statements(**arguments)


def test_other_builders_refuse_bad_schemas_and_literal_quotes_safely() -> None:
    for build in (star.create_statements, star.postgres_load_statements):
        with pytest.raises(star.StarSchemaInputError, match=r"schema 'a-b' is not a plain lower-case SQL identifier"):
            build("a-b")
    assert star.literal("it's") == "'it''s'"
    with pytest.raises(star.StarSchemaInputError, match="refusing to embed a string with a backslash"):
        star.literal("a\\b")
    with pytest.raises(star.StarSchemaInputError, match="backslash or control character"):
        star.literal("a\nb")


# --- real loads into PostgreSQL --------------------------------------------------------------------------


def test_ddl_creates_exactly_the_star_schema(postgres_dsn: str, schema: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        for _ in range(2):  # IF NOT EXISTS: a second run is a no-op
            for sql in star.create_statements(schema):
                conn.execute(sql)
    with psycopg.connect(postgres_dsn) as conn:
        tables = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", [schema]
        ).fetchall()
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position",
            [schema],
        ).fetchall()
        primary_keys = conn.execute(
            "SELECT c.table_name, k.column_name FROM information_schema.table_constraints c "
            "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
            "WHERE c.table_schema = %s AND c.constraint_type = 'PRIMARY KEY' ORDER BY 1, k.ordinal_position",
            [schema],
        ).fetchall()
        foreign_keys = conn.execute(
            "SELECT k.table_name, k.column_name, u.table_schema, u.table_name, u.column_name "
            "FROM information_schema.referential_constraints r "
            "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
            "JOIN information_schema.constraint_column_usage u USING (constraint_schema, constraint_name) "
            "WHERE r.constraint_schema = %s ORDER BY 1, 2",
            [schema],
        ).fetchall()

    assert tables == [(t, "BASE TABLE") for t in ("dim_date", "dim_location", "fact_cases", "fact_testing")]
    varchar, char = "character varying", "character"
    assert columns == [
        ("dim_date", "date_key", "integer", None, "NO"),
        ("dim_date", "full_date", "date", None, "NO"),
        ("dim_date", "year", "integer", None, "NO"),
        ("dim_date", "quarter", "integer", None, "NO"),
        ("dim_date", "month", "integer", None, "NO"),
        ("dim_date", "day", "integer", None, "NO"),
        ("dim_date", "day_of_week", "integer", None, "NO"),
        ("dim_date", "is_weekend", "boolean", None, "NO"),
        ("dim_location", "location_key", varchar, 128, "NO"),
        ("dim_location", "country", varchar, 256, "NO"),
        ("dim_location", "state", varchar, 256, "YES"),
        ("dim_location", "state_abbr", char, 2, "YES"),
        ("dim_location", "county", varchar, 256, "YES"),
        ("dim_location", "fips", char, 5, "YES"),
        ("dim_location", "latitude", "double precision", None, "YES"),
        ("dim_location", "longitude", "double precision", None, "YES"),
        ("dim_location", "population", "bigint", None, "YES"),
        ("fact_cases", "date_key", "integer", None, "NO"),
        ("fact_cases", "location_key", varchar, 128, "NO"),
        ("fact_cases", "confirmed", "bigint", None, "YES"),
        ("fact_cases", "deaths", "bigint", None, "YES"),
        ("fact_cases", "recovered", "bigint", None, "YES"),
        ("fact_cases", "active", "bigint", None, "YES"),
        ("fact_testing", "date_key", "integer", None, "NO"),
        ("fact_testing", "location_key", varchar, 128, "NO"),
        *(
            ("fact_testing", name, "bigint", None, "YES")
            for name in ("positive", "negative", "pending", "hospitalized_currently", "in_icu_currently",
                         "on_ventilator_currently", "recovered", "deaths", "total_test_results")
        ),
    ]  # fmt: skip
    assert primary_keys == [
        ("dim_date", "date_key"),
        ("dim_location", "location_key"),
        ("fact_cases", "date_key"),
        ("fact_cases", "location_key"),
        ("fact_testing", "date_key"),
        ("fact_testing", "location_key"),
    ]
    assert foreign_keys == [
        ("fact_cases", "date_key", schema, "dim_date", "date_key"),
        ("fact_cases", "location_key", schema, "dim_location", "location_key"),
        ("fact_testing", "date_key", schema, "dim_date", "date_key"),
        ("fact_testing", "location_key", schema, "dim_location", "location_key"),
    ]


def test_first_load_gives_exact_rows_and_a_rerun_changes_nothing(
    postgres_dsn: str, schema: str, tmp_path: Path
) -> None:
    curated = write_curated(tmp_path / "curated", ROWS)
    assert tables_in(postgres_dsn, schema) == []

    assert star.load_postgres(postgres_dsn, schema, curated) == STAGED
    assert snapshot(postgres_dsn, schema) == ROWS

    # Same curated data again (trailing slash too): identical tables, no duplicates.
    assert star.load_postgres(postgres_dsn, schema, curated + "/") == STAGED
    assert snapshot(postgres_dsn, schema) == ROWS


def test_changed_and_new_rows_are_merged_others_untouched(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "v1", ROWS))

    v2: dict[str, list[tuple[Any, ...]]] = {
        "dim_date": [*DIM_DATE, (20200310, date(2020, 3, 10), 2020, 1, 3, 10, 2, False)],
        "dim_location": [
            *DIM_LOCATION[:3],
            ("US-WA", "US", "Washington", "WA", None, None, 47.4009, -121.4905, 7614894),  # population revised
        ],
        "fact_cases": [
            *FACT_CASES[:5],
            (20200309, "US-53033", 118, 21, 0, 97),  # corrected
            (20200309, "KOREA_SOUTH", 7478, 53, 166, 7259),  # new
        ],
        "fact_testing": [*FACT_TESTING, (20200310, "US-WA", 162, 1844, None, None, None, None, None, 24, 2006)],
    }
    assert star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "v2", v2)) == {
        "dim_date": 4,
        "dim_location": 4,
        "fact_cases": 7,
        "fact_testing": 4,
    }
    assert snapshot(postgres_dsn, schema) == {
        "dim_date": v2["dim_date"],
        "dim_location": v2["dim_location"],
        "fact_cases": [
            (20200307, "KOREA_SOUTH", 7041, 48, 135, 6858),
            (20200307, "US-53033", 71, 15, None, None),
            (20200308, "KOREA_SOUTH", 7314, 50, 118, 7146),
            (20200308, "US-53033", 83, 17, None, None),
            (20200309, "KOREA_SOUTH", 7478, 53, 166, 7259),
            (20200309, "US-35013", 0, 0, None, None),
            (20200309, "US-53033", 118, 21, 0, 97),
        ],
        "fact_testing": v2["fact_testing"],
    }

    # Rows missing from a later curated set are kept (MERGE only updates and inserts).
    v3: dict[str, list[tuple[Any, ...]]] = {**v2, "fact_cases": v2["fact_cases"][:1]}
    assert star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "v3", v3))["fact_cases"] == 1
    assert len(snapshot(postgres_dsn, schema)["fact_cases"]) == 7


V2_WITH_DIM_CHANGE: dict[str, list[tuple[Any, ...]]] = {
    **ROWS,
    "dim_location": [*DIM_LOCATION[:3], (*DIM_LOCATION[3][:8], 1)],
}


@pytest.mark.parametrize(
    ("bad_rows", "error"),
    [
        # A fact whose location is not in dim_location: the FK (informational on Redshift) is enforced here.
        ({**V2_WITH_DIM_CHANGE, "fact_cases": [*FACT_CASES, (20200309, "US-99999", 1, 0, None, None)]},
         psycopg.errors.ForeignKeyViolation),
        ({**V2_WITH_DIM_CHANGE, "fact_testing": [*FACT_TESTING, (20200311, "US-WA", *[1] * 9)]},
         psycopg.errors.ForeignKeyViolation),
        # The same key twice in the curated data: MERGE may not update one row twice.
        ({**V2_WITH_DIM_CHANGE, "fact_cases": [*FACT_CASES, (20200309, "US-53033", 1, 1, 1, 1)]},
         psycopg.errors.CardinalityViolation),
    ],
    ids=["fact-location-not-in-dim", "fact-date-not-in-dim", "duplicate-key-in-curated"],
)  # fmt: skip
def test_a_failure_anywhere_rolls_back_every_table(
    postgres_dsn: str, schema: str, tmp_path: Path, bad_rows: dict[str, list[tuple]], error: type[Exception]
) -> None:
    star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "good", ROWS))

    with pytest.raises(error):
        star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "bad", bad_rows))

    # dim_location's population change (merged before the failing fact) is rolled back with the rest.
    assert snapshot(postgres_dsn, schema) == ROWS


def test_a_failed_first_load_leaves_empty_tables(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    """The tables are created before the load's transaction (which LOCKs them, so they must exist: see
    job_runtime.warehouse.split_setup); a failed first load leaves them empty."""
    empty: dict[str, list[tuple]] = {t: [] for t in CONTRACT}
    bad: dict[str, list[tuple[Any, ...]]] = {**ROWS, "fact_cases": [(20200309, "NOWHERE", 1, 0, 0, 1)]}
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="fact_cases"):
        star.load_postgres(postgres_dsn, schema, write_curated(tmp_path, bad))
    assert tables_in(postgres_dsn, schema) == sorted(CONTRACT)
    assert snapshot(postgres_dsn, schema) == empty

    # Duplicate keys on a first load: both rows are "not matched", the primary key refuses the second.
    dup: dict[str, list[tuple[Any, ...]]] = {**ROWS, "dim_date": [*DIM_DATE, DIM_DATE[0]]}
    with pytest.raises(psycopg.errors.UniqueViolation, match="dim_date"):
        star.load_postgres(postgres_dsn, schema, write_curated(tmp_path / "dup", dup))
    assert snapshot(postgres_dsn, schema) == empty


def test_parquet_off_the_contract_is_refused_before_any_sql(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    curated = write_curated(tmp_path, ROWS)
    # Same columns, deaths before confirmed: a positional COPY would swap them silently.
    folder = tmp_path / "fact_cases"
    for file in folder.glob("*.parquet"):
        table = pq.read_table(file)
        pq.write_table(table.select(["date_key", "location_key", "deaths", "confirmed", "recovered", "active"]), file)
    swapped = r"curated fact_cases Parquet columns \[.*\('deaths', 'int64'\), \('confirmed', 'int64'\).*\] are not"
    with pytest.raises(star.StarSchemaInputError, match=swapped):
        star.load_postgres(postgres_dsn, schema, curated)
    assert tables_in(postgres_dsn, schema) == []


def test_wrong_arrow_type_is_refused(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    curated = write_curated(tmp_path, ROWS)
    for file in (tmp_path / "dim_date").glob("*.parquet"):
        table = pq.read_table(file)
        pq.write_table(table.set_column(0, "date_key", table.column("date_key").cast(pa.int64())), file)
    with pytest.raises(star.StarSchemaInputError, match=r"\('date_key', 'int64'\)"):
        star.load_postgres(postgres_dsn, schema, curated)
    assert tables_in(postgres_dsn, schema) == []
