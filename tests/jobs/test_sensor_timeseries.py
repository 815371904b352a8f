"""The sensor time-series Glue job on the shared local Spark session (pyspark 3.5, the Glue 5.0 engine).

Transform tests use a one-day window with a 6 h step (points 00:00, 06:00, 12:00, 18:00) so every
expected row can be written out by hand. End-to-end tests run `main` on the bundled sample with a
6 h step; its expected output is written down as runs of equal values read off the sample by hand.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import re
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import glue_common
import pyarrow.parquet as pq
import pytest
import sensor_timeseries as job
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from sensor_timeseries import Grid

from job_runtime.contracts import SENSOR_TIMESERIES_COLUMNS, SENSOR_TIMESERIES_PARTITIONS
from job_runtime.errors import BadInputError
from tests.jobs.emf import figures, one_run_summary

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "sample_data" / "sensor"
SAMPLE = SAMPLE_DIR / "sensor_intervals_2024_03.csv"
COLUMNS = ("sensor_id", "start_time", "end_time", "value")
DAY = Grid(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC), 6 * 3600)
OUTPUT_DTYPES = [
    ("sensor_id", "string"),
    ("ts", "timestamp"),
    ("value", "double"),
    ("readings", "bigint"),
    ("is_gap", "boolean"),
    ("month", "string"),
]
OUTPUT_SCHEMA = "sensor_id string, ts timestamp, value double, readings bigint, is_gap boolean, month string"


def raw(spark, rows: Sequence[tuple[str | None, ...]], columns: tuple[str, ...] = COLUMNS) -> DataFrame:
    """Rows as the reader delivers them: every column a string."""
    return spark.createDataFrame(rows, StructType([StructField(name, StringType()) for name in columns]))


def points(frame: DataFrame) -> list[tuple[Any, ...]]:
    """Output rows sorted, timestamps rendered in UTC (the session time zone) to stay host-independent."""
    rendered = frame.select(
        "sensor_id", F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss").alias("ts"), "value", "is_gap", "month"
    )
    return [tuple(row) for row in rendered.orderBy("sensor_id", "ts").collect()]


def expand(spark, rows: Sequence[tuple[str | None, ...]], grid: Grid = DAY) -> list[tuple[Any, ...]]:
    valid, quarantined = job.transform_validate(raw(spark, rows))
    assert quarantined.count() == 0
    return points(job.transform_to_timeseries(valid, grid))


def checked(spark, rows: list[tuple[str | None, ...]], columns: tuple[str, ...] = COLUMNS):
    """(valid rows with UTC-rendered timestamps, quarantined rows), both sorted."""
    valid, quarantined = job.transform_validate(raw(spark, rows, columns))
    rendered = valid.select(
        "sensor_id",
        F.date_format("start_time", "yyyy-MM-dd'T'HH:mm:ss.SSS").alias("start_time"),
        F.date_format("end_time", "yyyy-MM-dd'T'HH:mm:ss.SSS").alias("end_time"),
        "value",
        "readings",
    )
    return by_repr(tuple(r) for r in rendered.collect()), by_repr(tuple(r) for r in quarantined.collect())


def by_repr(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in a fixed order even when they hold None (which does not compare with str)."""
    return sorted(rows, key=repr)


# --- expansion -------------------------------------------------------------------------------------


def test_interval_over_the_whole_day_fills_every_point(spark):
    assert expand(spark, [("s1", "2024-03-01T00:00:00", "2024-03-01T23:59:59", "1.5")]) == [
        ("s1", "2024-03-01T00:00:00", 1.5, False, "2024-03"),
        ("s1", "2024-03-01T06:00:00", 1.5, False, "2024-03"),
        ("s1", "2024-03-01T12:00:00", 1.5, False, "2024-03"),
        ("s1", "2024-03-01T18:00:00", 1.5, False, "2024-03"),
    ]


def test_both_ends_are_inclusive_and_uncovered_points_are_gaps(spark):
    assert expand(spark, [("s1", "2024-03-01T06:00:00", "2024-03-01T12:00:00", "2")]) == [
        ("s1", "2024-03-01T00:00:00", None, True, "2024-03"),
        ("s1", "2024-03-01T06:00:00", 2.0, False, "2024-03"),
        ("s1", "2024-03-01T12:00:00", 2.0, False, "2024-03"),
        ("s1", "2024-03-01T18:00:00", None, True, "2024-03"),
    ]


def test_interval_between_two_points_gives_its_sensor_only_gaps(spark):
    assert expand(spark, [("s1", "2024-03-01T06:00:01", "2024-03-01T11:59:59", "2")]) == [
        ("s1", "2024-03-01T00:00:00", None, True, "2024-03"),
        ("s1", "2024-03-01T06:00:00", None, True, "2024-03"),
        ("s1", "2024-03-01T12:00:00", None, True, "2024-03"),
        ("s1", "2024-03-01T18:00:00", None, True, "2024-03"),
    ]


def test_repeated_identical_intervals_emit_each_point_once(spark):
    row = ("s1", "2024-03-01T00:00:00", "2024-03-01T06:00:00", "3.25")
    assert expand(spark, [row, row, row]) == [
        ("s1", "2024-03-01T00:00:00", 3.25, False, "2024-03"),
        ("s1", "2024-03-01T06:00:00", 3.25, False, "2024-03"),
        ("s1", "2024-03-01T12:00:00", None, True, "2024-03"),
        ("s1", "2024-03-01T18:00:00", None, True, "2024-03"),
    ]


def test_overlaps_resolve_by_latest_start_then_latest_end_then_larger_value(spark):
    rows = [
        ("s1", "2024-03-01T00:00:00", "2024-03-01T23:59:59", "1"),  # whole day, earliest start
        ("s1", "2024-03-01T05:00:00", "2024-03-01T13:00:00", "2"),  # later start: wins at 06 and 12
        ("s1", "2024-03-01T05:00:00", "2024-03-01T12:30:00", "9"),  # same start, earlier end: loses
        ("s2", "2024-03-01T00:00:00", "2024-03-01T18:00:00", "4"),  # same interval twice: larger value wins
        ("s2", "2024-03-01T00:00:00", "2024-03-01T18:00:00", "5"),
    ]
    expected = [
        ("s1", "2024-03-01T00:00:00", 1.0, False, "2024-03"),
        ("s1", "2024-03-01T06:00:00", 2.0, False, "2024-03"),
        ("s1", "2024-03-01T12:00:00", 2.0, False, "2024-03"),
        ("s1", "2024-03-01T18:00:00", 1.0, False, "2024-03"),
        ("s2", "2024-03-01T00:00:00", 5.0, False, "2024-03"),
        ("s2", "2024-03-01T06:00:00", 5.0, False, "2024-03"),
        ("s2", "2024-03-01T12:00:00", 5.0, False, "2024-03"),
        ("s2", "2024-03-01T18:00:00", 5.0, False, "2024-03"),
    ]
    assert expand(spark, rows) == expected
    assert expand(spark, rows[::-1]) == expected  # input order does not matter


def test_month_grid_clips_intervals_crossing_the_month_and_drops_sensors_outside_it(spark):
    rows = [
        ("in", "2024-02-28T12:00:00", "2024-03-02T00:00:00", "1"),  # from February: Mar 1 and Mar 2
        ("in", "2024-03-31T00:00:00", "2024-04-03T00:00:00", "2"),  # into April: Mar 31 only
        ("february", "2024-02-01T00:00:00", "2024-02-29T23:59:59", "3"),
        ("april", "2024-04-01T00:00:00", "2024-04-30T00:00:00", "4"),
    ]
    covered = {1: 1.0, 2: 1.0, 31: 2.0}
    assert expand(spark, rows, Grid.for_month("2024-03", 24 * 3600)) == [
        ("in", f"2024-03-{day:02d}T00:00:00", covered.get(day), day not in covered, "2024-03") for day in range(1, 32)
    ]


def test_output_schema_is_exact(spark):
    valid, _ = job.transform_validate(raw(spark, [("s1", "2024-03-01T00:00:00", "2024-03-01T01:00:00", "1")]))
    assert job.transform_to_timeseries(valid, DAY).dtypes == OUTPUT_DTYPES


def test_output_columns_are_the_catalog_contract(spark):
    """The catalog table (pipelines/sensor_timeseries.py) is built from the same contract."""
    valid, _ = job.transform_validate(raw(spark, [("s1", "2024-03-01T00:00:00", "2024-03-01T01:00:00", "1")]))
    dtypes = job.transform_to_timeseries(valid, DAY).dtypes
    assert dtypes == [*SENSOR_TIMESERIES_COLUMNS, *SENSOR_TIMESERIES_PARTITIONS]


def readings_points(frame: DataFrame) -> list[tuple[Any, ...]]:
    """(sensor, ts as UTC text, value, readings, is_gap) sorted."""
    rendered = frame.select(
        "sensor_id", F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss").alias("ts"), "value", "readings", "is_gap"
    )
    return [tuple(row) for row in rendered.orderBy("sensor_id", "ts").collect()]


def test_each_point_carries_the_readings_of_the_interval_its_value_comes_from(spark):
    rows = [
        ("s1", "2024-03-01T00:00:00", "2024-03-01T23:59:59", "1", "40"),  # 40 measurements over the day
        ("s1", "2024-03-01T05:00:00", "2024-03-01T13:00:00", "2", "7"),  # later start: its value and its 7
        ("s2", "2024-03-01T06:00:00", "2024-03-01T12:00:00", "5", "3"),  # same interval, same value twice:
        ("s2", "2024-03-01T06:00:00", "2024-03-01T12:00:00", "5", "9"),  # the larger readings wins
    ]
    valid, quarantined = job.transform_validate(raw(spark, rows, (*COLUMNS, "readings")))
    assert quarantined.count() == 0
    assert readings_points(job.transform_to_timeseries(valid, DAY)) == [
        ("s1", "2024-03-01T00:00:00", 1.0, 40, False),
        ("s1", "2024-03-01T06:00:00", 2.0, 7, False),
        ("s1", "2024-03-01T12:00:00", 2.0, 7, False),
        ("s1", "2024-03-01T18:00:00", 1.0, 40, False),
        ("s2", "2024-03-01T00:00:00", None, None, True),  # a gap has no value and no readings
        ("s2", "2024-03-01T06:00:00", 5.0, 9, False),
        ("s2", "2024-03-01T12:00:00", 5.0, 9, False),
        ("s2", "2024-03-01T18:00:00", None, None, True),
    ]


def test_an_upload_without_readings_counts_one_reading_per_interval(spark):
    valid, _ = job.transform_validate(raw(spark, [("s1", "2024-03-01T00:00:00", "2024-03-01T06:00:00", "2.5")]))
    assert readings_points(job.transform_to_timeseries(valid, DAY)) == [
        ("s1", "2024-03-01T00:00:00", 2.5, 1, False),
        ("s1", "2024-03-01T06:00:00", 2.5, 1, False),
        ("s1", "2024-03-01T12:00:00", None, None, True),
        ("s1", "2024-03-01T18:00:00", None, None, True),
    ]


def test_no_valid_rows_give_no_points(spark):
    valid, quarantined = job.transform_validate(raw(spark, []))
    assert quarantined.count() == 0
    assert points(job.transform_to_timeseries(valid, DAY)) == []


# --- validation ------------------------------------------------------------------------------------


def test_accepted_timestamp_and_number_forms(spark):
    valid, quarantined = checked(
        spark,
        [
            ("z", "2024-03-01T00:00:00Z", "2024-03-01T06:00:00.250Z", "1e3"),
            ("offset", "2024-03-01 01:00:00+01:00", "2024-03-01T07:30:00+0130", " -2.5 "),
            (" padded ", " 2024-03-01T06:00 ", "2024-03-01T06:00", "0"),
            ("hour-offset", "2024-03-01T01:00:00+01", "2024-03-01T06:00:00.123456789", "7"),
        ],
    )
    assert quarantined == []
    assert valid == [
        ("hour-offset", "2024-03-01T00:00:00.000", "2024-03-01T06:00:00.123", 7.0, 1),
        ("offset", "2024-03-01T00:00:00.000", "2024-03-01T06:00:00.000", -2.5, 1),
        ("padded", "2024-03-01T06:00:00.000", "2024-03-01T06:00:00.000", 0.0, 1),
        ("z", "2024-03-01T00:00:00.000", "2024-03-01T06:00:00.250", 1000.0, 1),
    ]


def test_bad_rows_are_quarantined_with_every_reason(spark):
    t0, t1 = "2024-03-01T00:00:00", "2024-03-01T01:00:00"
    valid, quarantined = checked(
        spark,
        [
            ("ok", t0, t1, "1"),
            ("a-end-before-start", t1, t0, "1"),
            ("b-two-reasons", t1, t0, "abc"),
            (None, t0, t1, "1"),
            ("   ", t0, t1, "1"),
            ("c-nulls", None, None, None),
            (None, None, None, None),
            ("d-bad-hour", "2024-03-01T25:00:00", t1, "1"),
            ("e-words", "yesterday", "today", "1"),
            ("f-year-only", "2024", t1, "1"),
            ("g-date-only", t0, "2024-03-02", "1"),
            ("g-offset-without-seconds", t0, "2024-03-01T01:00+01:00", "1"),
            ("h-nan", t0, t1, "NaN"),
            ("i-infinite", t0, t1, "-Infinity"),
        ],
    )
    assert valid == [("ok", "2024-03-01T00:00:00.000", "2024-03-01T01:00:00.000", 1.0, 1)]
    all_missing = "sensor_id is missing; start_time is missing; end_time is missing; value is missing"
    assert quarantined == by_repr(
        [
            ("a-end-before-start", t1, t0, "1", None, "end_time before start_time"),
            ("b-two-reasons", t1, t0, "abc", None, "end_time before start_time; value is not a number"),
            (None, t0, t1, "1", None, "sensor_id is missing"),
            ("   ", t0, t1, "1", None, "sensor_id is missing"),
            ("c-nulls", None, None, None, None, "start_time is missing; end_time is missing; value is missing"),
            (None, None, None, None, None, all_missing),
            ("d-bad-hour", "2024-03-01T25:00:00", t1, "1", None, "start_time is not a timestamp"),
            ("e-words", "yesterday", "today", "1", None, "start_time is not a timestamp; end_time is not a timestamp"),
            ("f-year-only", "2024", t1, "1", None, "start_time is not a timestamp"),
            ("g-date-only", t0, "2024-03-02", "1", None, "end_time is not a timestamp"),
            ("g-offset-without-seconds", t0, "2024-03-01T01:00+01:00", "1", None, "end_time is not a timestamp"),
            ("h-nan", t0, t1, "NaN", None, "value is not a finite number"),
            ("i-infinite", t0, t1, "-Infinity", None, "value is not a finite number"),
        ]
    )


def test_readings_column_absent_means_one_present_must_be_a_positive_integer(spark):
    t0, t1 = "2024-03-01T00:00:00", "2024-03-01T01:00:00"
    columns = (*COLUMNS, "readings")
    valid, quarantined = checked(
        spark,
        [
            ("a", t0, t1, "1", "3"),
            ("b", t0, t1, "1", " 2 "),
            ("c", t0, t1, "1", None),
            ("d", t0, t1, "1", "0"),
            ("e", t0, t1, "1", "1.5"),
            ("f", t0, t1, "1", "-2"),
            ("g", t0, t1, "1", "many"),
            ("h", t1, t0, "x", "0"),
        ],
        columns,
    )
    start, end = "2024-03-01T00:00:00.000", "2024-03-01T01:00:00.000"
    assert valid == [("a", start, end, 1.0, 3), ("b", start, end, 1.0, 2)]
    assert quarantined == [
        ("c", t0, t1, "1", None, None, "readings is missing"),
        ("d", t0, t1, "1", "0", None, "readings is not a positive integer"),
        ("e", t0, t1, "1", "1.5", None, "readings is not a positive integer"),
        ("f", t0, t1, "1", "-2", None, "readings is not a positive integer"),
        ("g", t0, t1, "1", "many", None, "readings is not a positive integer"),
        (
            "h",
            t1,
            t0,
            "x",
            "0",
            None,
            "end_time before start_time; value is not a number; readings is not a positive integer",
        ),
    ]
    without_readings, _ = checked(spark, [("a", t0, t1, "1")])
    assert without_readings == [("a", start, end, 1.0, 1)]


def test_quarantine_columns_are_the_raw_ones_plus_source_file_and_reason(spark):
    with_readings = raw(spark, [], (*COLUMNS, "readings", "extra"))
    assert job.transform_validate(with_readings)[1].columns == [*COLUMNS, "readings", "source_file", "reason"]
    assert job.transform_validate(raw(spark, []))[1].columns == [*COLUMNS, "source_file", "reason"]


def test_missing_columns_raise_bad_input_naming_them(spark):
    with pytest.raises(BadInputError) as raised:
        job.transform_validate(raw(spark, [], ("sensor_id", "start_time", "reading")))
    assert str(raised.value) == (
        "input is missing required column(s) end_time, value; columns found: sensor_id, start_time, reading"
    )


def test_read_takes_every_csv_below_the_path_and_flags_rows_with_the_wrong_field_count(spark, tmp_path):
    header = "sensor_id,start_time,end_time,value\n"
    (tmp_path / "2024" / "03").mkdir(parents=True)
    (tmp_path / "a.csv").write_text(header + "s1,2024-03-01T00:00:00,2024-03-01T01:00:00,1\n")
    (tmp_path / "2024" / "03" / "b.csv").write_text(
        header + "s2,2024-03-01T00:00:00,2024-03-01T01:00:00,2,surplus\ns3,2024-03-01T00:00:00\n"
    )
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "notes.txt").write_text("not,an,interval,file\n")
    valid, quarantined = job.transform_validate(job.read_intervals(spark, str(tmp_path)))
    assert [tuple(row) for row in valid.select("sensor_id", "value").collect()] == [("s1", 1.0)]
    b_csv = (tmp_path / "2024" / "03" / "b.csv").as_uri()
    assert by_repr(tuple(row) for row in quarantined.collect()) == [
        ("s2", "2024-03-01T00:00:00", "2024-03-01T01:00:00", "2", b_csv, "wrong number of fields"),
        (
            "s3",
            "2024-03-01T00:00:00",
            None,
            None,
            b_csv,
            "wrong number of fields; end_time is missing; value is missing",
        ),
    ]


def test_read_of_a_path_without_csv_files_is_empty(spark, tmp_path):
    raw_rows = job.read_intervals(spark, str(tmp_path / "nothing-here"))
    assert (raw_rows.columns, raw_rows.count()) == ([*COLUMNS, "source_file"], 0)


# --- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("30s", 30), ("1min", 60), ("15min", 900), ("1440min", 86400), ("1h", 3600), ("24h", 86400)],
)
def test_frequency_accepts_divisors_of_a_day(text, seconds):
    assert job.parse_frequency(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7min", "--frequency '7min' does not divide 24h evenly (86400 s)"),
        ("25h", "--frequency '25h' does not divide 24h evenly (86400 s)"),
        ("0s", "--frequency '0s' must be at least 1s"),
        ("abc", "--frequency 'abc' is not <n>s, <n>min or <n>h (e.g. 30s, 1min, 1h)"),
        ("5m", "--frequency '5m' is not <n>s, <n>min or <n>h (e.g. 30s, 1min, 1h)"),
        ("-1h", "--frequency '-1h' is not <n>s, <n>min or <n>h (e.g. 30s, 1min, 1h)"),
    ],
)
def test_frequency_errors_are_bad_input(text, message):
    with pytest.raises(BadInputError) as raised:
        job.parse_frequency(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("text", "today", "month"),
    [
        ("previous", date(2024, 4, 15), "2024-03"),
        ("previous", date(2024, 4, 1), "2024-03"),
        ("previous", date(2024, 3, 31), "2024-02"),
        ("previous", date(2024, 1, 1), "2023-12"),
        ("2024-03", date(2030, 1, 1), "2024-03"),
    ],
)
def test_month_resolution(text, today, month):
    assert job.resolve_month(text, today) == month


@pytest.mark.parametrize("text", ["2024-13", "2024-3", "March", ""])
def test_bad_month_is_bad_input(text):
    with pytest.raises(BadInputError) as raised:
        job.resolve_month(text, date(2024, 4, 1))
    assert str(raised.value) == f"--month {text!r} is not YYYY-MM or 'previous'"


def test_month_grids_cover_whole_calendar_months():
    february = Grid.for_month("2024-02", 3600)
    assert (february.start, february.end, february.points) == (
        datetime(2024, 2, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
        29 * 24,
    )
    december = Grid.for_month("2023-12", 60)
    assert (december.end, december.points, december.month) == (datetime(2024, 1, 1, tzinfo=UTC), 31 * 1440, "2023-12")
    with pytest.raises(ValueError, match="is not a whole number of 7s steps"):
        Grid(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 1, 0, 1, tzinfo=UTC), 7)


# --- main, end to end on local paths ----------------------------------------------------------------


def job_argv(input_path: Path, root: Path, *extra: str) -> list[str]:
    return [
        "--input_path",
        str(input_path),
        "--output_path",
        str(root / "series"),
        "--quarantine_path",
        str(root / "quarantine"),
        *extra,
    ]


def run_main(input_path: Path, root: Path, *extra: str, today: date = date(2024, 4, 2)) -> dict[str, Any]:
    return job.main(job_argv(input_path, root, *extra), today=lambda: today)


def exit_code(input_path: Path, root: Path, *extra: str) -> int:
    """The process exit code, as `python sensor_timeseries.py ...` ends (glue_common.run)."""
    main = functools.partial(job.main, today=lambda: date(2024, 4, 2))
    return glue_common.run(main, job_argv(input_path, root, *extra))


def parquet_files(directory: Path) -> dict[str, float]:
    """Data files of one partition -> modification time (replaced files get new names)."""
    return {path.name: path.stat().st_mtime for path in sorted(directory.glob("*.parquet"))}


def value_runs(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Consecutive points with equal (value, is_gap) per sensor -> (sensor, value, is_gap, first, last, count)."""
    runs = []
    for (sensor, value, is_gap), run in groupby(rows, key=lambda row: (row[0], row[2], row[3])):
        timestamps = [row[1] for row in run]
        runs.append((sensor, value, is_gap, timestamps[0], timestamps[-1], len(timestamps)))
    return runs


SAMPLE_MARCH_RUNS = [
    ("temp-hall", 19.5, False, "2024-03-01T00:00:00", "2024-03-03T18:00:00", 12),  # interval starting in February
    ("temp-hall", 20.0, False, "2024-03-04T00:00:00", "2024-03-08T06:00:00", 18),  # repeated three times
    ("temp-hall", 20.5, False, "2024-03-08T12:00:00", "2024-03-15T18:00:00", 30),
    ("temp-hall", 21.0, False, "2024-03-16T00:00:00", "2024-03-22T18:00:00", 28),
    ("temp-hall", 21.5, False, "2024-03-23T00:00:00", "2024-03-31T18:00:00", 36),
    ("temp-lab", 22.0, False, "2024-03-01T00:00:00", "2024-03-10T06:00:00", 38),
    ("temp-lab", 22.4, False, "2024-03-10T12:00:00", "2024-03-10T12:00:00", 1),
    ("temp-lab", None, True, "2024-03-10T18:00:00", "2024-03-10T18:00:00", 1),  # the 15:00-18:59 gap
    ("temp-lab", 22.8, False, "2024-03-11T00:00:00", "2024-03-20T06:00:00", 38),
    ("temp-lab", 23.1, False, "2024-03-20T12:00:00", "2024-03-25T18:00:00", 22),  # overlap: later start wins
    ("temp-lab", 23.5, False, "2024-03-26T00:00:00", "2024-03-31T18:00:00", 24),  # runs on into April
    ("temp-roof", 8.5, False, "2024-03-01T00:00:00", "2024-03-05T18:00:00", 20),
    ("temp-roof", 7.25, False, "2024-03-06T00:00:00", "2024-03-06T00:00:00", 1),
    ("temp-roof", 9.0, False, "2024-03-06T06:00:00", "2024-03-12T18:00:00", 27),
    ("temp-roof", 10.75, False, "2024-03-13T00:00:00", "2024-03-31T18:00:00", 76),  # start given as +01:00
]
SAMPLE_MARCH_SUMMARY = {
    "job": "sensor_timeseries",
    "month": "2024-03",
    "frequency_seconds": 21600,
    "rows_in": 28,
    "rows_valid": 24,
    "rows_loaded": 24,
    "rows_quarantined": 4,
    "intervals_in_month": 21,
    "sensors": 3,
    "points": 3 * 31 * 4,
    "gap_points": 1,
    # Without --state_path every file is read: the one bundled CSV.
    "files_listed": 1,
    "files_read": 1,
    "bytes_read": SAMPLE.stat().st_size,
    "files_indexed": 0,
}
SAMPLE_QUARANTINE = [
    ("", "2024-03-07T00:00:00Z", "2024-03-07T01:00:00Z", "20.1", "2", "sensor_id is missing"),
    ("temp-hall", "2024-03-05T00:00:00Z", "2024-03-05T01:00:00Z", "warm", "3", "value is not a number"),
    ("temp-lab", "2024-03-15T10:00:00Z", "2024-03-15T09:00:00Z", "22.9", "1", "end_time before start_time"),
    (
        "temp-roof",
        "2024-03-32T00:00:00Z",
        "2024-03-32T06:00:00Z",
        "9.5",
        "4",
        "start_time is not a timestamp; end_time is not a timestamp",
    ),
]


def run_main_printing(input_path: Path, root: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """run_main's summary and what the run printed on stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        summary = run_main(input_path, root, *extra)
    return summary, out.getvalue()


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory) -> dict[str, Any]:
    """February, then March, then March again, on the bundled sample with a 6 h step."""
    root = tmp_path_factory.mktemp("sample_runs")
    february, february_out = run_main_printing(SAMPLE_DIR, root, "--month", "2024-02", "--frequency", "6h")
    february_files = parquet_files(root / "series" / "month=2024-02")
    march, march_out = run_main_printing(SAMPLE_DIR, root, "--frequency", "6h")  # --month: previous, 2024-03
    march_files = parquet_files(root / "series" / "month=2024-03")
    quarantine_files = sorted((root / "quarantine" / "month=2024-03").glob("*.csv"))
    rerun = run_main(SAMPLE_DIR, root, "--month", "2024-03", "--frequency", "6h")
    return {
        "stdout": {"february": february_out, "march": march_out},
        "root": root,
        "february": february,
        "february_files": february_files,
        "march": march,
        "march_files": march_files,
        "quarantine_files": quarantine_files,
        "rerun": rerun,
    }


def test_main_summaries_add_up(sample_runs):
    assert sample_runs["march"] == SAMPLE_MARCH_SUMMARY
    assert sample_runs["rerun"] == SAMPLE_MARCH_SUMMARY
    assert sample_runs["february"] == {
        **SAMPLE_MARCH_SUMMARY,
        "month": "2024-02",
        "intervals_in_month": 4,
        "sensors": 2,
        "points": 2 * 29 * 4,
        "gap_points": 76 + 96,  # temp-hall before Feb 20, temp-lab before Feb 25
    }
    for summary in (sample_runs["february"], sample_runs["march"]):
        assert summary["rows_in"] == summary["rows_valid"] + summary["rows_quarantined"]
        assert summary["rows_loaded"] == summary["rows_valid"]


@pytest.mark.parametrize("month", ["february", "march"])
def test_main_prints_its_summary_as_one_metrics_line(sample_runs, month: str) -> None:
    """One CloudWatch Embedded Metric Format line per run (tests/jobs/emf.py), its metrics the summary's figures."""
    summary = sample_runs[month]
    document = one_run_summary(sample_runs["stdout"][month], pipeline="sensor-timeseries", job="sensor_timeseries")
    assert figures(document) == {
        "Stack": "local",
        "Pipeline": "sensor-timeseries",
        "Job": "sensor_timeseries",
        "RowsIn": summary["rows_in"],
        "RowsLoaded": summary["rows_loaded"],
        "RowsQuarantined": summary["rows_quarantined"],
        "Files": summary["files_read"],
        "Devices": summary["sensors"],
        **{k: v for k, v in summary.items() if k not in ("job", "rows_in", "rows_loaded", "rows_quarantined")},
    }
    assert (document["RowsIn"], document["Files"], document["Devices"]) == (
        (28, 1, 3) if month == "march" else (28, 1, 2)
    )


def test_main_writes_one_partition_per_month_with_the_expected_series(spark, sample_runs):
    series = sample_runs["root"] / "series"
    assert sorted(path.name for path in series.iterdir()) == ["month=2024-02", "month=2024-03"]
    march = spark.read.schema(OUTPUT_SCHEMA).parquet(str(series)).where("month = '2024-03'")
    assert value_runs(points(march)) == SAMPLE_MARCH_RUNS


def test_main_parquet_files_hold_utc_microsecond_timestamps(sample_runs):
    files = sorted((sample_runs["root"] / "series" / "month=2024-03").glob("*.parquet"))
    assert [path.suffixes for path in files] == [[".c000", ".snappy", ".parquet"]]
    schema = pq.read_schema(files[0])
    assert [(field.name, str(field.type)) for field in schema] == [
        ("sensor_id", "string"),
        ("ts", "timestamp[us, tz=UTC]"),
        ("value", "double"),
        ("readings", "int64"),
        ("is_gap", "bool"),
    ]
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(1).compression == "SNAPPY"


def test_main_rerun_replaces_the_month_and_leaves_other_months_alone(spark, sample_runs):
    root = sample_runs["root"]
    after_rerun = parquet_files(root / "series" / "month=2024-03")
    assert len(after_rerun) == len(sample_runs["march_files"]) == 1
    assert set(after_rerun).isdisjoint(sample_runs["march_files"])  # replaced, not added to
    assert parquet_files(root / "series" / "month=2024-02") == sample_runs["february_files"]
    counts = spark.read.schema(OUTPUT_SCHEMA).parquet(str(root / "series")).groupBy("month").count().collect()
    assert sorted(tuple(row) for row in counts) == [("2024-02", 2 * 29 * 4), ("2024-03", 3 * 31 * 4)]


def test_main_quarantine_is_one_csv_per_month_with_reasons_and_source(sample_runs):
    directory = sample_runs["root"] / "quarantine" / "month=2024-03"
    files = sorted(directory.glob("*.csv"))
    assert len(files) == 1
    assert files != sample_runs["quarantine_files"]  # the rerun replaced the first run's file
    with files[0].open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["sensor_id", "start_time", "end_time", "value", "readings", "source_file", "reason"]
    assert {row[5] for row in rows[1:]} == {SAMPLE.as_uri()}
    assert sorted(tuple(row[:5] + row[6:]) for row in rows[1:]) == SAMPLE_QUARANTINE


def test_main_missing_columns_exit_3_with_the_message(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "intervals.csv").write_text("sensor_id,start,end_time\ns1,2024-03-01T00:00:00,x\n")
    assert exit_code(tmp_path / "in", tmp_path, "--month", "2024-03") == 3
    assert caplog.messages == [
        "bad input: input is missing required column(s) start_time, value; columns found: sensor_id, start, end_time"
    ]
    assert not (tmp_path / "series").exists()


def test_main_files_with_different_headers_exit_3(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("sensor_id,start_time,end_time,value\ns1,2024-03-01T00:00:00,x,1\n")
    (tmp_path / "in" / "b.csv").write_text("sensor_id,end_time,start_time,value\ns1,2024-03-01T00:00:00,x,1\n")
    assert exit_code(tmp_path / "in", tmp_path, "--month", "2024-03") == 3
    assert caplog.messages == [
        "bad input: CSV header does not conform to the schema.; "
        "Header: sensor_id, end_time, start_time, value; Schema: sensor_id, start_time, end_time, value; "
        f"Expected: start_time but found: end_time; CSV file: {(tmp_path / 'in' / 'b.csv').as_uri()}"
    ]


def test_main_bad_frequency_exits_3(tmp_path, caplog):
    assert exit_code(tmp_path, tmp_path, "--frequency", "7min") == 3
    assert caplog.messages == ["bad input: --frequency '7min' does not divide 24h evenly (86400 s)"]


def test_main_on_empty_input_writes_nothing_and_keeps_the_month(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    zeros = {
        "job": "sensor_timeseries",
        "month": "2024-03",
        "frequency_seconds": 60,
        "rows_in": 0,
        "rows_valid": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "intervals_in_month": 0,
        "sensors": 0,
        "points": 0,
        "gap_points": 0,
        "files_listed": 0,
        "files_read": 0,
        "bytes_read": 0,
        "files_indexed": 0,
    }
    allow = ("--allow_empty_month", "true")
    # No files at all; --month defaults to `previous` of the injected date.
    assert run_main(inputs, tmp_path, *allow, today=date(2024, 4, 30)) == zeros
    assert not (tmp_path / "series").exists()
    assert not (tmp_path / "quarantine").exists()

    # An earlier run's partition survives a later upload that holds only a header (or an empty file).
    shutil.copy(SAMPLE, inputs / "first.csv")
    run_main(inputs, tmp_path, "--month", "2024-03", "--frequency", "24h")
    before = parquet_files(tmp_path / "series" / "month=2024-03")
    quarantine_before = sorted((tmp_path / "quarantine" / "month=2024-03").iterdir())
    (inputs / "first.csv").unlink()
    (inputs / "header_only.csv").write_text("sensor_id,start_time,end_time,value,readings\n")
    (inputs / "empty.csv").write_text("")
    assert run_main(inputs, tmp_path, "--month", "2024-03", "--frequency", "24h", *allow) == {
        **zeros,
        "frequency_seconds": 86400,
        "files_listed": 1,  # header_only.csv; empty files are not even read
        "files_read": 1,
        "bytes_read": len("sensor_id,start_time,end_time,value,readings\n"),
    }
    assert parquet_files(tmp_path / "series" / "month=2024-03") == before
    assert sorted((tmp_path / "quarantine" / "month=2024-03").iterdir()) == quarantine_before


def test_main_rerun_with_clean_input_leaves_a_header_only_quarantine(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE, inputs / "sample.csv")
    assert run_main(inputs, tmp_path, "--month", "2024-03", "--frequency", "24h")["rows_quarantined"] == 4
    good_rows = [line for line in SAMPLE.read_text().splitlines() if line.startswith("temp-hall,2024-03-04")]
    (inputs / "sample.csv").write_text("sensor_id,start_time,end_time,value,readings\n" + "\n".join(good_rows) + "\n")
    summary = run_main(inputs, tmp_path, "--month", "2024-03", "--frequency", "24h")
    # Three copies of one interval covering Mar 4-8: five daily points, 26 gaps.
    assert (summary["rows_in"], summary["rows_quarantined"], summary["sensors"], summary["gap_points"]) == (3, 0, 1, 26)
    files = sorted((tmp_path / "quarantine" / "month=2024-03").glob("*.csv"))
    assert [path.read_text() for path in files] == ["sensor_id,start_time,end_time,value,readings,source_file,reason\n"]


# --- the empty-month rule: a month with no (or far fewer) intervals fails unless allowed ---------------


def write_intervals(folder: Path, name: str, month: str, count: int) -> None:
    """`count` one-hour intervals of sensor s1 in `month`, one a day from the 1st."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"s1,{month}-{day:02d}T00:00:00Z,{month}-{day:02d}T01:00:00Z,1.0\n" for day in range(1, count + 1))
    (folder / name).write_text("sensor_id,start_time,end_time,value\n" + rows)


def month_record(state: Path, month: str) -> dict[str, Any] | None:
    path = state / "months" / f"month={month}.json"
    return json.loads(path.read_text()) if path.exists() else None


EMPTY_MARCH = (
    "bad input: sensor month 2024-03 has no intervals (previous month: {before}); nothing was written. "
    "If the month is really empty, set sensorAllowEmptyMonth to true (job argument --allow_empty_month true) "
    "and run the month again; if its data is late, upload it and run the month again."
)
DROP_IN_MARCH = (
    "bad input: sensor month 2024-03 has 4 intervals, fewer than {ratio} x the 10 intervals of 2024-02; "
    "nothing was written. If the drop is expected, lower sensorMinIntervalsRatio (0 turns this check off; "
    "job argument --min_intervals_ratio) or set sensorAllowEmptyMonth to true, and run the month again; "
    "if its data is late, upload it and run the month again."
)


def test_an_empty_month_fails_with_the_counts_and_the_setting_to_change(tmp_path, caplog):
    inputs, state = tmp_path / "in", tmp_path / "state"
    write_intervals(inputs, "january.csv", "2024-01", 3)  # rows, but none in March
    assert exit_code(inputs, tmp_path, "--month", "2024-03") == 3
    assert caplog.messages == [EMPTY_MARCH.format(before="no run recorded for 2024-02")]
    assert not (tmp_path / "series").exists() and not (tmp_path / "quarantine").exists()

    # With the previous month's count recorded, the message names it; still nothing written or recorded.
    write_intervals(inputs, "february.csv", "2024-02", 4)
    run_main(inputs, tmp_path, "--month", "2024-02", "--state_path", str(state))
    caplog.clear()
    assert exit_code(inputs, tmp_path, "--month", "2024-03", "--state_path", str(state)) == 3
    assert caplog.messages == [EMPTY_MARCH.format(before="4 in 2024-02")]
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == ["month=2024-02"]
    assert month_record(state, "2024-03") is None


def test_an_allowed_empty_month_succeeds_writing_nothing(tmp_path):
    inputs, state = tmp_path / "in", tmp_path / "state"
    write_intervals(inputs, "february.csv", "2024-02", 4)
    run_main(inputs, tmp_path, "--month", "2024-02", "--state_path", str(state))
    summary = run_main(
        inputs, tmp_path, "--month", "2024-03", "--state_path", str(state), "--allow_empty_month", "TRUE"
    )
    assert (summary["intervals_in_month"], summary["sensors"], summary["points"]) == (0, 0, 0)
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == ["month=2024-02"]
    # Recorded as 0, so April is compared with an empty month: any count passes the drop check.
    assert month_record(state, "2024-03") == {"month": "2024-03", "intervals_in_month": 0}


def test_a_drop_below_the_ratio_fails_unless_the_ratio_is_0_or_the_month_allowed(tmp_path, caplog):
    inputs, state = tmp_path / "in", tmp_path / "state"
    at = ("--state_path", str(state))
    write_intervals(inputs, "february.csv", "2024-02", 10)
    write_intervals(inputs, "march.csv", "2024-03", 4)
    assert run_main(inputs, tmp_path, "--month", "2024-02", *at)["intervals_in_month"] == 10
    assert month_record(state, "2024-02") == {"month": "2024-02", "intervals_in_month": 10}

    assert exit_code(inputs, tmp_path, "--month", "2024-03", *at) == 3
    assert exit_code(inputs, tmp_path, "--month", "2024-03", *at, "--min_intervals_ratio", "0.45") == 3
    assert caplog.messages == [DROP_IN_MARCH.format(ratio="0.5"), DROP_IN_MARCH.format(ratio="0.45")]
    assert not (tmp_path / "series" / "month=2024-03").exists()
    assert month_record(state, "2024-03") is None

    # 4 is not fewer than 0.4 x 10; ratio 0 turns the check off; an allowed month skips it.
    assert run_main(inputs, tmp_path, "--month", "2024-03", *at, "--min_intervals_ratio", "0.4")["sensors"] == 1
    assert run_main(inputs, tmp_path, "--month", "2024-03", *at, "--min_intervals_ratio", "0")["sensors"] == 1
    assert run_main(inputs, tmp_path, "--month", "2024-03", *at, "--allow_empty_month", "true")["sensors"] == 1
    assert month_record(state, "2024-03") == {"month": "2024-03", "intervals_in_month": 4}
    # Reruns replace their own month's record only: March is still held against February's 10.
    run_main(inputs, tmp_path, "--month", "2024-02", *at)
    assert month_record(state, "2024-02") == {"month": "2024-02", "intervals_in_month": 10}
    caplog.clear()
    assert exit_code(inputs, tmp_path, "--month", "2024-03", *at) == 3
    assert caplog.messages == [DROP_IN_MARCH.format(ratio="0.5")]


def test_the_first_month_ever_has_nothing_to_drop_from(tmp_path):
    inputs, state = tmp_path / "in", tmp_path / "state"
    write_intervals(inputs, "march.csv", "2024-03", 1)
    summary = run_main(inputs, tmp_path, "--month", "2024-03", "--state_path", str(state), "--min_intervals_ratio", "1")
    assert (summary["intervals_in_month"], summary["points"]) == (1, 31 * 24 * 60)
    assert month_record(state, "2024-03") == {"month": "2024-03", "intervals_in_month": 1}


NOT_A_RATIO = "is not a number >= 0 (0 turns the check off)"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--allow_empty_month", "yes"), "--allow_empty_month 'yes' is not true or false"),
        *(
            (("--min_intervals_ratio", text), f"--min_intervals_ratio {text!r} {NOT_A_RATIO}")
            for text in ("-0.1", "half", "inf")
        ),
    ],
)
def test_bad_empty_month_settings_are_bad_input_before_spark(extra, message, monkeypatch):
    monkeypatch.setattr(glue_common, "spark_session", lambda name: pytest.fail("Spark started"))
    with pytest.raises(BadInputError, match=re.escape(message)):
        run_main(Path("in"), Path("out"), *extra)


# --- the month index: a month's run reads only that month's files --------------------------------------

HISTORY = {
    # name -> rows; "legacy" was uploaded before the index existed (no entry), "broken" has only bad rows.
    "jan.csv": [("s1", "2024-01-05T00:00:00Z", "2024-01-20T00:00:00Z", "1.0", "5")],
    "feb.csv": [("s1", "2024-02-10T00:00:00Z", "2024-03-02T06:00:00Z", "2.0", "6")],  # runs into March
    "mar.csv": [("s1", "2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z", "3.0", "7")],
    "legacy.csv": [
        ("s2", "2024-01-31T00:00:00Z", "2024-01-31T12:00:00Z", "4.0", "8"),
        ("s2", "2024-03-20T00:00:00+01:00", "2024-03-20T18:00:00Z", "5.0", "9"),
    ],
    "broken.csv": [("s3", "not a time", "2024-03-01T00:00:00Z", "6.0", "1")],
}
INDEXED_AT_UPLOAD = ("jan.csv", "feb.csv", "mar.csv")


def write_history(folder: Path) -> None:
    """The CSVs, and for INDEXED_AT_UPLOAD the entries the upload CLI writes (its own function, local files)."""
    from ingestion.sensor_upload import index_entries

    folder.mkdir(parents=True)
    for name, rows in HISTORY.items():
        data = ("sensor_id,start_time,end_time,value,readings\n" + "".join(",".join(r) + "\n" for r in rows)).encode()
        (folder / name).write_bytes(data)
        if name in INDEXED_AT_UPLOAD:
            for key, body in index_entries("", name, data).items():
                (folder / key).parent.mkdir(parents=True, exist_ok=True)
                (folder / key).write_bytes(body)


def all_points(spark, root: Path, month: str) -> list[tuple[Any, ...]]:
    frame = spark.read.schema(OUTPUT_SCHEMA).parquet(str(root / "series")).where(f"month = '{month}'")
    return readings_points(frame)


def test_a_month_reads_only_the_files_indexed_for_it_and_indexes_the_files_it_finds_without_entry(spark, tmp_path):
    inputs, indexed, full = tmp_path / "in", tmp_path / "indexed", tmp_path / "full"
    write_history(inputs)
    state = str(tmp_path / "state")
    size = {name: (inputs / name).stat().st_size for name in HISTORY}

    march = run_main(inputs, indexed, "--month", "2024-03", "--frequency", "6h", "--state_path", state)

    # feb and mar from the upload index; legacy and broken because no index knows them yet; never jan.
    assert (march["files_listed"], march["files_read"], march["files_indexed"]) == (5, 4, 2)
    assert march["bytes_read"] == sum(size[n] for n in ("feb.csv", "mar.csv", "legacy.csv", "broken.csv"))
    assert (march["rows_in"], march["rows_valid"], march["rows_quarantined"]) == (5, 4, 1)
    entry = json.loads((tmp_path / "state" / "index" / "files" / "legacy.csv.json").read_text())
    assert entry == {
        "file": "legacy.csv",
        "first_start": "2024-01-31T00:00:00.000000Z",
        "last_end": "2024-03-20T18:00:00.000000Z",
        "months": ["2024-01", "2024-02", "2024-03"],
        "bytes": size["legacy.csv"],
    }
    assert (
        sorted(p.name for p in (tmp_path / "state" / "index").glob("month=*/legacy.csv.json"))
        == ["legacy.csv.json"] * 3
    )
    # A file without a valid interval is indexed under the month that read it (whose quarantine holds its rows).
    broken = json.loads((tmp_path / "state" / "index" / "files" / "broken.csv.json").read_text())
    assert (broken["months"], broken["first_start"], broken["last_end"]) == (["2024-03"], None, None)

    # The same month again: everything is indexed now, the same files are read, the output is the same.
    before = all_points(spark, indexed, "2024-03")
    again = run_main(inputs, indexed, "--month", "2024-03", "--frequency", "6h", "--state_path", state)
    assert (again["files_read"], again["files_indexed"], again["bytes_read"]) == (4, 0, march["bytes_read"])
    assert all_points(spark, indexed, "2024-03") == before

    # What a full scan (no --state_path) writes for March: the very same points, readings included.
    full_march = run_main(inputs, full, "--month", "2024-03", "--frequency", "6h")
    assert (full_march["files_read"], full_march["files_listed"]) == (5, 5)
    assert all_points(spark, full, "2024-03") == before
    points_of = {(p[0], p[1]): p[2:] for p in before}
    assert points_of[("s1", "2024-03-02T06:00:00")] == (2.0, 6, False)  # February's upload, read for March
    assert points_of[("s1", "2024-03-10T06:00:00")] == (3.0, 7, False)
    assert points_of[("s2", "2024-03-19T18:00:00")] == (None, None, True)
    assert points_of[("s2", "2024-03-20T00:00:00")] == (5.0, 9, False)  # 23:00 UTC the day before starts it

    # A backfill of January: the upload index's jan and the job's entry for legacy, nothing else.
    january = run_main(inputs, indexed, "--month", "2024-01", "--frequency", "6h", "--state_path", state)
    assert (january["files_read"], january["bytes_read"]) == (2, size["jan.csv"] + size["legacy.csv"])
    full_january = run_main(inputs, full, "--month", "2024-01", "--frequency", "6h")
    assert all_points(spark, indexed, "2024-01") == all_points(spark, full, "2024-01")
    assert (
        (january["sensors"], january["points"]) == (full_january["sensors"], full_january["points"]) == (2, 2 * 31 * 4)
    )


def test_an_indexed_file_deleted_since_is_skipped(spark, tmp_path):
    inputs = tmp_path / "in"
    write_history(inputs)
    (inputs / "mar.csv").unlink()  # its index entries stay behind
    summary = run_main(
        inputs, tmp_path / "out", "--month", "2024-03", "--frequency", "6h", "--state_path", str(tmp_path / "s")
    )
    assert (summary["files_listed"], summary["files_read"]) == (4, 3)
