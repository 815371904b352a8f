"""Glue job `sales_csv_to_parquet`: every new or changed sales CSV -> validated, typed Snappy Parquet.

Driven by state markers, not by the triggering event (a Glue workflow started by EventBridge sees
only event ids): a CSV under --input_path is pending unless `<state>/converted/<rel>.json` or
`<state>/rejected/<rel>.json` records its current size and modified time. So batched, duplicated
or missed events are harmless: each run converts whatever is pending.

Per pending file (rel = its path relative to --input_path):
  * header lacks a selected column -> the file is rejected (marker with the reason), the others
    go on, and the run fails at the end naming each rejected file (exit 3: bad input);
  * rows failing validation -> CSV under `<quarantine>/source_file=<rel>/`, with every reason;
  * clean rows -> Parquet under `<output>/order_date=YYYY-MM-DD/source_file=<rel>/`, replacing
    whatever that file wrote before (and only that), so reruns and corrected re-uploads never
    duplicate or leave stale rows;
  * then `<state>/converted/<rel>.json` with the counts (rows_in = rows_loaded + rows_quarantined).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import glue_common
from glue_common import FileInfo
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime.contracts import SALES_SCHEMA, SalesField
from job_runtime.errors import BadInputError

JOB = "sales_csv_to_parquet"
SOURCE_FILE = "source_file"
ROW_ORDER = "_row_order"  # file order of a row within its file (monotonically_increasing_id right after the read)
CORRUPT = "_corrupt_record"  # Spark's malformed-row column: set when a row's field count differs from the header's
REASON = "reason"
DUPLICATE = "duplicate order_id (kept the first)"
MALFORMED = "row does not have as many fields as the header"


# The sales columns, their checks and types: job_runtime.contracts, which the loader and the stack's
# config check also read.
SCHEMA: tuple[SalesField, ...] = SALES_SCHEMA


def spark_type(field: SalesField) -> T.DataType:
    """The Spark type a sales column is converted to."""
    return {
        "string": T.StringType(),
        "date": T.DateType(),
        "int": T.IntegerType(),
        "decimal": T.DecimalType(field.precision, field.scale),
    }[field.kind]


FIELDS = {f.name: f for f in SCHEMA}
DEFAULT_COLUMNS = "order_id,order_date,customer_id,product_id,category,region,quantity,unit_price,discount"

CSV_OPTIONS = {
    "header": "true",
    "multiLine": "true",  # free-text columns (notes) may hold quoted line breaks
    "escape": '"',  # RFC 4180: a quote inside a quoted field is doubled
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "encoding": "UTF-8",
}


def parse_columns(text: str) -> tuple[str, ...]:
    """The `--columns` selection, in schema order; BadInputError unless it names schema columns incl. the keys."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise BadInputError(f"--columns names unknown columns {unknown}; the sales schema has {list(FIELDS)}")
    missing = [n for n in ("order_id", "order_date") if n not in names]
    if missing:
        raise BadInputError(
            f"--columns must include order_id and order_date (the key and the partition); missing {missing}"
        )
    return tuple(f.name for f in SCHEMA if f.name in names)


# What Java's regex `\s` matches: space, tab, newline, vertical tab, form feed, carriage return.
WHITESPACE = " \t\n\x0b\f\r"


def _blank_to_null(raw: Column) -> Column:
    """Trimmed text (leading/trailing whitespace as above), or null when blank (blank strings count as missing).

    btrim, not regexp_replace(raw, r"^\\s+|\\s+$", ""): the same characters removed without a regex per
    value. The trimmed text feeds several checks and Spark evaluated the regex once per use: on the
    5-million-row benchmark (`python -m bench --only sales`) the job took 184 s with it, 90 s without.
    """
    trimmed = F.btrim(raw, F.lit(WHITESPACE))
    return F.when(trimmed != "", trimmed)


def _number_pattern(field: SalesField) -> str:
    if field.kind == "int":
        return r"^[+-]?[0-9]+$"
    return rf"^[+-]?([0-9]+(\.[0-9]{{0,{field.scale}}})?|\.[0-9]{{1,{field.scale}}})$"


def _checks(field: SalesField, text: str, wide: str) -> list[Column]:
    """This column's reason (null when fine): missing | unparsable | out of range | too long."""
    value, parsed = F.col(text), F.col(wide)
    reasons = []
    if field.required:
        reasons.append(F.when(value.isNull(), F.lit(f"{field.name} is missing")))
    if field.kind == "date":
        reasons.append(F.when(value.isNotNull() & parsed.isNull(), F.lit(f"{field.name} is not a date (yyyy-MM-dd)")))
    elif field.kind in ("int", "decimal"):
        what = "an integer" if field.kind == "int" else f"a number with at most {field.scale} decimals"
        parsable = value.rlike(_number_pattern(field))
        reasons.append(F.when(value.isNotNull() & ~parsable, F.lit(f"{field.name} is not {what}")))
        # A parsable number too large even for DECIMAL(38, s) is null here: out of range too.
        outside = parsed.isNull() | (parsed < F.lit(field.low)) | (parsed > F.lit(field.high))
        reasons.append(
            F.when(
                value.isNotNull() & parsable & outside,
                F.lit(f"{field.name} must be between {field.low} and {field.high}"),
            )
        )
    else:
        reasons.append(
            F.when(
                F.octet_length(value) > field.max_bytes, F.lit(f"{field.name} is longer than {field.max_bytes} bytes")
            )
        )
    return reasons


def validate_sales(raw_df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Every input row with its raw text, its typed values (`_v_<col>`) and `reason` (null when clean).

    raw_df: the selected columns as strings (raw CSV text), `source_file`, `_row_order` (file order
    within a source file) and optionally `_corrupt_record` (non-null for malformed rows).
    """
    columns = parse_columns(",".join(columns))
    fields = [FIELDS[c] for c in columns]
    # Step 1: trimmed text (`_t_`) per column; step 2: the parsed value at a wide type (`_w_`), so
    # range checks see the real number (e.g. discount 15 is "out of range", not "unparsable").
    texts = raw_df.select("*", *(_blank_to_null(F.col(c)).alias(f"_t_{c}") for c in columns))
    wides = []
    for f in fields:
        if f.kind == "date":
            # try_cast: never fails, whatever spark.sql.ansi.enabled says; the pattern rejects 2024-3-5.
            wide = F.when(
                F.col(f"_t_{f.name}").rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), F.expr(f"try_cast(`_t_{f.name}` AS DATE)")
            )
        elif f.kind in ("int", "decimal"):
            wide = F.expr(f"try_cast(`_t_{f.name}` AS DECIMAL(38, {f.scale}))")
        else:
            wide = F.col(f"_t_{f.name}")
        wides.append(wide.alias(f"_w_{f.name}"))
    parsed = texts.select("*", *wides)

    reasons = [r for f in fields for r in _checks(f, f"_t_{f.name}", f"_w_{f.name}")]
    if CORRUPT in raw_df.columns:
        reasons.insert(0, F.when(F.col(CORRUPT).isNotNull(), F.lit(MALFORMED)))
    own = F.concat_ws("; ", *reasons)
    with_own = parsed.withColumn("_own", F.when(own != "", own))

    # Duplicates: the first otherwise-valid row of an order_id (in file order) is kept; every later
    # row of that order_id in the same file is a duplicate. One window, one shuffle.
    by_order = Window.partitionBy(SOURCE_FILE, "_t_order_id")
    first_valid = F.min(F.when(F.col("_own").isNull(), F.col(ROW_ORDER))).over(by_order)
    duplicate = F.when(F.col("_t_order_id").isNotNull() & (F.col(ROW_ORDER) > first_valid), F.lit(DUPLICATE))
    reason = F.concat_ws("; ", F.col("_own"), duplicate)
    validated = with_own.withColumn(REASON, F.when(reason != "", reason))
    return validated.select(
        *columns,
        SOURCE_FILE,
        *(F.col(f"_w_{f.name}").cast(spark_type(f)).alias(f"_v_{f.name}") for f in fields),
        REASON,
    )


def split_validated(validated: DataFrame, columns: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(clean rows typed, in schema order + source_file; quarantined raw text + source_file + reason)."""
    columns = parse_columns(",".join(columns))
    clean = validated.where(F.col(REASON).isNull()).select(*(F.col(f"_v_{c}").alias(c) for c in columns), SOURCE_FILE)
    quarantine = validated.where(F.col(REASON).isNotNull()).select(*columns, SOURCE_FILE, REASON)
    return clean, quarantine


def transform_sales(raw_df: DataFrame, columns: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """Pure transform: (clean_df, quarantine_df) from raw string rows; see validate_sales for raw_df."""
    return split_validated(validate_sales(raw_df, columns), columns)


# --- I/O ---------------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    """A column reference to any header text (dots, spaces, backticks) as one plain column."""
    return "`" + name.replace("`", "``") + "`"


def read_raw(spark, info: FileInfo, rel: str, columns: Sequence[str]) -> DataFrame | str:
    """The file's selected columns as raw strings (+ source_file, row order, malformed marker),
    or the reason the file as a whole is rejected."""
    header = spark.read.options(**CSV_OPTIONS).csv(info.uri).columns  # Spark reads just the header line
    normalized = [h.replace("\ufeff", "").strip().lower() for h in header]
    missing = [c for c in columns if c not in normalized]
    if missing:
        return f"missing columns {missing} (found {normalized})"
    # Re-read with an explicit all-string schema (fields by position), so rows with too few or too
    # many fields are flagged in `_corrupt_record` instead of being silently padded or cut.
    schema = T.StructType([T.StructField(h, T.StringType()) for h in header] + [T.StructField(CORRUPT, T.StringType())])
    df = spark.read.schema(schema).options(**CSV_OPTIONS, enforceSchema="true").csv(info.uri)
    return df.select(
        *(F.col(_quoted(header[normalized.index(c)])).alias(c) for c in columns),
        F.lit(rel).alias(SOURCE_FILE),
        F.monotonically_increasing_id().alias(ROW_ORDER),  # right after the scan: follows file order
        CORRUPT,
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args = glue_common.resolve_args(
        sys.argv[1:] if argv is None else argv,
        ["input_path", "output_path", "quarantine_path", "state_path"],
        {"columns": DEFAULT_COLUMNS},
    )
    columns = parse_columns(args["columns"])
    spark = glue_common.spark_session(JOB)
    root = glue_common.qualify(spark, args["input_path"])
    output, quarantine_root = args["output_path"].rstrip("/"), args["quarantine_path"].rstrip("/")
    state = args["state_path"].rstrip("/")

    converted = glue_common.read_markers(spark, f"{state}/converted")
    rejected_before = glue_common.read_markers(spark, f"{state}/rejected")
    pending = []
    for info in glue_common.list_files(spark, root, ".csv"):
        rel = glue_common.relative(root, info.uri)
        if not (
            glue_common.is_current(converted.get(rel), info) or glue_common.is_current(rejected_before.get(rel), info)
        ):
            pending.append((rel, info))

    accepted: list[tuple[str, FileInfo, DataFrame]] = []
    rejected: list[str] = []
    for rel, info in pending:
        raw = read_raw(spark, info, rel, columns)
        if isinstance(raw, str):
            marker = {"source": info.uri, "source_file": rel, "size": info.size, "modified_ms": info.modified_ms}
            glue_common.write_text(spark, f"{state}/rejected/{rel}.json", json.dumps({**marker, "reason": raw}))
            rejected.append(f"{rel}: {raw}")
        else:
            accepted.append((rel, info, raw))

    counts: dict[str, tuple[int, int]] = {}
    if accepted:
        raw_all = accepted[0][2]
        for _, _, df in accepted[1:]:
            raw_all = raw_all.unionByName(df)
        # Cached: the counts and both writes reuse one read + validation of the CSVs.
        validated = validate_sales(raw_all, columns).persist()
        try:
            counted = validated.groupBy(SOURCE_FILE).agg(F.count("*").alias("n"), F.count(REASON).alias("bad"))
            counts = {r[SOURCE_FILE]: (r["n"] - r["bad"], r["bad"]) for r in counted.collect()}
            for rel, _, _ in accepted:
                part = glue_common.partition_dir(spark, SOURCE_FILE, rel)
                # A corrected re-upload may lack dates the old one had: drop all of this file's output.
                glue_common.delete_matching(spark, f"{output}/*/{part}")
                glue_common.delete_path(spark, f"{quarantine_root}/{part}")
            clean, bad = split_validated(validated, columns)
            # Dynamic partition overwrite (glue_common.configure): only this run's partitions are replaced.
            clean.repartition("order_date", SOURCE_FILE).write.mode("overwrite").partitionBy(
                "order_date", SOURCE_FILE
            ).parquet(output)
            bad.repartition(SOURCE_FILE).write.mode("overwrite").partitionBy(SOURCE_FILE).option("header", "true").csv(
                quarantine_root
            )
        finally:
            validated.unpersist()
        for rel, info, _ in accepted:
            loaded, quarantined = counts.get(rel, (0, 0))
            marker = {
                "source": info.uri,
                "source_file": rel,
                "columns": list(columns),
                "size": info.size,
                "modified_ms": info.modified_ms,
                "rows_in": loaded + quarantined,
                "rows_loaded": loaded,
                "rows_quarantined": quarantined,
            }
            glue_common.write_text(spark, f"{state}/converted/{rel}.json", json.dumps(marker, sort_keys=True))
            glue_common.delete_path(spark, f"{state}/rejected/{rel}.json")

    rows_loaded = sum(c[0] for c in counts.values())
    rows_quarantined = sum(c[1] for c in counts.values())
    summary = glue_common.log_summary(
        JOB,
        files=len(accepted),
        rows_in=rows_loaded + rows_quarantined,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        rejected=rejected,
    )
    if rejected:
        raise BadInputError(f"{len(rejected)} sales file(s) rejected: " + "; ".join(rejected))
    return summary


if __name__ == "__main__":
    glue_common.setup_logging()
    sys.exit(glue_common.run(main))
