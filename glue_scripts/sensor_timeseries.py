"""Monthly sensor time series: constant-value intervals -> one row per sensor and grid point of a month.

Input: CSV files (with header) under `--input_path`, columns `sensor_id,start_time,end_time,value[,readings]`.
Each row says the sensor's value did not change over [start_time, end_time] (both inclusive); uploads
repeat older rows, so the same interval may appear many times. Output: Parquet partitioned by
`month=YYYY-MM` with every grid point of the month for every sensor seen in it; points no interval
covers are gaps (value null, is_gap true), never interpolated. Bad rows go to
`<quarantine_path>/month=YYYY-MM/` as CSV with the reasons.

Output columns: job_runtime.contracts.SENSOR_TIMESERIES_COLUMNS (sensor_id, ts, value, readings, is_gap),
exactly the catalog table's. `readings` is the readings of the interval the point's value comes from.

With --state_path, a run reads only the files the month index names (see "the month index" below),
so its cost follows the month's data, not the history; without it, every file under the input.

A month with no valid interval in it, or with fewer than --min_intervals_ratio x the intervals of the
previous month's run, fails the run before anything is written (BadInputError naming both counts and
the settings sensorAllowEmptyMonth / sensorMinIntervalsRatio), unless --allow_empty_month true. The
previous month's count is what its run recorded under `<state_path>/months/` (see "the month record");
without a record (the first month, or no --state_path) only the empty-month rule applies.

Arguments: --input_path --output_path --quarantine_path [--state_path] [--month YYYY-MM|previous]
[--frequency 1min] [--allow_empty_month false] [--min_intervals_ratio 0.5]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import glue_common
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from job_runtime import metrics
from job_runtime.contracts import (
    SENSOR_INDEX_DIR,
    SENSOR_TIMESERIES_COLUMNS,
    SENSOR_TIMESERIES_PARTITIONS,
    months_between,
)
from job_runtime.errors import BadInputError

JOB = "sensor_timeseries"
PIPELINE = "sensor-timeseries"  # pipelines/registry.py: the Pipeline dimension of its metrics
# The defaults of --allow_empty_month and --min_intervals_ratio: those of the settings sensorAllowEmptyMonth and
# sensorMinIntervalsRatio, which pipelines/sensor_timeseries.py passes as these arguments.
ALLOW_EMPTY_MONTH = "false"
MIN_INTERVALS_RATIO = "0.5"

REQUIRED_COLUMNS = ("sensor_id", "start_time", "end_time", "value")
READINGS = "readings"  # optional: absent means one reading per interval
SOURCE_FILE = "source_file"
CORRUPT_RECORD = "_corrupt_record"  # Spark fills it with the raw line when a row has too few/many fields

MICROS_PER_SECOND = 1_000_000
SECONDS_PER_DAY = 86_400
ROWS_PER_FILE = 5_000_000  # about 20-40 MB of snappy Parquet: few files, none tiny

# ISO-8601 date and time: seconds optional, fraction and offset only after seconds (what Spark's cast
# parses); without this check a bare "2024" or "2024-03-01" would cast to midnight.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
POSITIVE_INTEGER = r"^[0-9]{1,18}$"
FREQUENCY = re.compile(r"(\d+)(s|min|h)")
FREQUENCY_UNITS = {"s": 1, "min": 60, "h": 3600}
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- arguments -------------------------------------------------------------------------------------


def parse_frequency(text: str) -> int:
    """`30s`, `15min`, `1h` -> seconds; the step must divide a day so every month starts on the grid."""
    match = FREQUENCY.fullmatch(text.strip())
    if not match:
        raise BadInputError(f"--frequency {text!r} is not <n>s, <n>min or <n>h (e.g. 30s, 1min, 1h)")
    seconds = int(match.group(1)) * FREQUENCY_UNITS[match.group(2)]
    if seconds < 1:
        raise BadInputError(f"--frequency {text!r} must be at least 1s")
    if SECONDS_PER_DAY % seconds:
        raise BadInputError(f"--frequency {text!r} does not divide 24h evenly ({SECONDS_PER_DAY} s)")
    return seconds


def parse_allow_empty_month(text: str) -> bool:
    """`--allow_empty_month`: "true" or "false" (any case)."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise BadInputError(f"--allow_empty_month {text!r} is not true or false")
    return value == "true"


def parse_min_intervals_ratio(text: str) -> float:
    """`--min_intervals_ratio`: a number from 0 (the drop check off) up."""
    try:
        ratio = float(text.strip())
    except ValueError:
        ratio = -1.0
    if not (0 <= ratio < float("inf")):
        raise BadInputError(f"--min_intervals_ratio {text!r} is not a number >= 0 (0 turns the check off)")
    return ratio


def resolve_month(text: str, today: date) -> str:
    """`YYYY-MM` as given, or `previous`: the calendar month before `today` (UTC)."""
    text = text.strip()
    if text == "previous":
        last_day_of_previous = today.replace(day=1) - timedelta(days=1)
        return last_day_of_previous.strftime("%Y-%m")
    if not MONTH.fullmatch(text):
        raise BadInputError(f"--month {text!r} is not YYYY-MM or 'previous'")
    return text


@dataclass(frozen=True)
class Grid:
    """Regular time points start, start+step, ... before end (end exclusive), all UTC."""

    start: datetime
    end: datetime
    step_seconds: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Grid bounds must be timezone-aware")
        span = int((self.end - self.start).total_seconds())
        if span <= 0 or self.step_seconds < 1 or span % self.step_seconds:
            raise ValueError(f"Grid {self.start}..{self.end} is not a whole number of {self.step_seconds}s steps")

    @classmethod
    def for_month(cls, month: str, step_seconds: int) -> Grid:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        end = (start + timedelta(days=31)).replace(day=1)
        return cls(start, end, step_seconds)

    @property
    def month(self) -> str:
        """The partition value: the month the grid starts in."""
        return self.start.strftime("%Y-%m")

    @property
    def points(self) -> int:
        return int((self.end - self.start).total_seconds()) // self.step_seconds

    @property
    def start_micros(self) -> int:
        return (self.start - EPOCH) // timedelta(microseconds=1)

    @property
    def end_micros(self) -> int:
        return (self.end - EPOCH) // timedelta(microseconds=1)

    @property
    def step_micros(self) -> int:
        return self.step_seconds * MICROS_PER_SECOND


# --- reading ---------------------------------------------------------------------------------------


def _strings(names: Sequence[str]) -> StructType:
    return StructType([StructField(name, StringType()) for name in names])


def read_intervals(spark: SparkSession, input_path: str, files: Sequence[str] | None = None) -> DataFrame:
    """Every non-empty `*.csv` under input_path (or just `files`), all columns as strings, plus `source_file`.

    Columns come from the first file's header; `enforceSchema=false` makes Spark check every other
    file's header against them, so a file with reordered or different columns fails the run
    (see `header_mismatch`) instead of shifting values into the wrong columns.
    """
    files = (
        [f.uri for f in glue_common.list_files(spark, input_path, ".csv") if f.size > 0]
        if files is None
        else list(files)
    )
    if not files:
        return spark.createDataFrame([], _strings([*REQUIRED_COLUMNS, SOURCE_FILE]))
    header = spark.read.option("header", True).csv(files[:1]).columns
    return (
        spark.read.options(
            header=True, enforceSchema=False, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_RECORD
        )
        .schema(_strings([*header, CORRUPT_RECORD]))
        .csv(files)
        .withColumn(SOURCE_FILE, F.input_file_name())
    )


def header_mismatch(error: Exception) -> str | None:
    """Spark's message when a file's header differs from the first file's, else None."""
    text = str(error)
    start = text.find("CSV header does not conform to the schema")
    if start < 0:
        return None
    lines = text[start:].splitlines()
    return "; ".join(line.strip() for line in lines[:5] if line.strip() and not line.startswith("\tat "))


# --- the month index --------------------------------------------------------------------------------
#
# Which raw files hold intervals of which month, so a month's run reads only those files. Two writers,
# one layout (under a root): `month=YYYY-MM/<file>.json` for each month a file's intervals reach, then
# `files/<file>.json` once every month entry is written (a file is indexed once that marker exists);
# `<file>` is the CSV's path relative to the input. Each entry holds
# {"file", "first_start", "last_end", "months", "bytes"} (ingestion/sensor_upload.py index_entries).
#   - the upload CLI, under `<input>/_index/` (it read the file anyway; see ingestion/sensor_upload.py),
#   - this job, under `<state_path>/index/`, for every file it finds without an entry (uploaded before
#     the index existed, by other means, or one whose timestamps the CLI could not date): such a file
#     is read by the next run whatever its month, once, and indexed from its valid rows.
# Months run from the earliest start to the latest end of the file's valid intervals (a superset of
# the months they overlap); a file without a valid interval is indexed under the month of the run
# that read it, which quarantines its rows. Raw keys are immutable (the upload CLI's keys are derived
# from the content and never overwritten), so an entry never goes stale; a file deleted since is
# skipped, as the listing decides what exists.

INDEX_DIR = SENSOR_INDEX_DIR  # under the input: what the upload CLI writes


def index_roots(input_root: str, state_path: str) -> tuple[str, str]:
    """(the upload CLI's index root, the job's own index root)."""
    return f"{input_root.rstrip('/')}/{INDEX_DIR}", f"{state_path.rstrip('/')}/index"


def _path_key(uri: str) -> str:
    """A file's location without scheme or encoding: `file:/a`, `file:///a` and input_file_name's
    percent-encoded form all give `/a`, `s3://b/k` gives `b/k`."""
    return unquote(re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:/*", "/", uri)).lstrip("/")


def _indexed(spark: SparkSession, root: str) -> set[str]:
    """Relative names of the files an index root has completely indexed (one LIST, no reads)."""
    files_dir = glue_common.qualify(spark, f"{root}/files")
    return {
        glue_common.relative(files_dir, f.uri).removesuffix(".json")
        for f in glue_common.list_files(spark, files_dir, ".json")
    }


def _month_entries(spark: SparkSession, root: str, month: str) -> set[str]:
    """Relative names of the files an index root lists under `month` (that folder only)."""
    month_dir = glue_common.qualify(spark, f"{root}/month={month}")
    return {
        glue_common.relative(month_dir, f.uri).removesuffix(".json")
        for f in glue_common.list_files(spark, month_dir, ".json")
    }


@dataclass(frozen=True)
class Selection:
    """The raw files a month's run reads: those indexed under the month, plus those no index knows yet."""

    files: list[glue_common.FileInfo]
    unindexed: list[glue_common.FileInfo]
    listed: int  # non-empty CSVs under the input


def select_files(spark: SparkSession, input_path: str, state_path: str, month: str) -> Selection:
    """Lists the input's keys (no reads), both indexes' `files/` markers and `month=<month>/` entries."""
    root = glue_common.qualify(spark, input_path).rstrip("/")
    listed = [f for f in glue_common.list_files(spark, root, ".csv") if f.size > 0]
    upload_index, job_index = index_roots(root, state_path)
    indexed = _indexed(spark, upload_index) | _indexed(spark, job_index)
    in_month = _month_entries(spark, upload_index, month) | _month_entries(spark, job_index, month)
    chosen, unindexed = [], []
    for info in listed:
        rel = glue_common.relative(root, info.uri)
        if rel not in indexed:
            unindexed.append(info)
            chosen.append(info)
        elif rel in in_month:
            chosen.append(info)
    return Selection(chosen, unindexed, len(listed))


def write_index(
    spark: SparkSession,
    checked: DataFrame,
    input_path: str,
    state_path: str,
    files: Sequence[glue_common.FileInfo],
    month: str,
) -> int:
    """Index `files` (read by this run, no entry yet) from their valid rows in `checked`; returns how many."""
    if not files:
        return 0
    root = glue_common.qualify(spark, input_path).rstrip("/")
    ranges = {
        _path_key(row[SOURCE_FILE]): (row["first"], row["last"])
        for row in checked.where(F.col("reason").isNull())
        .groupBy(SOURCE_FILE)
        .agg(F.min(F.unix_micros("_start")).alias("first"), F.max(F.unix_micros("_end")).alias("last"))
        .collect()
    }
    _, job_index = index_roots(root, state_path)
    for info in files:
        rel = glue_common.relative(root, info.uri)
        found = ranges.get(_path_key(info.uri))
        if found is None:
            entry: dict[str, Any] = {"file": rel, "first_start": None, "last_end": None, "months": [month]}
        else:
            # Microseconds, not collected timestamps: PySpark converts those with the driver's local zone.
            first, last = (EPOCH + timedelta(microseconds=t) for t in found)
            entry = {
                "file": rel,
                "first_start": _iso(first),
                "last_end": _iso(last),
                "months": months_between(first, last),
            }
        entry["bytes"] = info.size
        text = json.dumps(entry, sort_keys=True)
        for covered in entry["months"]:
            glue_common.write_text(spark, f"{job_index}/month={covered}/{rel}.json", text)
        glue_common.write_text(spark, f"{job_index}/files/{rel}.json", text)  # last: the file is indexed
    return len(files)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the month record -------------------------------------------------------------------------------
#
# A successful run records its month's interval count in `<state_path>/months/month=YYYY-MM.json`
# ({"month", "intervals_in_month"}); the next month's run compares its own count with it. A rerun of a
# month replaces that month's record, so reruns and backfills leave one record per month.


@dataclass(frozen=True)
class MonthCheck:
    """The empty-month rule's settings (--allow_empty_month, --min_intervals_ratio)."""

    allow_empty_month: bool = ALLOW_EMPTY_MONTH == "true"
    min_intervals_ratio: float = float(MIN_INTERVALS_RATIO)


def previous_month(month: str) -> str:
    start = datetime.strptime(month, "%Y-%m")
    return (start - timedelta(days=1)).strftime("%Y-%m")


def _month_record_uri(state_path: str, month: str) -> str:
    return f"{state_path.rstrip('/')}/months/month={month}.json"


def recorded_intervals(spark: SparkSession, state_path: str, month: str) -> int | None:
    """The interval count the month's last successful run recorded, or None (no run, or no --state_path)."""
    if not state_path:
        return None
    text = glue_common.read_text(spark, _month_record_uri(state_path, month))
    return None if text is None else int(json.loads(text)["intervals_in_month"])


def record_intervals(spark: SparkSession, state_path: str, month: str, intervals: int) -> None:
    record = {"month": month, "intervals_in_month": intervals}
    glue_common.write_text(spark, _month_record_uri(state_path, month), json.dumps(record, sort_keys=True))


def check_month(month: str, intervals: int, previous: int | None, check: MonthCheck) -> None:
    """BadInputError when the month has no interval, or fewer than the ratio x the previous month's."""
    if check.allow_empty_month:
        return
    before = previous_month(month)
    earlier = f"{previous} in {before}" if previous is not None else f"no run recorded for {before}"
    if intervals == 0:
        raise BadInputError(
            f"sensor month {month} has no intervals (previous month: {earlier}); nothing was written. "
            "If the month is really empty, set sensorAllowEmptyMonth to true (job argument "
            "--allow_empty_month true) and run the month again; if its data is late, upload it and run the month again."
        )
    if previous is not None and check.min_intervals_ratio and intervals < check.min_intervals_ratio * previous:
        raise BadInputError(
            f"sensor month {month} has {intervals} intervals, fewer than {check.min_intervals_ratio:g} x the "
            f"{previous} intervals of {before}; nothing was written. If the drop is expected, lower "
            "sensorMinIntervalsRatio (0 turns this check off; job argument --min_intervals_ratio) or set "
            "sensorAllowEmptyMonth to true, and run the month again; if its data is late, upload it and run "
            "the month again."
        )


# --- validation ------------------------------------------------------------------------------------


def _try_cast(column: str, sql_type: str) -> Column:
    # try_cast returns null on failure whatever spark.sql.ansi.enabled says.
    return F.expr(f"try_cast(`{column}` AS {sql_type})")


def _blank(column: Column) -> Column:
    return column.isNull() | (column == "")


def _reasons(*checks: tuple[Column, str]) -> Column:
    """'; '-joined texts of the failed checks, or null when none failed (concat_ws skips nulls)."""
    joined = F.concat_ws("; ", *(F.when(failed, F.lit(reason)) for failed, reason in checks))
    return F.when(joined != "", joined)


def transform_check(raw: DataFrame) -> DataFrame:
    """Raw string rows + typed columns (`_sensor_id`, `_start`, `_end`, `_value`, `_readings`) + `reason`.

    `reason` is null for a valid row and otherwise lists every problem found.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in raw.columns]
    if missing:
        found = [name for name in raw.columns if name not in (SOURCE_FILE, CORRUPT_RECORD)]
        raise BadInputError(
            f"input is missing required column(s) {', '.join(missing)}; columns found: {', '.join(found) or 'none'}"
        )
    has_readings = READINGS in raw.columns
    raw_columns = [*REQUIRED_COLUMNS, *([READINGS] if has_readings else [])]
    trimmed = raw.select(
        *raw_columns,
        (F.col(SOURCE_FILE) if SOURCE_FILE in raw.columns else F.lit(None).cast("string")).alias(SOURCE_FILE),
        (F.col(CORRUPT_RECORD) if CORRUPT_RECORD in raw.columns else F.lit(None).cast("string")).alias("_corrupt"),
        *(F.trim(name).alias(f"_{name}_text") for name in raw_columns),
    )
    typed = trimmed.select(
        "*",
        F.col("_sensor_id_text").alias("_sensor_id"),
        F.when(F.col("_start_time_text").rlike(ISO_TIMESTAMP), _try_cast("_start_time_text", "TIMESTAMP")).alias(
            "_start"
        ),
        F.when(F.col("_end_time_text").rlike(ISO_TIMESTAMP), _try_cast("_end_time_text", "TIMESTAMP")).alias("_end"),
        _try_cast("_value_text", "DOUBLE").alias("_value"),
        (
            F.when(F.col("_readings_text").rlike(POSITIVE_INTEGER), _try_cast("_readings_text", "BIGINT"))
            if has_readings
            else F.lit(1).cast("bigint")
        ).alias("_readings"),
    )
    value = F.col("_value")
    checks = [
        (F.col("_corrupt").isNotNull(), "wrong number of fields"),
        (_blank(F.col("_sensor_id")), "sensor_id is missing"),
        (_blank(F.col("_start_time_text")), "start_time is missing"),
        (~_blank(F.col("_start_time_text")) & F.col("_start").isNull(), "start_time is not a timestamp"),
        (_blank(F.col("_end_time_text")), "end_time is missing"),
        (~_blank(F.col("_end_time_text")) & F.col("_end").isNull(), "end_time is not a timestamp"),
        (F.col("_end") < F.col("_start"), "end_time before start_time"),
        (_blank(F.col("_value_text")), "value is missing"),
        (~_blank(F.col("_value_text")) & value.isNull(), "value is not a number"),
        (F.isnan(value) | value.isin(float("inf"), float("-inf")), "value is not a finite number"),
    ]
    if has_readings:
        checks += [
            (_blank(F.col("_readings_text")), "readings is missing"),
            (
                ~_blank(F.col("_readings_text")) & F.coalesce(F.col("_readings") < 1, F.lit(True)),
                "readings is not a positive integer",
            ),
        ]
    return typed.select(
        *raw_columns,
        SOURCE_FILE,
        "_sensor_id",
        "_start",
        "_end",
        "_value",
        "_readings",
        _reasons(*checks).alias("reason"),
    )


def split_checked(checked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid intervals, typed) and (quarantined rows: raw strings, source_file, reason)."""
    valid = checked.where(F.col("reason").isNull()).select(
        F.col("_sensor_id").alias("sensor_id"),
        F.col("_start").alias("start_time"),
        F.col("_end").alias("end_time"),
        F.col("_value").alias("value"),
        F.col("_readings").alias("readings"),
    )
    raw_columns = [c for c in checked.columns if c in (*REQUIRED_COLUMNS, READINGS)]
    quarantined = checked.where(F.col("reason").isNotNull()).select(*raw_columns, SOURCE_FILE, "reason")
    return valid, quarantined


def transform_validate(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Raw string rows -> (valid typed intervals, quarantined rows with reasons); BadInputError on missing columns."""
    return split_checked(transform_check(raw))


# --- expansion -------------------------------------------------------------------------------------


def overlaps_grid(start_time: Column, end_time: Column, grid: Grid) -> Column:
    """The interval [start_time, end_time] overlaps the grid's window [start, end)."""
    return (F.unix_micros(start_time) < grid.end_micros) & (F.unix_micros(end_time) >= grid.start_micros)


def transform_grid_intervals(valid: DataFrame, grid: Grid) -> DataFrame:
    """Valid intervals overlapping the grid window, with the first and last grid index each one covers.

    An interval lying between two grid points gets first_k > last_k: it covers no point, but its
    sensor is still in the window and gets a (gap) row for every point.
    """
    step = grid.step_micros
    start_us = F.unix_micros("start_time")
    end_us = F.unix_micros("end_time")
    overlapping = valid.where(overlaps_grid(F.col("start_time"), F.col("end_time"), grid)).select(
        "sensor_id",
        "start_time",
        "end_time",
        "value",
        "readings",
        # Offsets from the grid start after clipping to the window, so both are >= 0 and `div` is floor.
        (F.greatest(start_us, F.lit(grid.start_micros)) - grid.start_micros).alias("_start_offset"),
        (F.least(end_us, F.lit(grid.end_micros - 1)) - grid.start_micros).alias("_end_offset"),
    )
    return overlapping.select(
        "sensor_id",
        "start_time",
        "end_time",
        "value",
        "readings",
        F.expr(f"(_start_offset + {step - 1}) div {step}").alias("first_k"),  # first point at or after start
        F.expr(f"_end_offset div {step}").alias("last_k"),  # last point at or before end
    )


def transform_to_timeseries(valid: DataFrame, grid: Grid, files: int = 1) -> DataFrame:
    """Every grid point for every sensor with an interval in the window, value from the winning interval.

    Covering intervals compete per (sensor, point) through max(struct(covered, start, end, value,
    readings)): the latest start wins, then the latest end, then the larger value, then the larger
    readings; one `(covered=false)` candidate per sensor spans the whole grid, so a point nothing
    covers survives as a gap (value and readings null).

    `readings` is the winning interval's readings, as uploaded: how many measurements stand behind
    the value this point carries. The measurements' own times are not in the input (an interval only
    says the value did not change while they were taken), so they are not spread over the points:
    any split would invent data. ML users weight or filter points by it (e.g. readings >= 2).
    Intervals, not points, are shuffled (once, by sensor, besides the small distinct of sensor ids)
    and exploded afterwards: the aggregation by (sensor, point) then needs no second shuffle and
    each of the `files` partitions becomes one output file.
    """
    intervals = transform_grid_intervals(valid, grid)
    covering = intervals.where(F.col("first_k") <= F.col("last_k")).select(
        "sensor_id",
        F.col("first_k").cast("bigint").alias("first_k"),
        F.col("last_k").cast("bigint").alias("last_k"),
        F.struct(
            F.lit(True).alias("covered"),
            F.col("start_time").alias("start_time"),
            F.col("end_time").alias("end_time"),
            F.col("value").alias("value"),
            F.col("readings").alias("readings"),
        ).alias("candidate"),
    )
    whole_grid = (
        intervals.select("sensor_id")
        .distinct()
        .select(
            "sensor_id",
            F.lit(0).cast("bigint").alias("first_k"),
            F.lit(grid.points - 1).cast("bigint").alias("last_k"),
            F.struct(
                F.lit(False).alias("covered"),
                F.lit(None).cast("timestamp").alias("start_time"),
                F.lit(None).cast("timestamp").alias("end_time"),
                F.lit(None).cast("double").alias("value"),
                F.lit(None).cast("bigint").alias("readings"),
            ).alias("candidate"),
        )
    )
    winners = (
        covering.unionByName(whole_grid)
        .repartition(files, "sensor_id")
        .select("sensor_id", F.explode(F.sequence("first_k", "last_k")).alias("k"), "candidate")
        .groupBy("sensor_id", "k")
        .agg(F.max("candidate").alias("winner"))
        # Rows ordered by time within each file compress well and give tight row-group statistics;
        # the sort-based aggregation already produces this order, so Spark drops the sort as redundant.
        .sortWithinPartitions("sensor_id", "k")
    )
    series = winners.select(
        F.col("sensor_id").alias("sensor_id"),
        F.timestamp_micros(F.lit(grid.start_micros) + F.col("k") * grid.step_micros).alias("ts"),
        F.col("winner.value").alias("value"),
        F.col("winner.readings").alias("readings"),
        (~F.col("winner.covered")).alias("is_gap"),
    )
    # Exactly the catalog table's columns, in its order and types, then the partition column.
    return series.select(
        *(F.col(name).cast(hive_type).alias(name) for name, hive_type in SENSOR_TIMESERIES_COLUMNS),
        *(F.lit(grid.month).cast(hive_type).alias(name) for name, hive_type in SENSOR_TIMESERIES_PARTITIONS),
    )


# --- the job ---------------------------------------------------------------------------------------


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _month_dir(root: str, month: str) -> str:
    return f"{root.rstrip('/')}/month={month}"


def run(
    spark: SparkSession,
    grid: Grid,
    input_path: str,
    output_path: str,
    quarantine_path: str,
    state_path: str = "",
    check: MonthCheck = MonthCheck(),
) -> dict[str, Any]:
    """The whole job for one month's grid; returns the logged summary.

    With `state_path`, only the files the month index names (and those it does not know yet, which are
    then indexed) are read, and the month's interval count is recorded for the next month's check;
    without it, every file under the input. BadInputError, before anything is written, when the month
    fails `check` (see check_month).
    """
    # TIMESTAMP_MICROS (UTC-adjusted) rather than Spark's legacy INT96: what Athena, Redshift and pyarrow expect.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    if state_path:
        selection = select_files(spark, input_path, state_path, grid.month)
    else:
        listed = [f for f in glue_common.list_files(spark, input_path, ".csv") if f.size > 0]
        selection = Selection(listed, [], len(listed))
    previous = recorded_intervals(spark, state_path, previous_month(grid.month))
    checked = transform_check(read_intervals(spark, input_path, [f.uri for f in selection.files])).cache()
    try:
        summary = _process(
            checked,
            grid,
            output_path,
            quarantine_path,
            selection,
            lambda n: check_month(grid.month, n, previous, check),
        )
        # Only after the month's output is written: a failed run indexes nothing and the next one reads again.
        indexed = 0
        if state_path:
            indexed = write_index(spark, checked, input_path, state_path, selection.unindexed, grid.month)
            record_intervals(spark, state_path, grid.month, summary["intervals_in_month"])
    finally:
        checked.unpersist()
    return glue_common.log_summary(
        JOB,
        PIPELINE,
        {metrics.FILES: summary["files_read"], metrics.DEVICES: summary["sensors"]},
        **summary,
        files_indexed=indexed,
    )


def _process(
    checked: DataFrame,
    grid: Grid,
    output_path: str,
    quarantine_path: str,
    selection: Selection,
    check: Callable[[int], None],
) -> dict[str, Any]:
    # Valid intervals in the month's window, as transform_grid_intervals selects them.
    in_window = F.col("reason").isNull() & overlaps_grid(F.col("_start"), F.col("_end"), grid)
    try:
        # The only counting action: it reads every file once (filling the cache) and gives every count
        # the summary and the output size need; everything after works on the cached rows.
        totals = checked.agg(
            F.count(F.lit(1)).alias("rows_in"),
            F.count(F.when(F.col("reason").isNull(), 1)).alias("rows_valid"),
            F.count(F.when(in_window, 1)).alias("intervals"),
            F.countDistinct(F.when(in_window, F.col("_sensor_id"))).alias("sensors"),
        ).first()
    except Exception as error:  # Py4JJavaError wrapping the header check's IllegalArgumentException
        message = header_mismatch(error)
        if message is None:
            raise
        raise BadInputError(message) from None
    assert totals is not None
    check(int(totals["intervals"]))  # before any write: a failed check leaves the month as it was
    rows_in, rows_valid = int(totals["rows_in"]), int(totals["rows_valid"])
    valid, quarantined = split_checked(checked)
    sensors = int(totals["sensors"])
    points = sensors * grid.points
    gap_points = 0

    # Nothing is written for a side that has nothing: an empty or missing upload must not wipe a month
    # processed before (overwriting the partition with no rows would delete it).
    if rows_in:
        # The month's quarantine is replaced as a whole (header only when all rows are valid): reruns never
        # accumulate. Bad rows cannot all be dated, so it holds every bad row of the input read.
        quarantined.coalesce(1).write.mode("overwrite").option("header", True).csv(
            _month_dir(quarantine_path, grid.month)
        )
    if sensors:
        figures = Observation("sensor_timeseries_output")
        series = transform_to_timeseries(valid, grid, files=max(1, -(-points // ROWS_PER_FILE))).observe(
            figures, F.count(F.lit(1)).alias("points"), F.count(F.when(F.col("is_gap"), 1)).alias("gap_points")
        )
        # Dynamic partition overwrite (glue_common.configure): only month=<month> is replaced.
        series.write.mode("overwrite").partitionBy("month").parquet(output_path)
        observed = figures.get  # filled in by the write itself: no second pass over the output
        assert observed["points"] == points, f"wrote {observed['points']} points, expected {sensors} x {grid.points}"
        gap_points = int(observed["gap_points"])

    return dict(
        month=grid.month,
        frequency_seconds=grid.step_seconds,
        rows_in=rows_in,
        rows_valid=rows_valid,
        rows_loaded=rows_valid,  # every valid interval is used (those of other months by their months' runs)
        rows_quarantined=rows_in - rows_valid,
        intervals_in_month=int(totals["intervals"]),
        sensors=sensors,
        points=points,
        gap_points=gap_points,
        files_listed=selection.listed,
        files_read=len(selection.files),
        bytes_read=sum(f.size for f in selection.files),
    )


def main(argv: Sequence[str] | None = None, today: Callable[[], date] = _utc_today) -> dict[str, Any]:
    """Entry point; bad input (arguments, columns, headers) raises BadInputError (see glue_common.run)."""
    glue_common.setup_logging()
    # Glue's getResolvedOptions skips argv[0], so on Glue this must be the whole sys.argv.
    argv = sys.argv if argv is None else argv
    glue_common.start_run(argv)
    args = glue_common.resolve_args(
        argv,
        required=("input_path", "output_path", "quarantine_path"),
        optional={
            "month": "previous",
            "frequency": "1min",
            "state_path": "",
            "allow_empty_month": ALLOW_EMPTY_MONTH,
            "min_intervals_ratio": MIN_INTERVALS_RATIO,
        },
    )
    # Arguments are checked before Spark starts.
    grid = Grid.for_month(resolve_month(args["month"], today()), parse_frequency(args["frequency"]))
    check = MonthCheck(
        parse_allow_empty_month(args["allow_empty_month"]), parse_min_intervals_ratio(args["min_intervals_ratio"])
    )
    spark = glue_common.spark_session(JOB)
    return run(
        spark,
        grid,
        args["input_path"],
        args["output_path"],
        args["quarantine_path"],
        args["state_path"].strip(),
        check,
    )


if __name__ == "__main__":
    sys.exit(glue_common.run(main))
