"""Benchmark `sales`: the Glue job `sales_csv_to_parquet` against DuckDB doing the same work.

CSV uploads -> typed, validated, de-duplicated Parquet by order_date/source_file. The input: monthly
uploads with a few % of bad rows (every quarantine reason of the job), exact duplicates, quoted
commas, doubled quotes and quoted line breaks. How the pair is run and compared: bench/glue_shared.py.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path
from typing import Any

from bench.glue_shared import (
    REF_LABEL,
    SEED,
    LineWriter,
    cached_input,
    duckdb_connect,
    fetch_one,
    figure_checks,
    files_note,
    input_note,
    locations,
    reason_histograms,
    reasons,
    run_job,
    run_pair,
    same_rows,
    sized,
    spark_note,
    sql_text,
)
from bench.measure import Check, Clock, Context, Report, benchmark
from job_runtime.contracts import SALES_DEFAULT_COLUMNS

GENERATOR_VERSION = 1  # bump when write_sales changes: cached inputs are regenerated
SIZES = {"full": {"rows": 5_000_000, "files": 6}, "quick": {"rows": 20_000, "files": 2}}


# --- input -------------------------------------------------------------------------------------------

SALES_HEADER = (
    "order_id,order_date,customer_id,product_id,product_name,category,region,quantity,unit_price,discount,"
    "sales_rep,notes"
)
SALES_SELECTED = SALES_DEFAULT_COLUMNS  # the job's default --columns
_CATEGORIES = ("Electronics", "Furniture", "Stationery", "Kitchen", "Garden", "Toys", "Sports", "Books")
_REGIONS = ("North", "South", "East", "West", "Central")
_REPS = tuple(
    f"{first} {last}"
    for first in ("Alice", "Bob", "Carla", "Dev", "Emi")
    for last in ("Chen", "Patel", "Gomez", "Okafor")
)
_DISCOUNTS = ("", "", "", "0", "0.05", "0.10", "0.15", "0.2500")
_NOTES = (
    '"Deliver to loading dock, not reception"',  # a quoted comma
    '"Customer said ""urgent"""',  # doubled quotes
    '"Leave at the door\nCall before delivery"',  # a quoted line break: the CSV is read multiLine
    "Bulk order",
)


def _products(rng: random.Random) -> list[tuple[str, str, str, str]]:
    products = []
    for i in range(400):
        category = _CATEGORIES[i % len(_CATEGORIES)]
        name = f"{category[:-1] if category.endswith('s') else category} item {i}"
        if i % 50 == 7:
            name = f'"{name}, large"'  # a quoted comma in a product name
        products.append((f"P-{1000 + i}", name, category, f"{rng.uniform(0.5, 900):.2f}"))
    return products


def _sales_bad(rng: random.Random, fields: list[str], plain: list[str]) -> str:
    """One bad row (each kind is a quarantine reason); `plain`: the same row with no quoted fields."""
    kind = rng.randrange(13)
    if kind == 8:
        return ",".join([*plain, "unexpected"])  # 13 fields
    if kind == 9:
        return ",".join(plain[:10])  # 10 fields
    changes = {
        0: {2: ""},  # customer_id missing
        1: {1: fields[1][:8] + "30" if fields[1][5:7] == "02" else fields[1][:8] + "32"},  # no such day
        2: {1: f"{fields[1][8:10]}/{fields[1][5:7]}/{fields[1][:4]}"},  # not yyyy-MM-dd
        3: {7: "0"},  # quantity out of range
        4: {7: "two"},
        5: {8: "12.345"},  # too many decimals
        6: {8: "-5.00"},
        7: {9: "1.5"},  # discount out of range
        10: {2: "C-" + "9" * 70},  # longer than 64 bytes
        11: {0: ""},  # order_id missing
        12: {7: "", 8: "n/a"},  # two problems at once
    }[kind]
    for index, value in changes.items():
        fields[index] = value
    return ",".join(fields)


def write_sales(folder: Path, rows: int, files: int) -> dict[str, int]:
    """`rows` CSV records over `files` monthly uploads: ~0.5 % bad rows, ~0.2 % exact duplicates."""
    products = _products(random.Random(SEED))  # noqa: S311 - benchmark data, not secrets
    bad = duplicates = multiline = 0
    for k in range(files):
        rng = random.Random(f"sales:{SEED}:{k}")  # noqa: S311 - benchmark data, not secrets
        month = k % 12 + 1
        count = rows // files + (1 if k < rows % files else 0)
        recent: deque[str] = deque(maxlen=500)
        with (folder / f"sales_2024_{month:02d}.csv").open("w", encoding="utf-8", newline="") as handle:
            out = LineWriter(handle)
            out.add(SALES_HEADER)
            for i in range(count):
                draw = rng.random()
                if draw < 0.002 and recent:
                    out.add(rng.choice(recent))
                    duplicates += 1
                    continue
                product_id, name, category, price = rng.choice(products)
                quantity = str(rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 10, 12, 20)))
                if rng.random() < 0.01:
                    quantity = f" {quantity} "  # padded: valid once trimmed
                fields = [
                    f"SO-{month:02d}{i:08d}",
                    f"2024-{month:02d}-{rng.randint(1, 28):02d}",
                    f"C-{rng.randint(1, 40_000):05d}",
                    product_id,
                    name,
                    category,
                    rng.choice(_REGIONS),
                    quantity,
                    price,
                    rng.choice(_DISCOUNTS),
                    rng.choice(_REPS),
                    "",
                ]
                if draw < 0.007:
                    plain = [*fields[:4], f"Item {i}", *fields[5:]]
                    out.add(_sales_bad(rng, fields, plain))
                    bad += 1
                    continue
                if rng.random() < 0.03:
                    fields[11] = rng.choice(_NOTES)
                    multiline += "\n" in fields[11]
                line = ",".join(fields)
                recent.append(line)
                out.add(line)
            out.flush()
    return {"records": rows, "bad_rows": bad, "duplicates": duplicates, "multiline_notes": multiline}


# --- the job ---------------------------------------------------------------------------------------


def spark_sales(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    return run_job(clock, "sales_csv_to_parquet", locations(input_dir, root, "output", "quarantine", "state"))


# --- the DuckDB reference ----------------------------------------------------------------------------


def _blank_to_null(column: str) -> str:
    return rf"nullif(regexp_replace({column}, '^\s+|\s+$', '', 'g'), '')"


# name, kind, required, max bytes (strings) / scale, low, high (numbers): the job's published schema.
_SALES_RULES: dict[str, tuple[str, bool, Any]] = {
    "order_id": ("string", True, 64),
    "order_date": ("date", True, None),
    "customer_id": ("string", True, 64),
    "product_id": ("string", True, 64),
    "category": ("string", False, 256),
    "region": ("string", False, 256),
    "quantity": ("int", True, (0, "1", "2147483647")),
    "unit_price": ("decimal", True, (2, "0", "9999999999.99")),
    "discount": ("decimal", False, (4, "0", "1")),
}
_SALES_TYPES = {
    "quantity": "INTEGER",
    "unit_price": "DECIMAL(12, 2)",
    "discount": "DECIMAL(5, 4)",
    "order_date": "DATE",
}
_SALES_POSITIONS = {name: SALES_HEADER.split(",").index(name) + 1 for name in SALES_SELECTED}


def _sales_checks() -> tuple[list[str], list[tuple[str, str]]]:
    parsed, checks = [], [("malformed", "row does not have as many fields as the header")]
    for name, (kind, required, rule) in _SALES_RULES.items():
        t, w = f"t_{name}", f"w_{name}"
        if required:
            checks.append((f"{t} IS NULL", f"{name} is missing"))
        if kind == "date":
            parsed.append(
                f"CASE WHEN regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
                f"THEN try_cast({t} AS DATE) END AS {w}"
            )
            checks.append((f"{t} IS NOT NULL AND {w} IS NULL", f"{name} is not a date (yyyy-MM-dd)"))
        elif kind in ("int", "decimal"):
            scale, low, high = rule
            pattern = "[+-]?[0-9]+" if kind == "int" else rf"[+-]?([0-9]+(\.[0-9]{{0,{scale}}})?|\.[0-9]{{1,{scale}}})"
            what = "an integer" if kind == "int" else f"a number with at most {scale} decimals"
            parsed.append(f"try_cast({t} AS DECIMAL(38, {scale})) AS {w}")
            parsable = f"regexp_full_match({t}, {sql_text(pattern)})"
            checks.append((f"{t} IS NOT NULL AND NOT {parsable}", f"{name} is not {what}"))
            checks.append(
                (
                    f"{t} IS NOT NULL AND {parsable} AND ({w} IS NULL OR {w} < {low} OR {w} > {high})",
                    f"{name} must be between {low} and {high}",
                )
            )
        else:
            parsed.append(f"{t} AS {w}")
            checks.append((f"strlen({t}) > {rule}", f"{name} is longer than {rule} bytes"))
    return parsed, checks


def duckdb_sales(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    """The sales conversion in SQL: typed, validated, de-duplicated; Parquet by order_date/source_file."""
    con = duckdb_connect(root)
    columns = SALES_HEADER.split(",")
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    parsed, checks = _sales_checks()
    selected = ", ".join(SALES_SELECTED)
    with clock:
        con.execute(f"""
            CREATE TEMP TABLE raw AS
            SELECT {selected}, regexp_extract(filename, '[^/]+$') AS source_file, false AS malformed
            FROM read_csv({sql_text(input_dir + "/*.csv")}, header = true, auto_detect = false, columns = {spec},
                          delim = ',', quote = '"', escape = '"', filename = true, store_rejects = true,
                          max_line_size = 1048576)
        """)
        # Rows with the wrong field count: Spark pads or cuts them to the header and flags them; the same
        # from the rejected line (the generated malformed rows hold no quoted fields).
        picks = ", ".join(f"parts[{_SALES_POSITIONS[c]}] AS {c}" for c in SALES_SELECTED)
        con.execute(f"""
            INSERT INTO raw
            SELECT {picks}, regexp_extract(file_path, '[^/]+$'), true
            FROM (SELECT DISTINCT s.file_path, e.line, string_split(e.csv_line, ',') AS parts
                  FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id))
        """)
        texts = ", ".join(f"{_blank_to_null(c)} AS t_{c}" for c in SALES_SELECTED)
        con.execute(f"""
            CREATE TEMP TABLE checked AS
            WITH typed AS (SELECT *, {", ".join(parsed)} FROM (SELECT *, {texts} FROM raw)),
                 own AS (SELECT *, {reasons(checks)} AS own FROM typed),
                 ranked AS (
                     SELECT *,
                         count(*) FILTER (WHERE own IS NULL) OVER w AS valid_copies,
                         row_number() OVER (PARTITION BY source_file, t_order_id ORDER BY own IS NOT NULL) AS copy
                     FROM own WINDOW w AS (PARTITION BY source_file, t_order_id))
            SELECT *, nullif(concat_ws('; ', own, CASE WHEN t_order_id IS NOT NULL AND valid_copies > 0
                                                       AND NOT (own IS NULL AND copy = 1)
                                                       THEN 'duplicate order_id (kept the first)' END), '') AS reason
            FROM ranked
        """)
        typed_out = ", ".join(
            f"CAST(w_{c} AS {_SALES_TYPES[c]}) AS {c}" if c in _SALES_TYPES else f"w_{c} AS {c}" for c in SALES_SELECTED
        )
        con.execute(f"""
            COPY (SELECT {typed_out}, source_file FROM checked WHERE reason IS NULL)
            TO {sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (order_date, source_file))
        """)
        con.execute(f"""
            COPY (SELECT {selected}, reason, source_file FROM checked WHERE reason IS NOT NULL)
            TO {sql_text(root + "/quarantine")} (FORMAT csv, HEADER, PARTITION_BY (source_file))
        """)
        rows_in, quarantined = fetch_one(con, "SELECT count(*), count(reason) FROM checked")
    return {"rows_in": rows_in, "rows_loaded": rows_in - quarantined, "rows_quarantined": quarantined}


# --- comparing what both wrote ----------------------------------------------------------------------


def verify_sales(job_root: Path, ref_root: Path) -> list[Check]:
    con = duckdb_connect()
    cols = "order_id, customer_id, product_id, category, region, quantity, unit_price, discount"
    hive = "hive_partitioning = true, hive_types = {'order_date': 'DATE', 'source_file': 'VARCHAR'}"

    def out(root: Path) -> str:
        return f"SELECT {cols}, order_date, source_file FROM read_parquet('{root}/out/**/*.parquet', {hive})"

    def quarantine(root: Path, escape: str) -> str:
        return (
            f"SELECT reason FROM read_csv('{root}/quarantine/**/*.csv', header = true, all_varchar = true, "
            f"hive_partitioning = true, quote = '\"', escape = '{escape}')"
        )

    return [
        same_rows(con, "loaded rows identical (every column, EXCEPT ALL both ways)", out(job_root), out(ref_root)),
        # Spark's CSV writer escapes quotes with a backslash, DuckDB's by doubling them.
        reason_histograms(con, quarantine(job_root, "\\"), quarantine(ref_root, '"')),
    ]


# --- the benchmark ------------------------------------------------------------------------------------


@benchmark("sales", title="sales CSV -> validated, de-duplicated Parquet (sales_csv_to_parquet)", order=10)
def bench_sales(ctx: Context) -> Report:
    input_dir = cached_input(ctx, "sales", GENERATOR_VERSION, sized(ctx, SIZES), write_sales)
    job, ref, job_root, ref_root = run_pair(ctx, input_dir, spark_sales, duckdb_sales)
    checks = figure_checks(job, ref, ("rows_in", "rows_loaded", "rows_quarantined"))
    checks.append(
        Check("some rows quarantined", job.figures["rows_quarantined"] > 0, f"{job.figures['rows_quarantined']:,}")
    )
    checks += verify_sales(job_root, ref_root)
    return Report(
        name="sales",
        title=f"{sized(ctx, SIZES)['rows']:,} CSV rows -> typed, validated, de-duplicated Parquet",
        measurements=[job, ref],
        reference=REF_LABEL,
        rows_key="rows_in",
        rows_label="rows in",
        checks=checks,
        notes=[
            input_note(input_dir),
            "output: Parquet partitioned by order_date/source_file (one file per partition; the layout is the job's)",
            files_note(job_root / "quarantine", "job quarantine", (".csv",)),
            spark_note(job),
        ],
    )
