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
  * with --catalog_database and --catalog_table: the Glue partitions (order_date, source_file) it
    wrote are registered in that table and those its previous version wrote but this one did not
    are removed, so Athena sees exactly the new rows once the job succeeds;
  * then `<state>/converted/<rel>.json` with the counts (rows_in = rows_loaded + rows_quarantined)
    and the order dates written.
With the catalog, files converted before partitions were registered (markers without order dates)
have theirs registered once, from the folders they wrote.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import glue_common
from glue_common import FileInfo
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime import metrics
from job_runtime.contracts import SALES_DEFAULT_COLUMNS, SALES_SCHEMA, SalesField
from job_runtime.errors import BadInputError

JOB = "sales_csv_to_parquet"
PIPELINE = "sales"  # pipelines/registry.py: the Pipeline dimension of its metrics
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
DEFAULT_COLUMNS = ",".join(SALES_DEFAULT_COLUMNS)

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


# --- the catalog -----------------------------------------------------------------------------------

# Glue BatchCreatePartition takes at most 100 partitions a call, BatchDeletePartition 25
# (https://docs.aws.amazon.com/glue/latest/webapi/API_BatchCreatePartition.html,
# https://docs.aws.amazon.com/glue/latest/webapi/API_BatchDeletePartition.html).
CREATE_PARTITIONS_PER_CALL = 100
DELETE_PARTITIONS_PER_CALL = 25


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def register_partitions(
    glue: Any,
    database: str,
    table: str,
    created: Sequence[tuple[tuple[str, str], str]],
    deleted: Sequence[tuple[str, str]],
) -> dict[str, int]:
    """Add partitions ((order_date, source_file), location) to a Glue table and drop others by values.

    Each new partition gets the table's storage descriptor (columns, Parquet SerDe and formats) with its
    own location, as Athena expects. Idempotent: a partition that already exists is left as it is (same
    values, same location), one already gone is not an error. Any other error fails the run, before the
    files are recorded as converted, so the next run does it all again.
    """
    descriptor = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]
    keep = ("Columns", "InputFormat", "OutputFormat", "SerdeInfo", "Compressed")
    base = {k: descriptor[k] for k in keep if k in descriptor}
    added = 0
    for chunk in _chunks(list(created), CREATE_PARTITIONS_PER_CALL):
        inputs = [{"Values": list(values), "StorageDescriptor": {**base, "Location": loc}} for values, loc in chunk]
        errors = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=inputs)
        failed = [e for e in errors.get("Errors", []) if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"]
        if failed:
            raise RuntimeError(f"Glue BatchCreatePartition on {database}.{table} failed: {failed}")
        added += len(chunk) - len(errors.get("Errors", []))
    removed = 0
    for chunk in _chunks(list(deleted), DELETE_PARTITIONS_PER_CALL):
        result = glue.batch_delete_partition(
            DatabaseName=database, TableName=table, PartitionsToDelete=[{"Values": list(v)} for v in chunk]
        )
        failed = [e for e in result.get("Errors", []) if e["ErrorDetail"]["ErrorCode"] != "EntityNotFoundException"]
        if failed:
            raise RuntimeError(f"Glue BatchDeletePartition on {database}.{table} failed: {failed}")
        removed += len(chunk) - len(result.get("Errors", []))
    return {"partitions_added": added, "partitions_removed": removed}


def written_dates(spark, output: str, sources: Sequence[str]) -> dict[str, list[str]]:
    """The order dates (partition folders) each source file has under the output, sorted."""
    if not glue_common.exists(spark, output):
        return {}
    folders = spark.read.schema(f"order_id string, order_date date, {SOURCE_FILE} string").parquet(output)
    found: dict[str, list[str]] = {}
    for r in (
        folders.where(F.col(SOURCE_FILE).isin(list(sources))).select(SOURCE_FILE, "order_date").distinct().collect()
    ):
        found.setdefault(r[SOURCE_FILE], []).append(r["order_date"].isoformat())
    return {rel: sorted(days) for rel, days in found.items()}


def glue_client() -> Any:
    import boto3

    return boto3.client("glue")


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


def main(argv: Sequence[str] | None = None, glue: Any = None) -> dict:
    """Convert every pending CSV; `glue`: the Glue client for partition registration (default: boto3's)."""
    # Glue's getResolvedOptions skips argv[0], so on Glue this must be the whole sys.argv.
    argv = sys.argv if argv is None else argv
    glue_common.start_run(argv)
    args = glue_common.resolve_args(
        argv,
        ["input_path", "output_path", "quarantine_path", "state_path"],
        {"columns": DEFAULT_COLUMNS, "catalog_database": "", "catalog_table": ""},
    )
    catalog = (args["catalog_database"], args["catalog_table"])
    if any(catalog) and not all(catalog):
        raise BadInputError("--catalog_database and --catalog_table go together")
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
    dates: dict[str, list[str]] = {}
    catalog_changes = {"partitions_added": 0, "partitions_removed": 0}
    if accepted:
        raw_all = accepted[0][2]
        for _, _, df in accepted[1:]:
            raw_all = raw_all.unionByName(df)
        # Cached: the counts and both writes reuse one read + validation of the CSVs.
        validated = validate_sales(raw_all, columns).persist()
        try:
            # One pass for the counts and the dates each file writes (its clean rows' partitions).
            day = F.when(F.col(REASON).isNull(), F.col("_v_order_date")).alias("day")
            counted = validated.groupBy(SOURCE_FILE, day).agg(F.count("*").alias("n"), F.count(REASON).alias("bad"))
            for r in counted.collect():
                clean_rows, bad_rows = counts.get(r[SOURCE_FILE], (0, 0))
                counts[r[SOURCE_FILE]] = (clean_rows + r["n"] - r["bad"], bad_rows + r["bad"])
                if r["day"] is not None:
                    dates.setdefault(r[SOURCE_FILE], []).append(r["day"].isoformat())
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
        if all(catalog):
            created, deleted = [], []
            for rel, _, _ in accepted:
                part = glue_common.partition_dir(spark, SOURCE_FILE, rel)
                now = sorted(dates.get(rel, []))
                created += [((day, rel), f"{output}/order_date={day}/{part}/") for day in now]
                before = (converted.get(rel) or {}).get("order_dates", [])
                deleted += [(day, rel) for day in sorted(set(before) - set(now))]
            catalog_changes = register_partitions(glue or glue_client(), *catalog, created, deleted)
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
                # The partitions this version wrote: a later version drops those it does not write again.
                "order_dates": sorted(dates.get(rel, [])),
            }
            glue_common.write_text(spark, f"{state}/converted/{rel}.json", json.dumps(marker, sort_keys=True))
            glue_common.delete_path(spark, f"{state}/rejected/{rel}.json")

    if all(catalog):
        # Files converted before the job registered partitions (their markers record no order dates):
        # registered once, from the folders they wrote; their markers then record the dates.
        done = {rel for rel, _, _ in accepted}
        unregistered = {rel: m for rel, m in converted.items() if "order_dates" not in m and rel not in done}
        if unregistered:
            found = written_dates(spark, output, list(unregistered))
            created = [
                ((day, rel), f"{output}/order_date={day}/{glue_common.partition_dir(spark, SOURCE_FILE, rel)}/")
                for rel in unregistered
                for day in found.get(rel, [])
            ]
            backfilled = register_partitions(glue or glue_client(), *catalog, created, [])
            catalog_changes["partitions_added"] += backfilled["partitions_added"]
            for rel, marker in unregistered.items():
                marker = {**marker, "order_dates": found.get(rel, [])}
                glue_common.write_text(spark, f"{state}/converted/{rel}.json", json.dumps(marker, sort_keys=True))

    rows_loaded = sum(c[0] for c in counts.values())
    rows_quarantined = sum(c[1] for c in counts.values())
    summary = glue_common.log_summary(
        JOB,
        PIPELINE,
        {metrics.FILES: len(accepted)},
        files=len(accepted),
        rows_in=rows_loaded + rows_quarantined,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        rejected=rejected,
        **(catalog_changes if all(catalog) else {}),
    )
    if rejected:
        raise BadInputError(f"{len(rejected)} sales file(s) rejected: " + "; ".join(rejected))
    return summary


if __name__ == "__main__":
    glue_common.setup_logging()
    sys.exit(glue_common.run(main))
