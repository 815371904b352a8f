"""The `sales_load_warehouse` Glue job: SQL generation, the Data API driver, and real loads into PostgreSQL.

The PostgreSQL tests run the converter (`sales_csv_to_parquet`) on files written here, then the
loader, on local paths, each in a fresh schema of the session's PostgreSQL. Expected table rows
are literal.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
import sales_csv_to_parquet as converter
import sales_load_warehouse as job
import sqlglot
from sqlglot import exp

from job_runtime.errors import BadInputError
from job_runtime.warehouse import WarehouseError, arrow_location, run_redshift_transaction
from tests.jobs.emf import figures, one_run_summary
from tests.jobs.test_sales_csv_to_parquet import SAMPLE, SAMPLE_CLEAN

DEFAULT = list(converter.parse_columns(converter.DEFAULT_COLUMNS))
STAGE = "s3://stage-bucket/sales/20240301T000000-abcd1234/"
ROLE = "arn:aws:iam::123456789012:role/redshift-copy"


# --- SQL ---------------------------------------------------------------------------------------------


def test_warehouse_columns_match_the_converter_schema() -> None:
    assert list(job.COLUMNS) == [f.name for f in converter.SCHEMA]
    for field in converter.SCHEMA:
        spark_type, sql_type, not_null = job.COLUMNS[field.name]
        assert spark_type == converter.spark_type(field).simpleString()
        assert not_null == field.required
        if field.kind == "string":
            assert sql_type == f"VARCHAR({field.max_bytes})"


def test_load_statements_for_redshift_exactly() -> None:
    statements = job.load_statements(
        DEFAULT, ["a.csv", "2024/it's.csv"], schema="public", table="sales", stage_uri=STAGE, iam_role=ROLE
    )
    assert statements == [
        "CREATE TABLE IF NOT EXISTS public.sales (order_id VARCHAR(64) NOT NULL, order_date DATE NOT NULL, "
        "customer_id VARCHAR(64) NOT NULL, product_id VARCHAR(64) NOT NULL, category VARCHAR(256), "
        "region VARCHAR(256), quantity INTEGER NOT NULL, unit_price DECIMAL(12,2) NOT NULL, discount DECIMAL(5,4), "
        "source_file VARCHAR(1024) NOT NULL, PRIMARY KEY (order_id))",
        "LOCK public.sales",
        "CREATE TEMP TABLE sales_stage (LIKE public.sales)",
        f"COPY sales_stage FROM '{STAGE}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET",
        "DELETE FROM public.sales WHERE source_file IN ('a.csv', '2024/it''s.csv') "
        "AND order_id NOT IN (SELECT order_id FROM sales_stage)",
        "MERGE INTO public.sales USING sales_stage s ON public.sales.order_id = s.order_id "
        "WHEN MATCHED THEN UPDATE SET order_date = s.order_date, customer_id = s.customer_id, "
        "product_id = s.product_id, category = s.category, region = s.region, quantity = s.quantity, "
        "unit_price = s.unit_price, discount = s.discount, source_file = s.source_file "
        "WHEN NOT MATCHED THEN INSERT (order_id, order_date, customer_id, product_id, category, region, quantity, "
        "unit_price, discount, source_file) VALUES (s.order_id, s.order_date, s.customer_id, s.product_id, "
        "s.category, s.region, s.quantity, s.unit_price, s.discount, s.source_file)",
        "DROP TABLE sales_stage",
    ]


def test_every_redshift_statement_parses_as_redshift_sql() -> None:
    statements = job.load_statements(
        [f.name for f in converter.SCHEMA], ["a.csv", "it's.csv"], schema="analytics", table="sales",
        stage_uri=STAGE, iam_role=ROLE,
    )  # fmt: skip
    trees = [sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE) for sql in statements]
    # sqlglot has no LOCK: it keeps the statement as a Command with the table name.
    assert [type(t) for t in trees] == [exp.Create, exp.Command, exp.Create, exp.Copy, exp.Delete, exp.Merge, exp.Drop]
    assert (trees[1].this, trees[1].expression.name) == ("LOCK", "analytics.sales")
    # The parser, not our escaping, says what the literals are.
    assert [lit.this for lit in trees[4].find_all(exp.Literal) if lit.is_string] == ["a.csv", "it's.csv"]
    assert [lit.this for lit in trees[3].find_all(exp.Literal) if lit.is_string] == [STAGE, ROLE]
    create = trees[0]
    assert [c.name for c in create.find_all(exp.ColumnDef)] == [*job.COLUMNS, "source_file"]
    assert trees[5].this.sql() == "analytics.sales"


def test_postgres_fill_is_copy_from_stdin() -> None:
    statements = job.load_statements(["order_date", "order_id", "quantity"], ["a.csv"], schema="s1", table="t")
    assert statements[1] == "LOCK s1.t"
    assert statements[3] == "COPY t_stage (order_id, order_date, quantity, source_file) FROM STDIN"
    assert [type(sqlglot.parse_one(s, read="postgres")) for s in statements] == [
        exp.Create, exp.Command, exp.Create, exp.Copy, exp.Delete, exp.Merge, exp.Drop,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schema": "Public"}, "schema 'Public' is not a plain lower-case SQL identifier"),
        ({"table": "sales;drop"}, "table 'sales;drop' is not a plain lower-case SQL identifier"),
        ({"sources": ["a\\b.csv"]}, "refusing to embed a string with a backslash"),
        ({"sources": ["a\nb.csv"]}, "refusing to embed a string with a backslash or control character"),
        ({"iam_role": "my-role"}, "Redshift COPY needs an s3:// stage and an IAM role ARN"),
        ({"stage_uri": "/tmp/stage/"}, "Redshift COPY needs an s3:// stage and an IAM role ARN"),
        ({"selected": ["order_id", "quantity"]}, "not a valid sales selection"),
        ({"selected": ["order_id", "order_date", "price"]}, r"unknown: \['price'\]"),
    ],
)
def test_load_statements_refuse_unsafe_names(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"selected": DEFAULT, "sources": ["a.csv"], "schema": "public", "table": "sales",
                                 "stage_uri": STAGE, "iam_role": ROLE, **kwargs}  # fmt: skip
    with pytest.raises(BadInputError, match=message):
        job.load_statements(arguments.pop("selected"), arguments.pop("sources"), **arguments)


# --- Redshift Data API driver ------------------------------------------------------------------------


class FakeDataApi:
    """Records every call; describe_statement answers from a script, then `then` for ever."""

    def __init__(self, statuses: list[str], then: str = "STARTED", error: str = "") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.statuses, self.then, self.error = list(statuses), then, error

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_execute_statement", kwargs))
        return {"Id": "stmt-1"}

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("execute_statement", kwargs))
        return {"Id": "create-1"}

    def describe_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_statement", kwargs))
        status = self.statuses.pop(0) if self.statuses else self.then
        return {"Id": kwargs["Id"], "Status": status, **({"Error": self.error} if status == "FAILED" else {})}

    def cancel_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("cancel_statement", kwargs))
        return {"Status": True}


SQLS = job.load_statements(DEFAULT, ["a.csv"], schema="public", table="sales", stage_uri=STAGE, iam_role=ROLE)
TRANSACTION = SQLS[1:]  # from LOCK on; the CREATE TABLE IF NOT EXISTS runs before, on its own


def test_data_api_runs_one_batch_and_polls_until_finished() -> None:
    client = FakeDataApi(["FINISHED", "SUBMITTED", "STARTED", "FINISHED"])
    warehouse = job.RedshiftDataWarehouse("sales-wg", "dev", client=client, poll_seconds=0)

    warehouse.run_transaction(SQLS, STAGE)

    assert TRANSACTION[0] == "LOCK public.sales"
    assert client.calls == [
        # The table exists before the transaction that LOCKs it (job_runtime.warehouse.split_setup).
        ("execute_statement",
         {"WorkgroupName": "sales-wg", "Database": "dev", "Sql": SQLS[0],
          "StatementName": "sales_load_warehouse-create"}),
        ("describe_statement", {"Id": "create-1"}),
        ("batch_execute_statement",
         {"WorkgroupName": "sales-wg", "Database": "dev", "Sqls": TRANSACTION,
          "StatementName": "sales_load_warehouse"}),
        ("describe_statement", {"Id": "stmt-1"}),
        ("describe_statement", {"Id": "stmt-1"}),
        ("describe_statement", {"Id": "stmt-1"}),
    ]  # fmt: skip


def test_data_api_failure_raises_with_redshift_error_text() -> None:
    error = 'ERROR: Spectrum Scan Error: File has an incompatible Parquet schema for column "unit_price"'
    client = FakeDataApi(["STARTED", "FAILED"], error=error)
    with pytest.raises(WarehouseError) as failed:
        run_redshift_transaction(TRANSACTION, workgroup="wg", database="dev", client=client, poll_seconds=0)
    assert str(failed.value) == f"Redshift transaction stmt-1 FAILED: {error}"
    assert [name for name, _ in client.calls] == ["batch_execute_statement", "describe_statement", "describe_statement"]


def test_data_api_timeout_cancels_and_raises() -> None:
    client = FakeDataApi([], then="STARTED")
    with pytest.raises(WarehouseError) as timed_out:
        run_redshift_transaction(
            TRANSACTION, workgroup="wg", database="dev", client=client, poll_seconds=0.01, timeout_seconds=0.05
        )
    assert str(timed_out.value) == "Redshift transaction stmt-1 still STARTED after 0.05s: cancelled"
    assert client.calls[-1] == ("cancel_statement", {"Id": "stmt-1"})
    assert {name for name, _ in client.calls[1:-1]} == {"describe_statement"}


def test_redshift_backend_needs_its_arguments() -> None:
    with pytest.raises(BadInputError, match="--warehouse redshift-data needs --workgroup, --iam_role"):
        job.make_warehouse({"warehouse": "redshift-data", "database": "dev"})
    with pytest.raises(BadInputError, match="--warehouse postgres needs --dsn"):
        job.make_warehouse({"warehouse": "postgres"})
    with pytest.raises(BadInputError, match="must be redshift-data or postgres"):
        job.make_warehouse({"warehouse": "mysql"})


# --- end to end: converter, then loader into a real PostgreSQL -----------------------------------------

HEADER = "order_id,order_date,customer_id,product_id,product_name,category,region,quantity,unit_price,discount,notes\n"
APRIL_V1 = HEADER + (
    "SO-2001,2024-04-01,C-020,P-400,Tablet,Electronics,North,1,299.00,,\n"
    "SO-2002,2024-04-01,C-021,P-401,Tablet Case,Electronics,South,2,19.90,0.1,gift\n"
    "SO-2003,2024-04-02,C-022,P-402,Desk Lamp,Furniture,East,1,45.50,,\n"
    "SO-2004,2024-04-03,,P-403,Pen,Stationery,West,3,1.20,,no customer\n"
)
APRIL_V2 = HEADER + (  # corrected: SO-2002 changed, SO-2003 gone, SO-2005 new
    "SO-2001,2024-04-01,C-020,P-400,Tablet,Electronics,North,1,299.00,,\n"
    "SO-2002,2024-04-01,C-021,P-401,Tablet Case,Electronics,South,3,18.50,0.15,gift\n"
    "SO-2005,2024-04-04,C-023,P-404,Stapler,Stationery,North,1,7.25,,\n"
)
APRIL_V1_ROWS = [
    ("SO-2001", "2024-04-01", "C-020", "P-400", "Electronics", "North", 1, "299.00", None, "sales_2024_04.csv"),
    ("SO-2002", "2024-04-01", "C-021", "P-401", "Electronics", "South", 2, "19.90", "0.1000", "sales_2024_04.csv"),
    ("SO-2003", "2024-04-02", "C-022", "P-402", "Furniture", "East", 1, "45.50", None, "sales_2024_04.csv"),
]
APRIL_V2_ROWS = [
    ("SO-2001", "2024-04-01", "C-020", "P-400", "Electronics", "North", 1, "299.00", None, "sales_2024_04.csv"),
    ("SO-2002", "2024-04-01", "C-021", "P-401", "Electronics", "South", 3, "18.50", "0.1500", "sales_2024_04.csv"),
    ("SO-2005", "2024-04-04", "C-023", "P-404", "Stationery", "North", 1, "7.25", None, "sales_2024_04.csv"),
]
MARCH_ROWS = [(*r, "sales_2024_03.csv") for r in SAMPLE_CLEAN]
TABLE_COLUMNS = [
    ("order_id", "character varying(64)", "NO"),
    ("order_date", "date", "NO"),
    ("customer_id", "character varying(64)", "NO"),
    ("product_id", "character varying(64)", "NO"),
    ("category", "character varying(256)", "YES"),
    ("region", "character varying(256)", "YES"),
    ("quantity", "integer", "NO"),
    ("unit_price", "numeric(12,2)", "NO"),
    ("discount", "numeric(5,4)", "YES"),
    ("source_file", "character varying(1024)", "NO"),
]


class Pipeline:
    """Both jobs on local paths under one directory, loading into one PostgreSQL schema."""

    def __init__(self, root: Path, dsn: str, schema: str) -> None:
        self.root, self.dsn, self.schema = root, dsn, schema
        self.input = root / "in"
        self.input.mkdir()

    def put(self, name: str, text: str, mtime: int) -> None:
        path = self.input / name
        path.write_text(text)
        os.utime(path, (mtime, mtime))

    def convert(self) -> dict[str, Any]:
        return converter.main(["--input_path", str(self.input), "--output_path", str(self.root / "parquet"),
                               "--quarantine_path", str(self.root / "quarantine"),
                               "--state_path", str(self.root / "state")])  # fmt: skip

    def load_args(self) -> list[str]:
        return ["--parquet_path", str(self.root / "parquet"), "--stage_path", str(self.root / "stage"),
                "--state_path", str(self.root / "state"), "--warehouse", "postgres", "--dsn", self.dsn,
                "--schema", self.schema]  # fmt: skip

    def load(self, warehouse=None) -> dict[str, Any]:
        return job.main(self.load_args(), warehouse=warehouse)

    def rows(self) -> list[tuple]:
        with psycopg.connect(self.dsn) as conn:
            fetched = conn.execute(
                "SELECT order_id, order_date, customer_id, product_id, category, region, quantity, unit_price, "
                f"discount, source_file FROM {self.schema}.sales_data_table ORDER BY order_id"
            ).fetchall()
        return [(r[0], str(r[1]), *r[2:6], r[6], str(r[7]), None if r[8] is None else str(r[8]), r[9]) for r in fetched]

    def columns(self) -> list[tuple[str, str, str]]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
                "is_nullable FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'sales_data_table' ORDER BY ordinal_position",
                [self.schema],
            ).fetchall()
        out = []
        for name, dtype, length, precision, scale, nullable in rows:
            if length:
                dtype = f"{dtype}({length})"
            elif dtype == "numeric":
                dtype = f"numeric({precision},{scale})"
            out.append((name, dtype, nullable))
        return out

    def primary_key(self) -> list[str]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT k.column_name FROM information_schema.table_constraints c "
                "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
                "WHERE c.table_schema = %s AND c.table_name = 'sales_data_table' AND c.constraint_type = 'PRIMARY KEY'",
                [self.schema],
            ).fetchall()
        return [name for (name,) in rows]

    def marker(self, kind: str, rel: str) -> dict[str, Any] | None:
        path = self.root / "state" / kind / f"{rel}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def stage_leftovers(self) -> list[Path]:
        stage = self.root / "stage"
        return [p for p in stage.rglob("*") if p.is_file()] if stage.exists() else []


@pytest.fixture
def pipeline(tmp_path: Path, postgres_dsn: str) -> Iterator[Pipeline]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield Pipeline(tmp_path, postgres_dsn, schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def summary(pipeline: Pipeline, sources: list[str], rows: int) -> dict[str, Any]:
    return {"job": "sales_load_warehouse", "sources": sources, "rows_in": rows, "rows_loaded": rows,
            "rows_quarantined": 0, "table": f"{pipeline.schema}.sales_data_table", "warehouse": "postgres"}  # fmt: skip


def test_two_files_load_exactly_and_reloads_are_idempotent(spark, pipeline: Pipeline, capsys) -> None:
    shutil.copy(SAMPLE, pipeline.input / SAMPLE.name)
    os.utime(pipeline.input / SAMPLE.name, (1_710_000_000, 1_710_000_000))
    pipeline.put("sales_2024_04.csv", APRIL_V1, mtime=1_712_000_000)
    assert pipeline.convert()["rows_loaded"] == 22

    capsys.readouterr()
    assert pipeline.load() == summary(pipeline, ["sales_2024_03.csv", "sales_2024_04.csv"], 22)
    # The run's one metrics line (tests/jobs/emf.py): every staged row loaded, one file per source.
    document = one_run_summary(capsys.readouterr().out, pipeline="sales", job="sales_load_warehouse")
    assert figures(document) == {
        "Stack": "local", "Pipeline": "sales", "Job": "sales_load_warehouse", "RowsIn": 22, "RowsLoaded": 22,
        "RowsQuarantined": 0, "Files": 2, "sources": ["sales_2024_03.csv", "sales_2024_04.csv"],
        "table": f"{pipeline.schema}.sales_data_table", "warehouse": "postgres",
    }  # fmt: skip

    assert pipeline.columns() == TABLE_COLUMNS
    assert pipeline.primary_key() == ["order_id"]
    assert pipeline.rows() == sorted(MARCH_ROWS + APRIL_V1_ROWS)
    assert pipeline.marker("loaded", "sales_2024_04.csv") == {
        **pipeline.marker("converted", "sales_2024_04.csv"),  # type: ignore[dict-item]
        "table": f"{pipeline.schema}.sales_data_table",
        "run_id": pipeline.marker("loaded", "sales_2024_04.csv")["run_id"],  # type: ignore[index]
        "rows_staged": 3,
    }
    assert pipeline.marker("loaded", "sales_2024_03.csv")["rows_staged"] == 19  # type: ignore[index]
    assert pipeline.stage_leftovers() == []

    # Nothing converted since: nothing to load, table unchanged.
    assert pipeline.load() == summary(pipeline, [], 0)
    assert pipeline.rows() == sorted(MARCH_ROWS + APRIL_V1_ROWS)

    # The same April file again (new upload, same content): reloaded, same table.
    os.utime(pipeline.input / "sales_2024_04.csv", (1_712_000_100, 1_712_000_100))
    pipeline.convert()
    assert pipeline.load() == summary(pipeline, ["sales_2024_04.csv"], 3)
    assert pipeline.rows() == sorted(MARCH_ROWS + APRIL_V1_ROWS)

    # A corrected April file: changed row updated, vanished order deleted, March untouched.
    pipeline.put("sales_2024_04.csv", APRIL_V2, mtime=1_712_000_200)
    pipeline.convert()
    assert pipeline.load() == summary(pipeline, ["sales_2024_04.csv"], 3)
    assert pipeline.rows() == sorted(MARCH_ROWS + APRIL_V2_ROWS)

    # Corrected to nothing valid at all: all of April's rows go.
    pipeline.put("sales_2024_04.csv", HEADER + "SO-2001,2024-04-01,C-020,P-400,,,,0,1.00,,\n", mtime=1_712_000_300)
    assert pipeline.convert()["rows_quarantined"] == 1
    assert pipeline.load() == summary(pipeline, ["sales_2024_04.csv"], 0)
    assert pipeline.rows() == sorted(MARCH_ROWS)


HEADER_MIN = "order_id,order_date,customer_id,product_id,category,region,quantity,unit_price,discount\n"


def test_same_order_in_two_files_the_later_upload_wins(spark, pipeline: Pipeline) -> None:
    # x.csv sorts first by name but was uploaded last: the upload time decides, not the name.
    pipeline.put(
        "y.csv", HEADER_MIN + "D-1,2024-05-01,from-y,P,,,1,1.00,\nY-1,2024-05-01,C,P,,,1,1.00,\n", 1_714_000_000
    )
    pipeline.put(
        "x.csv", HEADER_MIN + "D-1,2024-05-02,from-x,P,,,2,2.00,\nX-1,2024-05-02,C,P,,,1,1.00,\n", 1_714_000_100
    )
    pipeline.convert()

    assert pipeline.load() == summary(pipeline, ["y.csv", "x.csv"], 3)
    assert pipeline.rows() == [
        ("D-1", "2024-05-02", "from-x", "P", None, None, 2, "2.00", None, "x.csv"),
        ("X-1", "2024-05-02", "C", "P", None, None, 1, "1.00", None, "x.csv"),
        ("Y-1", "2024-05-01", "C", "P", None, None, 1, "1.00", None, "y.csv"),
    ]
    staged = {rel: (pipeline.marker("loaded", rel) or {})["rows_staged"] for rel in ("x.csv", "y.csv")}
    assert staged == {"x.csv": 2, "y.csv": 1}

    # y.csv uploaded again later: now its D-1 wins (across runs, the latest upload wins too) ...
    pipeline.put(
        "y.csv", HEADER_MIN + "D-1,2024-05-01,from-y,P,,,1,1.00,\nY-1,2024-05-01,C,P,,,1,1.00,\n", 1_714_000_200
    )
    pipeline.convert()
    assert pipeline.load() == summary(pipeline, ["y.csv"], 2)
    # ... and x.csv corrected without D-1 does not delete y's D-1.
    pipeline.put("x.csv", HEADER_MIN + "X-1,2024-05-02,C,P,,,1,1.00,\n", 1_714_000_300)
    pipeline.convert()
    assert pipeline.load() == summary(pipeline, ["x.csv"], 1)
    assert pipeline.rows() == [
        ("D-1", "2024-05-01", "from-y", "P", None, None, 1, "1.00", None, "y.csv"),
        ("X-1", "2024-05-02", "C", "P", None, None, 1, "1.00", None, "x.csv"),
        ("Y-1", "2024-05-01", "C", "P", None, None, 1, "1.00", None, "y.csv"),
    ]


class StageInspectingWarehouse:
    """Looks at the staged Parquet at load time (what Redshift would COPY), then fails or succeeds."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.seen: list[tuple[list[str], list[str], list[str]]] = []

    def run_transaction(self, statements, stage_uri: str) -> None:
        files = sorted(p for p in Path(arrow_location(stage_uri)).iterdir() if p.name.endswith(".parquet"))
        schema = pq.ParquetFile(files[0]).schema
        physical = [schema.column(i).physical_type for i in range(len(schema))]
        self.seen.append(([s.split(" ", 1)[0] for s in statements], schema.names, physical))
        if self.fail:
            raise WarehouseError("Redshift transaction stmt-1 FAILED: boom")


def test_stage_matches_the_table_and_a_failed_load_marks_nothing(spark, pipeline: Pipeline) -> None:
    pipeline.put("sales_2024_04.csv", APRIL_V1, mtime=1_712_000_000)
    pipeline.convert()

    failing = StageInspectingWarehouse(fail=True)
    with pytest.raises(WarehouseError, match="boom"):
        pipeline.load(failing)
    # Single-level Parquet whose columns are the table's, in order (Parquet COPY maps by position);
    # decimals as fixed-length byte arrays.
    assert failing.seen == [
        (
            ["CREATE", "LOCK", "CREATE", "COPY", "DELETE", "MERGE", "DROP"],
            [c for c, _, _ in TABLE_COLUMNS],
            ["BYTE_ARRAY", "INT32", "BYTE_ARRAY", "BYTE_ARRAY", "BYTE_ARRAY", "BYTE_ARRAY", "INT32",
             "FIXED_LEN_BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY", "BYTE_ARRAY"],
        )
    ]  # fmt: skip
    assert pipeline.marker("loaded", "sales_2024_04.csv") is None
    assert pipeline.stage_leftovers() == []

    # Still pending: the next run loads it.
    assert pipeline.load() == summary(pipeline, ["sales_2024_04.csv"], 3)
    assert pipeline.rows() == APRIL_V1_ROWS
