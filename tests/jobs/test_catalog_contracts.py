"""The sensor time-series job's real Parquet against the catalog table the stack defines for it
(pipelines/sensor_timeseries.py: job_runtime.contracts.SENSOR_TIMESERIES_COLUMNS, partition projection
on month=YYYY-MM). GH Archive's is in test_gharchive_queries.py, COVID-19's in test_covid_clean.py
(Arrow types) and tests/infra/test_catalog.py (their Hive names).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sensor_timeseries as job

from components.warehouse import CatalogTableArgs, projection_parameters
from job_runtime.contracts import SENSOR_TIMESERIES_COLUMNS, SENSOR_TIMESERIES_PARTITIONS
from pipelines.sensor_timeseries import timeseries_table

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data" / "sensor"
MONTHS = ("2024-02", "2024-03")


def table_ddl(table: CatalogTableArgs) -> str:
    """The catalog table's columns then its partition keys, as a Spark schema (Hive types are Spark DDL)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in (*table.columns, *table.partition_keys))


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    """The job's output for February and March 2024 of the bundled sample, at a 6 h step."""
    root = tmp_path_factory.mktemp("sensor-catalog")
    for month in MONTHS:
        argv = ["--input_path", str(SAMPLE_DIR), "--output_path", str(root / "series"),
                "--quarantine_path", str(root / "quarantine"), "--month", month, "--frequency", "6h"]  # fmt: skip
        summary = job.main(argv, today=lambda: date(2024, 4, 2))
        assert summary["month"] == month
    return root / "series"


def test_the_jobs_parquet_is_the_catalog_tables_contract(spark, series: Path) -> None:
    """Every file's columns, in order, with the contract's types, and exactly the folders the month
    projection addresses; `readings` is among them (kept from the input, not dropped)."""
    definition = timeseries_table("db", f"{series.as_uri()}/")
    assert (definition.columns, definition.partition_keys) == (SENSOR_TIMESERIES_COLUMNS, SENSOR_TIMESERIES_PARTITIONS)
    assert ("readings", "bigint") in definition.columns
    assert sorted(p.name for p in series.iterdir() if p.is_dir()) == [f"month={m}" for m in MONTHS]
    for month in MONTHS:
        schema = spark.read.parquet(str(series / f"month={month}")).schema  # a leaf folder: the files' own columns
        assert [(f.name, f.dataType.simpleString()) for f in schema.fields] == list(SENSOR_TIMESERIES_COLUMNS)


def test_the_series_reads_through_the_table_definition_as_athena_would(spark, series: Path) -> None:
    """Read with the table's schema over the folders its location template gives for each month: every
    grid point of every sensor of the month, readings null exactly at the gaps."""
    definition = timeseries_table("db", f"{series.as_uri()}/")
    template = projection_parameters(str(definition.location), definition.partition_keys, definition.projection)[
        "storage.location.template"
    ]
    folders = [template.replace("${month}", month) for month in MONTHS]
    frame = spark.read.schema(table_ddl(definition)).option("basePath", str(definition.location)).parquet(*folders)
    frame.createOrReplaceTempView(definition.name)
    rows = spark.sql(
        f"""SELECT month, count(*) AS points, count(DISTINCT sensor_id) AS sensors,
                   count_if(is_gap) AS gaps, count_if(readings IS NULL) AS no_readings,
                   count_if(is_gap AND (value IS NOT NULL OR readings IS NOT NULL)) AS bad_gaps
            FROM {definition.name} GROUP BY month ORDER BY month"""
    ).collect()
    # February: 2 sensors x 29 days x 4 points, 172 of them gaps; March: 3 sensors x 31 x 4, 1 gap
    # (the sample's summaries in test_sensor_timeseries.py).
    assert [tuple(r) for r in rows] == [("2024-02", 232, 2, 172, 172, 0), ("2024-03", 372, 3, 1, 1, 0)]
