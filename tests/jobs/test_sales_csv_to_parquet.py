"""The `sales_csv_to_parquet` Glue job on pyspark 3.5 (Glue 5.0's engine): transform and main end to end.

Expected rows and reasons are literal, copied by hand from the inputs written here or from
sample_data/sales/sales_2024_03.csv - never computed with the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import glue_common
import pyarrow.parquet as pq
import pytest
import sales_csv_to_parquet as job
from moto import mock_aws
from pyspark.sql import types as T

from job_runtime.errors import BadInputError
from tests.jobs.emf import figures, one_run_summary

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sales" / "sales_2024_03.csv"
ALL = [
    "order_id", "order_date", "customer_id", "product_id", "product_name", "category", "region",
    "quantity", "unit_price", "discount", "sales_rep", "notes",
]  # fmt: skip
DEFAULT = ["order_id", "order_date", "customer_id", "product_id", "category", "region", "quantity", "unit_price",
           "discount"]  # fmt: skip
VALID = {
    "order_id": "O-1", "order_date": "2024-03-01", "customer_id": "C-1", "product_id": "P-1",
    "product_name": "Mouse", "category": "Electronics", "region": "North", "quantity": "2",
    "unit_price": "24.99", "discount": "0.10", "sales_rep": "Alice", "notes": "",
}  # fmt: skip
FULL_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("order_date", T.DateType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("product_id", T.StringType()),
        T.StructField("product_name", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("quantity", T.IntegerType()),
        T.StructField("unit_price", T.DecimalType(12, 2)),
        T.StructField("discount", T.DecimalType(5, 4)),
        T.StructField("sales_rep", T.StringType()),
        T.StructField("notes", T.StringType()),
        T.StructField("source_file", T.StringType()),
    ]
)
D = Decimal
MARCH = dt.date(2024, 3, 1)


def raw_df(spark, rows: list[dict[str, Any]], columns=ALL, source: str = "s.csv"):
    """Raw rows as the job reads them: strings, source_file, file order and the malformed-row column."""
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in columns]
        + [
            T.StructField("source_file", T.StringType()),
            T.StructField("_row_order", T.LongType()),
            T.StructField("_corrupt_record", T.StringType()),
        ]
    )
    data = [
        (*(r.get(c) for c in columns), r.get("source_file", source), i, r.get("_corrupt_record"))
        for i, r in enumerate(rows)
    ]
    return spark.createDataFrame(data, schema)


def row(**overrides: Any) -> dict[str, Any]:
    return {**VALID, **overrides}


def collect(df, key=("source_file", "order_id")) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=lambda t: tuple(str(t[df.columns.index(k)]) for k in key))


# --- column selection --------------------------------------------------------------------------------


def test_parse_columns_orders_by_schema_and_requires_the_keys() -> None:
    assert job.parse_columns(job.DEFAULT_COLUMNS) == tuple(DEFAULT)
    assert job.parse_columns(" quantity , order_date,order_id ") == ("order_id", "order_date", "quantity")
    with pytest.raises(BadInputError) as missing:
        job.parse_columns("order_date,quantity")
    assert str(missing.value) == (
        "--columns must include order_id and order_date (the key and the partition); missing ['order_id']"
    )
    with pytest.raises(BadInputError) as unknown:
        job.parse_columns("order_id,order_date,price")
    assert str(unknown.value) == f"--columns names unknown columns ['price']; the sales schema has {ALL}"


def test_transform_rejects_a_selection_without_order_id(spark) -> None:
    with pytest.raises(BadInputError, match=r"missing \['order_id'\]"):
        job.transform_sales(raw_df(spark, [row()]), ["order_date", "quantity"])


# --- transform: valid rows ---------------------------------------------------------------------------


def test_valid_rows_are_typed_in_schema_order(spark) -> None:
    rows = [
        row(),
        row(order_id=" O-2 ", order_date="2024-02-29", customer_id="C-2", product_id="P-2", product_name="",
            category=None, region="  ", quantity="+3", unit_price="0", discount="", sales_rep=None,
            notes='He said "fine", twice'),
        row(order_id="O" * 64, quantity=" 2147483647 ", unit_price="9999999999.99", discount="1", notes="é" * 2048),
        row(order_id="O-4", quantity="1", unit_price=".5", discount="0"),
        row(order_id="O-5", quantity="007", unit_price="5.", discount="0.0001"),
    ]  # fmt: skip
    clean, quarantine = job.transform_sales(raw_df(spark, rows), ALL)

    assert clean.schema == FULL_SCHEMA
    assert quarantine.count() == 0
    assert collect(clean) == [
        ("O-1", MARCH, "C-1", "P-1", "Mouse", "Electronics", "North", 2, D("24.99"), D("0.1000"), "Alice", None,
         "s.csv"),
        ("O-2", dt.date(2024, 2, 29), "C-2", "P-2", None, None, None, 3, D("0.00"), None, None,
         'He said "fine", twice', "s.csv"),
        ("O-4", MARCH, "C-1", "P-1", "Mouse", "Electronics", "North", 1, D("0.50"), D("0.0000"), "Alice", None,
         "s.csv"),
        ("O-5", MARCH, "C-1", "P-1", "Mouse", "Electronics", "North", 7, D("5.00"), D("0.0001"), "Alice", None,
         "s.csv"),
        ("O" * 64, MARCH, "C-1", "P-1", "Mouse", "Electronics", "North", 2147483647, D("9999999999.99"), D("1.0000"),
         "Alice", "é" * 2048, "s.csv"),
    ]  # fmt: skip


def test_trimming_removes_ascii_whitespace_only(spark) -> None:
    """Space, tab, newline, vertical tab, form feed and carriage return (Java regex `\\s`) at either end;
    no-break and other Unicode spaces are text."""
    rows = [
        row(order_id="\t O-1\r\n", customer_id="\x0b\fC-7 \x0b", quantity="\n 5\t", region="\t \n\r",
            unit_price=" 1.50\f"),
        row(order_id="O-2", customer_id="\u00a0C-8", product_id="P-1\u2003", quantity="\u00a02"),
    ]  # fmt: skip
    selected = ["order_id", "order_date", "customer_id", "product_id", "region", "quantity", "unit_price"]
    clean, quarantine = job.transform_sales(raw_df(spark, rows), selected)

    assert collect(clean) == [("O-1", MARCH, "C-7", "P-1", None, 5, D("1.50"), "s.csv")]
    assert collect(quarantine) == [
        ("O-2", "2024-03-01", "\u00a0C-8", "P-1\u2003", "North", "\u00a02", "24.99", "s.csv",
         "quantity is not an integer"),
    ]  # fmt: skip


def test_unselected_columns_are_dropped(spark) -> None:
    rows = [row(), row(order_id="O-2", quantity="zero")]
    clean, quarantine = job.transform_sales(raw_df(spark, rows, columns=DEFAULT), DEFAULT)

    assert clean.columns == [*DEFAULT, "source_file"]
    assert quarantine.columns == [*DEFAULT, "source_file", "reason"]
    assert collect(clean) == [("O-1", MARCH, "C-1", "P-1", "Electronics", "North", 2, D("24.99"), D("0.1000"), "s.csv")]
    assert collect(quarantine) == [
        ("O-2", "2024-03-01", "C-1", "P-1", "Electronics", "North", "zero", "24.99", "0.10", "s.csv",
         "quantity is not an integer"),
    ]  # fmt: skip


def test_empty_input_gives_empty_typed_outputs(spark) -> None:
    clean, quarantine = job.transform_sales(raw_df(spark, []), ALL)
    assert clean.schema == FULL_SCHEMA
    assert clean.count() == 0 and quarantine.count() == 0


# --- transform: bad input ----------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    ({"customer_id": ""}, "customer_id is missing"),
    ({"customer_id": None}, "customer_id is missing"),
    ({"product_id": "   "}, "product_id is missing"),
    ({"order_id": None}, "order_id is missing"),
    ({"order_id": "X" * 65}, "order_id is longer than 64 bytes"),
    ({"notes": "é" * 2049}, "notes is longer than 4096 bytes"),
    ({"order_date": ""}, "order_date is missing"),
    ({"order_date": "2024-03-32"}, "order_date is not a date (yyyy-MM-dd)"),
    ({"order_date": "2023-02-29"}, "order_date is not a date (yyyy-MM-dd)"),
    ({"order_date": "2024-3-5"}, "order_date is not a date (yyyy-MM-dd)"),
    ({"order_date": "05/03/2024"}, "order_date is not a date (yyyy-MM-dd)"),
    ({"quantity": None}, "quantity is missing"),
    ({"quantity": "two"}, "quantity is not an integer"),
    ({"quantity": "2.5"}, "quantity is not an integer"),
    ({"quantity": "0"}, "quantity must be between 1 and 2147483647"),
    ({"quantity": "-3"}, "quantity must be between 1 and 2147483647"),
    ({"quantity": "2147483648"}, "quantity must be between 1 and 2147483647"),
    ({"quantity": "9" * 50}, "quantity must be between 1 and 2147483647"),
    ({"unit_price": ""}, "unit_price is missing"),
    ({"unit_price": "-45.00"}, "unit_price must be between 0 and 9999999999.99"),
    ({"unit_price": "10000000000"}, "unit_price must be between 0 and 9999999999.99"),
    ({"unit_price": "abc"}, "unit_price is not a number with at most 2 decimals"),
    ({"unit_price": "1.999"}, "unit_price is not a number with at most 2 decimals"),
    ({"unit_price": "1e3"}, "unit_price is not a number with at most 2 decimals"),
    ({"unit_price": "$5"}, "unit_price is not a number with at most 2 decimals"),
    ({"discount": "1.5"}, "discount must be between 0 and 1"),
    ({"discount": "-0.1"}, "discount must be between 0 and 1"),
    ({"discount": "15"}, "discount must be between 0 and 1"),
    ({"discount": "0.12345"}, "discount is not a number with at most 4 decimals"),
    ({"discount": "10%"}, "discount is not a number with at most 4 decimals"),
    ({"customer_id": " ", "quantity": "two", "unit_price": None, "discount": "2"},
     "customer_id is missing; quantity is not an integer; unit_price is missing; discount must be between 0 and 1"),
    ({"_corrupt_record": "O,2024-03-01,too,many,fields"}, "row does not have as many fields as the header"),
    ({"_corrupt_record": "O,2024-03-01", "quantity": None},
     "row does not have as many fields as the header; quantity is missing"),
]  # fmt: skip


def test_each_kind_of_bad_value_is_quarantined_with_every_reason(spark) -> None:
    rows = [row(**{"order_id": f"B-{i:02d}", **overrides}) for i, (overrides, _) in enumerate(BAD)]
    clean, quarantine = job.transform_sales(raw_df(spark, [*rows, row(order_id="GOOD")]), ALL)

    assert [r.order_id for r in clean.collect()] == ["GOOD"]
    assert quarantine.columns == [*ALL, "source_file", "reason"]
    got = {(r.order_id, r.customer_id, r.quantity, r.unit_price, r.discount): r.reason for r in quarantine.collect()}
    # Raw text is kept as read (blank stays blank, nothing trimmed) next to the reason.
    want = {
        (r["order_id"], r["customer_id"], r["quantity"], r["unit_price"], r["discount"]): reason
        for r, (_, reason) in zip(rows, BAD, strict=True)
    }
    assert got == want
    assert quarantine.count() == len(BAD)


def test_duplicates_keep_the_first_valid_row_in_file_order(spark) -> None:
    rows = [
        row(order_id="A", customer_id="first"),
        row(order_id="B"),
        row(order_id="A", customer_id="second"),
        row(order_id=" A ", customer_id="third", quantity="x"),  # also bad: every reason is listed
        row(order_id="C", quantity="0"),  # invalid first occurrence: not kept, so...
        row(order_id="C", customer_id="kept"),  # ...the first valid one is kept
        row(order_id="C", customer_id="later"),
        row(order_id="A", source_file="other.csv", customer_id="other file"),  # duplicates are per file
    ]
    clean, quarantine = job.transform_sales(raw_df(spark, rows), ["order_id", "order_date", "customer_id", "quantity"])

    assert collect(clean) == [
        ("A", MARCH, "other file", 2, "other.csv"),
        ("A", MARCH, "first", 2, "s.csv"),
        ("B", MARCH, "C-1", 2, "s.csv"),
        ("C", MARCH, "kept", 2, "s.csv"),
    ]
    assert sorted((r.order_id, r.customer_id, r.reason) for r in quarantine.collect()) == [
        (" A ", "third", "quantity is not an integer; duplicate order_id (kept the first)"),
        ("A", "second", "duplicate order_id (kept the first)"),
        ("C", "C-1", "quantity must be between 1 and 2147483647"),
        ("C", "later", "duplicate order_id (kept the first)"),
    ]


# --- main, end to end on local files -----------------------------------------------------------------

SAMPLE_CLEAN = [
    ("SO-1001", "2024-03-01", "C-001", "P-100", "Electronics", "North", 2, "24.99", "0.1000"),
    ("SO-1002", "2024-03-01", "C-002", "P-200", "Furniture", "South", 1, "189.00", None),
    ("SO-1003", "2024-03-02", "C-003", "P-101", "Electronics", "East", 3, "39.50", "0.0500"),
    ("SO-1004", "2024-03-02", "C-001", "P-300", "Stationery", "North", 10, "3.25", "0.0000"),
    ("SO-1006", "2024-03-03", "C-004", "P-201", "Furniture", "West", 1, "549.00", "0.1500"),
    ("SO-1008", "2024-03-04", "C-006", "P-301", "Stationery", "East", 5, "6.75", "0.2000"),
    ("SO-1010", "2024-03-05", "C-007", "P-103", "Electronics", "North", 1, "59.00", None),
    ("SO-1011", "2024-03-06", "C-008", "P-302", "Stationery", "West", 4, "12.40", "0.1000"),
    ("SO-1013", "2024-03-07", "C-010", "P-203", "Furniture", "North", 1, "129.99", "0.2500"),
    ("SO-1014", "2024-03-07", "C-003", "P-100", "Electronics", "East", 6, "24.99", "0.1000"),
    ("SO-1015", "2024-03-08", "C-011", "P-303", "Stationery", "South", 12, "1.99", None),
    ("SO-1016", "2024-03-09", "C-012", "P-105", "Electronics", "West", 1, "249.00", "0.0500"),
    ("SO-1017", "2024-03-10", "C-004", "P-204", "Furniture", "West", 2, "175.50", None),
    ("SO-1018", "2024-03-11", "C-013", "P-106", "Electronics", "North", 1, "109.99", "0.1200"),
    ("SO-1019", "2024-03-12", "C-014", "P-304", "Stationery", "East", 8, "5.49", "0.0500"),
    ("SO-1020", "2024-03-13", "C-015", "P-205", "Furniture", "South", 1, "45.00", None),
    ("SO-1021", "2024-03-14", "C-001", "P-107", "Electronics", "North", 3, "8.99", None),
    ("SO-1022", "2024-03-15", "C-016", "P-305", "Stationery", "West", 6, "2.50", "0.1000"),
    ("SO-1023", "2024-03-15", "C-017", "P-206", "Furniture", "East", 2, "32.00", "1.0000"),
]
SAMPLE_QUARANTINE = [
    ["SO-1003", "2024-03-08", "C-003", "P-101", "Electronics", "East", "3", "39.50", "0.05",
     "duplicate order_id (kept the first)"],
    ["SO-1005", "2024-03-03", "", "P-100", "Electronics", "West", "1", "24.99", "", "customer_id is missing"],
    ["SO-1007", "2024-03-04", "C-005", "P-102", "Electronics", "South", "two", "89.90", "",
     "quantity is not an integer"],
    ["SO-1009", "2024-03-05", "C-002", "P-202", "Furniture", "South", "2", "-45.00", "",
     "unit_price must be between 0 and 9999999999.99"],
    ["SO-1012", "2024-03-32", "C-009", "P-104", "Electronics", "East", "1", "34.99", "",
     "order_date is not a date (yyyy-MM-dd)"],
]  # fmt: skip
OUTPUT_DDL = (
    "order_id string, customer_id string, product_id string, category string, region string, quantity int, "
    "unit_price decimal(12,2), discount decimal(5,4), order_date date, source_file string"
)


class Paths:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.input, self.output, self.quarantine, self.state = (root / n for n in ("in", "out", "q", "state"))
        self.input.mkdir()

    def args(self, *extra: str) -> list[str]:
        return ["--input_path", str(self.input), "--output_path", str(self.output),
                "--quarantine_path", str(self.quarantine), "--state_path", str(self.state), *extra]  # fmt: skip

    def put(self, rel: str, text: str, mtime: int = 1_700_000_000) -> Path:
        path = self.input / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))
        return path

    def layout(self) -> list[str]:
        """Every data file of the output dataset, relative, dotfiles (.crc) aside."""
        return sorted(str(p.relative_to(self.output)) for p in self.output.rglob("*") if p.is_file() and
                      not p.name.startswith("."))  # fmt: skip

    def partitions(self) -> list[str]:
        return sorted({str(Path(f).parent) for f in self.layout()})

    def rows(self, spark) -> list[tuple]:
        df = spark.read.schema(OUTPUT_DDL).parquet(str(self.output))
        cols = ["order_id", "order_date", "customer_id", "product_id", "category", "region", "quantity",
                "unit_price", "discount", "source_file"]  # fmt: skip
        return sorted(
            (r.order_id, str(r.order_date), *r[2:6], r.quantity, str(r.unit_price),
             None if r.discount is None else str(r.discount), r.source_file)
            for r in df.select(*cols).collect()
        )  # fmt: skip

    def quarantined(self, rel: str) -> list[list[str]]:
        directory = self.quarantine / f"source_file={rel}"
        rows: list[list[str]] = []
        for part in sorted(directory.glob("part-*.csv")):
            with part.open(newline="") as handle:
                reader = csv.reader(handle)
                assert next(reader) == [*DEFAULT, "reason"]
                rows.extend(reader)
        return sorted(rows)

    def marker(self, kind: str, rel: str) -> dict[str, Any] | None:
        path = self.state / kind / f"{rel}.json"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path)


def uri(path: Path) -> str:
    return f"file:{path}"


def test_main_converts_the_sample_idempotently(spark, paths: Paths, capsys) -> None:
    sample = paths.input / SAMPLE.name
    shutil.copy(SAMPLE, sample)
    os.utime(sample, (1_710_000_000, 1_710_000_000))
    capsys.readouterr()

    summary = job.main(paths.args())

    assert summary == {"job": "sales_csv_to_parquet", "files": 1, "rows_in": 24, "rows_loaded": 19,
                       "rows_quarantined": 5, "rejected": []}  # fmt: skip
    # The run's one metrics line (tests/jobs/emf.py), its metrics the summary's figures.
    document = one_run_summary(capsys.readouterr().out, pipeline="sales", job="sales_csv_to_parquet")
    assert figures(document) == {
        "Stack": "local", "Pipeline": "sales", "Job": "sales_csv_to_parquet", "RowsIn": 24, "RowsLoaded": 19,
        "RowsQuarantined": 5, "Files": 1, "files": 1, "rejected": [],
    }  # fmt: skip
    assert summary["rows_in"] == summary["rows_loaded"] + summary["rows_quarantined"]
    days = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15"]
    assert paths.partitions() == [f"order_date=2024-03-{d}/source_file=sales_2024_03.csv" for d in days]
    files = paths.layout()
    assert len(files) == len(days)  # one file per partition
    for name in files:
        assert name.endswith(".snappy.parquet")
        metadata = pq.ParquetFile(paths.output / name).metadata
        assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"SNAPPY"}
        # The partition columns live in the path only; the dropped columns nowhere.
        assert metadata.schema.names == ["order_id", "customer_id", "product_id", "category", "region", "quantity",
                                         "unit_price", "discount"]  # fmt: skip
    assert paths.rows(spark) == [(*r, "sales_2024_03.csv") for r in SAMPLE_CLEAN]
    assert paths.quarantined("sales_2024_03.csv") == SAMPLE_QUARANTINE
    assert paths.marker("converted", "sales_2024_03.csv") == {
        "source": uri(sample), "source_file": "sales_2024_03.csv", "columns": DEFAULT,
        "size": sample.stat().st_size, "modified_ms": 1_710_000_000_000,
        "rows_in": 24, "rows_loaded": 19, "rows_quarantined": 5,
        "order_dates": [f"2024-03-{d}" for d in days],
    }  # fmt: skip
    assert paths.marker("rejected", "sales_2024_03.csv") is None

    # Nothing new: nothing to do.
    assert job.main(paths.args()) == {"job": "sales_csv_to_parquet", "files": 0, "rows_in": 0, "rows_loaded": 0,
                                      "rows_quarantined": 0, "rejected": []}  # fmt: skip
    nothing = one_run_summary(capsys.readouterr().out, pipeline="sales", job="sales_csv_to_parquet")
    assert (nothing["Files"], nothing["RowsIn"], nothing["RowsLoaded"], nothing["RowsQuarantined"]) == (0, 0, 0, 0)
    assert paths.layout() == files

    # The same file uploaded again (new modified time): reconverted to the very same rows, no duplicates.
    os.utime(sample, (1_710_000_100, 1_710_000_100))
    assert job.main(paths.args())["files"] == 1
    assert paths.partitions() == [f"order_date=2024-03-{d}/source_file=sales_2024_03.csv" for d in days]
    assert len(paths.layout()) == len(days)
    assert paths.rows(spark) == [(*r, "sales_2024_03.csv") for r in SAMPLE_CLEAN]
    assert paths.quarantined("sales_2024_03.csv") == SAMPLE_QUARANTINE
    assert paths.marker("converted", "sales_2024_03.csv")["modified_ms"] == 1_710_000_100_000  # type: ignore[index]


HEADER = "order_id,order_date,customer_id,product_id,category,region,quantity,unit_price,discount\n"
A_V1 = HEADER + "A-1,2024-03-01,C-1,P-1,Toys,North,1,10.00,\nA-2,2024-03-02,C-2,P-2,Toys,North,2,20.00,0.5\n"
A_V2 = HEADER + "A-1,2024-03-01,C-1,P-1,Toys,North,5,10.00,\n"
B_V1 = HEADER + "B-1,2024-03-02,C-9,P-9,Games,South,1,9.99,\nB-2,2024-03-02,C-9,P-9,Games,South,x,9.99,\n"


def test_other_files_and_corrected_uploads_replace_only_their_own_output(spark, paths: Paths) -> None:
    paths.put("a.csv", A_V1)
    assert job.main(paths.args())["files"] == 1
    paths.put("2024/b.csv", B_V1)
    assert job.main(paths.args())["files"] == 1  # only the new file is pending
    b_files = [f for f in paths.layout() if "b.csv" in f]
    assert paths.partitions() == [
        "order_date=2024-03-01/source_file=a.csv",
        "order_date=2024-03-02/source_file=2024%2Fb.csv",
        "order_date=2024-03-02/source_file=a.csv",
    ]
    assert paths.rows(spark) == [
        ("A-1", "2024-03-01", "C-1", "P-1", "Toys", "North", 1, "10.00", None, "a.csv"),
        ("A-2", "2024-03-02", "C-2", "P-2", "Toys", "North", 2, "20.00", "0.5000", "a.csv"),
        ("B-1", "2024-03-02", "C-9", "P-9", "Games", "South", 1, "9.99", None, "2024/b.csv"),
    ]
    assert paths.quarantined("2024%2Fb.csv") == [
        ["B-2", "2024-03-02", "C-9", "P-9", "Games", "South", "x", "9.99", "", "quantity is not an integer"]
    ]

    # a.csv corrected: fewer dates. Its 2024-03-02 partition goes; b.csv's files are not even rewritten.
    paths.put("a.csv", A_V2, mtime=1_700_000_500)
    summary = job.main(paths.args())
    assert (summary["files"], summary["rows_in"], summary["rows_loaded"], summary["rows_quarantined"]) == (1, 1, 1, 0)
    assert paths.partitions() == [
        "order_date=2024-03-01/source_file=a.csv",
        "order_date=2024-03-02/source_file=2024%2Fb.csv",
    ]
    assert [f for f in paths.layout() if "b.csv" in f] == b_files
    assert paths.rows(spark) == [
        ("A-1", "2024-03-01", "C-1", "P-1", "Toys", "North", 5, "10.00", None, "a.csv"),
        ("B-1", "2024-03-02", "C-9", "P-9", "Games", "South", 1, "9.99", None, "2024/b.csv"),
    ]
    assert paths.marker("converted", "2024/b.csv")["rows_quarantined"] == 1  # type: ignore[index]
    assert paths.marker("converted", "a.csv")["size"] == len(A_V2)  # type: ignore[index]


def test_rejected_file_fails_the_run_but_the_good_file_is_converted(spark, paths: Paths, caplog) -> None:
    good = paths.put("good.csv", A_V1)
    bad = paths.put("bad.csv", "order_id,Order Date,qty\nX,2024-03-01,1\n")
    paths.put("empty.csv", "")

    with caplog.at_level(logging.ERROR, logger="glue_job"):
        assert glue_common.run(job.main, paths.args()) == glue_common.EXIT_BAD_INPUT == 3
    bad_reason = ("missing columns ['order_date', 'customer_id', 'product_id', 'category', 'region', 'quantity', "
                  "'unit_price', 'discount'] (found ['order_id', 'order date', 'qty'])")  # fmt: skip
    empty_reason = ("missing columns ['order_id', 'order_date', 'customer_id', 'product_id', 'category', 'region', "
                    "'quantity', 'unit_price', 'discount'] (found [])")  # fmt: skip
    assert caplog.messages == [f"bad input: 2 sales file(s) rejected: bad.csv: {bad_reason}; empty.csv: {empty_reason}"]
    assert paths.marker("rejected", "bad.csv") == {
        "source": uri(bad), "source_file": "bad.csv", "size": bad.stat().st_size,
        "modified_ms": 1_700_000_000_000, "reason": bad_reason,
    }  # fmt: skip
    assert paths.marker("converted", "bad.csv") is None
    assert paths.marker("converted", "good.csv") == {
        "source": uri(good), "source_file": "good.csv", "columns": DEFAULT, "size": len(A_V1),
        "modified_ms": 1_700_000_000_000, "rows_in": 2, "rows_loaded": 2, "rows_quarantined": 0,
        "order_dates": ["2024-03-01", "2024-03-02"],
    }  # fmt: skip
    assert paths.partitions() == [
        "order_date=2024-03-01/source_file=good.csv",
        "order_date=2024-03-02/source_file=good.csv",
    ]

    # A rejected version is not retried (nor re-reported) until the file changes.
    assert glue_common.run(job.main, paths.args()) == 0
    paths.put("bad.csv", HEADER + "X-1,2024-03-03,C,P,,,1,1.00,\n", mtime=1_700_000_900)
    summary = job.main(paths.args())
    assert (summary["files"], summary["rows_loaded"], summary["rejected"]) == (1, 1, [])
    assert paths.marker("rejected", "bad.csv") is None
    assert paths.marker("converted", "bad.csv")["rows_loaded"] == 1  # type: ignore[index]


def test_header_only_file_is_converted_with_zero_rows(spark, paths: Paths) -> None:
    paths.put("a.csv", A_V1)
    job.main(paths.args())
    paths.put("a.csv", HEADER, mtime=1_700_000_100)  # corrected to no rows at all: its output goes

    summary = job.main(paths.args())

    assert summary == {"job": "sales_csv_to_parquet", "files": 1, "rows_in": 0, "rows_loaded": 0,
                       "rows_quarantined": 0, "rejected": []}  # fmt: skip
    assert paths.layout() == []
    assert paths.marker("converted", "a.csv")["rows_in"] == 0  # type: ignore[index]


def test_csv_dialect_header_order_case_and_malformed_rows(spark, paths: Paths) -> None:
    paths.put(
        "odd.csv",
        "\ufeffNotes, Quantity ,ORDER_ID,order_date,unit_price,customer_id,product_id,extra\n"
        '"line one\nline two",3,M-1,2024-03-05,1.50,C,P,ignored\n'
        '"He said ""hi""",1,M-2,2024-03-05,2.00,C,P,x\n'
        "too,few,fields\n"
        "Widget, large,2,M-3,2024-03-05,1.00,C,P,x\n",
    )
    summary = job.main(paths.args("--columns", "order_id,order_date,customer_id,product_id,quantity,unit_price,notes"))

    assert (summary["rows_in"], summary["rows_loaded"], summary["rows_quarantined"]) == (4, 2, 2)
    df = spark.read.parquet(str(paths.output))
    assert sorted(tuple(r) for r in df.select("order_id", "quantity", "unit_price", "notes").collect()) == [
        ("M-1", 3, D("1.50"), "line one\nline two"),
        ("M-2", 1, D("2.00"), 'He said "hi"'),
    ]
    quarantined = spark.read.option("header", "true").csv(str(paths.quarantine / "source_file=odd.csv"))
    assert sorted((r.order_id, r.reason) for r in quarantined.collect()) == [
        # Fields shifted by an unquoted comma: flagged, never loaded as shifted values.
        ("2", "row does not have as many fields as the header; order_date is not a date (yyyy-MM-dd); "
         "quantity is not an integer; unit_price is not a number with at most 2 decimals"),
        ("fields", "row does not have as many fields as the header; order_date is missing; customer_id is missing; "
         "product_id is missing; quantity is not an integer; unit_price is missing"),
    ]  # fmt: skip


def test_bad_columns_argument_is_bad_input(spark, paths: Paths, caplog) -> None:
    assert glue_common.run(job.main, paths.args("--columns", "order_date,quantity")) == 3
    assert "must include order_id and order_date" in caplog.text


# --- the catalog table: partitions registered by the job ---------------------------------------------

DATABASE, TABLE = "dataplatform_dev_catalog", "sales_orders"
# The stack's definition of the table (pipelines/sales.py; tests/infra/test_glue_pipelines.py asserts the
# same literal columns on the mocked CatalogTable), as Glue stores it.
TABLE_COLUMNS = [
    {"Name": "order_id", "Type": "string"}, {"Name": "customer_id", "Type": "string"},
    {"Name": "product_id", "Type": "string"}, {"Name": "category", "Type": "string"},
    {"Name": "region", "Type": "string"}, {"Name": "quantity", "Type": "int"},
    {"Name": "unit_price", "Type": "decimal(12,2)"}, {"Name": "discount", "Type": "decimal(5,4)"},
]  # fmt: skip
PARQUET_SERDE = {
    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "Parameters": {"serialization.format": "1"},
}


@pytest.fixture
def glue() -> Iterator[Any]:
    """moto's Glue Data Catalog (in process) holding the stack's sales_orders table."""
    with mock_aws():
        client = boto3.client("glue", region_name="eu-west-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        client.create_table(
            DatabaseName=DATABASE,
            TableInput={
                "Name": TABLE,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                "PartitionKeys": [{"Name": "order_date", "Type": "date"}, {"Name": "source_file", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": TABLE_COLUMNS,
                    "Location": "s3://processed/sales/parquet/",
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    "SerdeInfo": PARQUET_SERDE,
                },
            },
        )
        yield client


def partitions(glue) -> list[tuple[tuple[str, ...], str]]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=TABLE)
    return sorted(
        (tuple(p["Values"]), p["StorageDescriptor"]["Location"]) for page in pages for p in page["Partitions"]
    )


def test_the_parquet_columns_are_the_catalog_tables(spark, paths: Paths) -> None:
    """What the job writes inside each file is exactly the stack's table columns, in order, with the Glue
    type Athena reads each Parquet type as (string, int32 -> int, decimal128(p,s) -> decimal(p,s))."""
    from pipelines.sales import parquet_columns

    shutil.copy(SAMPLE, paths.input / SAMPLE.name)
    job.main(paths.args())
    hive = {
        "string": "string",
        "int32": "int",
        "decimal128(12, 2)": "decimal(12,2)",
        "decimal128(5, 4)": "decimal(5,4)",
    }
    for name in paths.layout():
        schema = pq.read_schema(paths.output / name)
        written = [{"Name": f.name, "Type": hive[str(f.type)]} for f in schema]
        assert written == TABLE_COLUMNS, name
    assert [{"Name": n, "Type": t} for n, t in parquet_columns(tuple(DEFAULT))] == TABLE_COLUMNS


def test_main_registers_exactly_the_partitions_it_wrote(spark, paths: Paths, glue) -> None:
    out = str(paths.output)
    catalog = ("--catalog_database", DATABASE, "--catalog_table", TABLE)
    paths.put("a.csv", A_V1)
    paths.put("2024/b.csv", B_V1)
    summary = job.main(paths.args(*catalog), glue=glue)
    assert (summary["files"], summary["partitions_added"], summary["partitions_removed"]) == (2, 3, 0)
    assert partitions(glue) == [
        (("2024-03-01", "a.csv"), f"{out}/order_date=2024-03-01/source_file=a.csv/"),
        (("2024-03-02", "2024/b.csv"), f"{out}/order_date=2024-03-02/source_file=2024%2Fb.csv/"),
        (("2024-03-02", "a.csv"), f"{out}/order_date=2024-03-02/source_file=a.csv/"),
    ]
    # Each location is a folder the job wrote (the escaped file name is Spark's folder name).
    assert (
        sorted(location.removeprefix(out + "/").rstrip("/") for _, location in partitions(glue)) == paths.partitions()
    )
    # Each partition carries the table's columns and Parquet SerDe (Athena reads a partition with its own).
    stored = glue.get_partition(DatabaseName=DATABASE, TableName=TABLE, PartitionValues=["2024-03-01", "a.csv"])
    descriptor = stored["Partition"]["StorageDescriptor"]
    assert (descriptor["Columns"], descriptor["SerdeInfo"]) == (TABLE_COLUMNS, PARQUET_SERDE)

    # Nothing new: no catalog call changes anything.
    assert job.main(paths.args(*catalog), glue=glue)["partitions_added"] == 0

    # a.csv corrected with fewer dates: its vanished partition leaves the table, b.csv's stays.
    paths.put("a.csv", A_V2, mtime=1_700_000_500)
    summary = job.main(paths.args(*catalog), glue=glue)
    assert (summary["partitions_added"], summary["partitions_removed"]) == (0, 1)  # 03-01 was there already
    assert partitions(glue) == [
        (("2024-03-01", "a.csv"), f"{out}/order_date=2024-03-01/source_file=a.csv/"),
        (("2024-03-02", "2024/b.csv"), f"{out}/order_date=2024-03-02/source_file=2024%2Fb.csv/"),
    ]
    assert paths.marker("converted", "a.csv")["order_dates"] == ["2024-03-01"]  # type: ignore[index]


def test_files_converted_before_registration_are_registered_once(spark, paths: Paths, glue) -> None:
    """A stack upgraded from the Parquet crawler: files converted then have markers without order dates
    and no partitions in the new table. The first run with the catalog registers theirs from the
    folders they wrote, records the dates, and leaves the data alone; the next run has nothing to do."""
    out = str(paths.output)
    catalog = ("--catalog_database", DATABASE, "--catalog_table", TABLE)
    paths.put("a.csv", A_V1)
    paths.put("2024/b.csv", B_V1)
    job.main(paths.args())  # no catalog, as before the upgrade
    for rel in ("a.csv", "2024/b.csv"):
        marker = paths.state / "converted" / f"{rel}.json"
        old = json.loads(marker.read_text())
        del old["order_dates"]
        marker.write_text(json.dumps(old))
        marker.with_name(f".{marker.name}.crc").unlink()  # Hadoop's local checksum of the old text
    files = paths.layout()

    summary = job.main(paths.args(*catalog), glue=glue)

    assert (summary["files"], summary["partitions_added"], summary["partitions_removed"]) == (0, 3, 0)
    assert partitions(glue) == [
        (("2024-03-01", "a.csv"), f"{out}/order_date=2024-03-01/source_file=a.csv/"),
        (("2024-03-02", "2024/b.csv"), f"{out}/order_date=2024-03-02/source_file=2024%2Fb.csv/"),
        (("2024-03-02", "a.csv"), f"{out}/order_date=2024-03-02/source_file=a.csv/"),
    ]
    assert paths.layout() == files
    assert paths.marker("converted", "a.csv")["order_dates"] == ["2024-03-01", "2024-03-02"]  # type: ignore[index]
    assert paths.marker("converted", "2024/b.csv")["order_dates"] == ["2024-03-02"]  # type: ignore[index]
    assert job.main(paths.args(*catalog), glue=glue)["partitions_added"] == 0


def test_a_failed_registration_leaves_the_file_pending(spark, paths: Paths, glue) -> None:
    """The catalog is updated before a file is recorded as converted: if Glue refuses, the run fails and
    the next one converts the file again (and registers it then)."""
    paths.put("a.csv", A_V1)
    glue.delete_table(DatabaseName=DATABASE, Name=TABLE)
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        job.main(paths.args("--catalog_database", DATABASE, "--catalog_table", TABLE), glue=glue)
    assert paths.marker("converted", "a.csv") is None


class CountingGlue:
    """A Glue client that records each call's size."""

    def __init__(self, client) -> None:
        self.client = client
        self.calls: list[tuple[str, int | None]] = []

    def __getattr__(self, name: str):
        method = getattr(self.client, name)

        def call(**kwargs):
            items = kwargs.get("PartitionInputList", kwargs.get("PartitionsToDelete"))
            self.calls.append((name, None if items is None else len(items)))
            return method(**kwargs)

        return call


def test_registration_respects_glues_batch_limits(glue) -> None:
    """Glue takes at most 100 partitions per BatchCreatePartition and 25 per BatchDeletePartition
    (https://docs.aws.amazon.com/glue/latest/webapi/API_BatchCreatePartition.html,
    https://docs.aws.amazon.com/glue/latest/webapi/API_BatchDeletePartition.html; botocore's model says
    the same); re-creating what exists and deleting what is gone are not errors."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("glue")
    create = model.operation_model("BatchCreatePartition").input_shape.members["PartitionInputList"]
    delete = model.operation_model("BatchDeletePartition").input_shape.members["PartitionsToDelete"]
    assert (create.metadata["max"], delete.metadata["max"]) == (
        job.CREATE_PARTITIONS_PER_CALL,
        job.DELETE_PARTITIONS_PER_CALL,
    )

    days = [(dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(130)]
    created = [
        ((day, "big.csv"), f"s3://processed/sales/parquet/order_date={day}/source_file=big.csv/") for day in days
    ]
    counting = CountingGlue(glue)
    added = job.register_partitions(counting, DATABASE, TABLE, created, [])
    assert added == {"partitions_added": 130, "partitions_removed": 0}
    assert counting.calls == [("get_table", None), ("batch_create_partition", 100), ("batch_create_partition", 30)]
    counting.calls.clear()
    gone = [(day, "big.csv") for day in days[:30]] + [("2030-01-01", "never.csv")]
    removed = job.register_partitions(counting, DATABASE, TABLE, created[:5], gone)
    assert removed == {"partitions_added": 0, "partitions_removed": 30}
    assert counting.calls == [("get_table", None), ("batch_create_partition", 5), ("batch_delete_partition", 25),
                              ("batch_delete_partition", 6)]  # fmt: skip
    assert len(partitions(glue)) == 100


def test_the_athena_query_of_the_smoke_run_answers_from_the_registered_partitions(spark, paths: Paths, glue) -> None:
    """The smoke run's Athena query (smoke/run.py Sales.check), transpiled by sqlglot from Athena SQL
    to Spark SQL, over a table built from the catalog: its columns and each partition Glue holds, at
    the location the job registered. 19 of the sample's orders, 70 units."""
    import sqlglot

    shutil.copy(SAMPLE, paths.input / SAMPLE.name)
    job.main(paths.args("--catalog_database", DATABASE, "--catalog_table", TABLE), glue=glue)
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    name = f"sales_orders_{uuid.uuid4().hex[:8]}"
    columns = [*table["StorageDescriptor"]["Columns"], *table["PartitionKeys"]]
    spark.sql(
        f"CREATE TABLE {name} ({', '.join(c['Name'] + ' ' + c['Type'] for c in columns)}) USING parquet "
        f"PARTITIONED BY (order_date, source_file) LOCATION '{paths.root / 'table-root'}'"
    )
    try:
        for values, location in partitions(glue):
            spark.sql(
                f"ALTER TABLE {name} ADD PARTITION (order_date = DATE '{values[0]}', source_file = '{values[1]}') "
                f"LOCATION '{location}'"
            )
        athena = "SELECT count(*), sum(quantity) FROM sales_orders WHERE source_file = 'sales_2024_03.csv'"
        [spark_sql] = sqlglot.transpile(athena.replace("sales_orders", name), read="athena", write="spark")
        assert [tuple(r) for r in spark.sql(spark_sql).collect()] == [(19, 70)]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}")
