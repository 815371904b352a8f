"""The smoke run's expected values are what the jobs make of the bundled samples: recomputed here with the
very job code (render-summary in-process; the sales and sensor Glue scripts on local Spark)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from smoke import samples


@pytest.mark.parametrize("name", samples.RENDER_LOGS_FILES)
def test_render_log_expectations_are_what_render_summary_computes(name: str, tmp_path: Path) -> None:
    from render_summary import cli

    result, summary = cli.run(str(samples.sample("render_logs", name)), str(tmp_path), None, "public", "t")
    assert result.rows_quarantined == samples.RENDER_LOGS_QUARANTINED[name]
    rows = sorted(summary.to_pylist(), key=lambda r: r["device_id"])
    expected = samples.RENDER_LOGS_SUMMARY[name]
    assert [(r["device_id"], r["log_count"], r["max_latency_ms"]) for r in rows] == [
        (d.device_id, d.log_count, d.max_latency_ms) for d in expected
    ]
    for row, want in zip(rows, expected, strict=True):
        assert row["avg_frame_rate"] == pytest.approx(want.avg_frame_rate, abs=samples.AVERAGE_TOLERANCE / 2)
        assert row["avg_gpu_usage"] == pytest.approx(want.avg_gpu_usage, abs=samples.AVERAGE_TOLERANCE / 2)


def quarantined_rows(folder: Path) -> int:
    total = 0
    for part in folder.rglob("*.csv"):
        with part.open(newline="") as handle:
            total += max(len(list(csv.reader(handle))) - 1, 0)
    return total


def test_sales_expectations_are_what_the_glue_job_loads(spark, tmp_path: Path) -> None:
    import sales_csv_to_parquet

    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copy(samples.sample("sales", samples.SALES_FILE), inputs)
    summary = sales_csv_to_parquet.main(
        [
            *("--input_path", str(inputs), "--output_path", str(tmp_path / "parquet")),
            *("--quarantine_path", str(tmp_path / "quarantine"), "--state_path", str(tmp_path / "state")),
        ]
    )
    assert (summary["rows_in"], summary["rows_loaded"], summary["rows_quarantined"]) == (
        samples.SALES_ROWS_IN,
        samples.SALES_ROWS_LOADED,
        samples.SALES_ROWS_QUARANTINED,
    )
    loaded = ds.dataset(tmp_path / "parquet", format="parquet", partitioning="hive").to_table(
        columns=["order_id", "quantity"]
    )
    assert sorted(loaded.column("order_id").to_pylist()) == list(samples.SALES_ORDER_IDS)
    assert sum(loaded.column("quantity").to_pylist()) == samples.SALES_UNITS
    part = tmp_path / "quarantine" / f"source_file={samples.SALES_FILE}"
    assert quarantined_rows(part) == samples.SALES_ROWS_QUARANTINED


def test_sensor_expectations_are_what_the_glue_job_builds(spark, tmp_path: Path) -> None:
    import sensor_timeseries

    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(samples.sample("sensor", samples.SENSOR_FILE), raw)
    sensor_timeseries.main(
        [
            *("--input_path", str(raw), "--output_path", str(tmp_path / "series")),
            *("--quarantine_path", str(tmp_path / "quarantine")),
            *("--month", samples.SENSOR_MONTH, "--frequency", samples.SENSOR_FREQUENCY),
        ]
    )
    month = f"month={samples.SENSOR_MONTH}"
    table = ds.dataset(tmp_path / "series" / month, format="parquet").to_table(columns=["sensor_id", "is_gap"])
    found = {
        r["sensor_id"]: (r["is_gap_count"], r["is_gap_sum"])
        for r in table.group_by("sensor_id").aggregate([("is_gap", "count"), ("is_gap", "sum")]).to_pylist()
    }
    assert found == samples.SENSOR_POINTS
    assert quarantined_rows(tmp_path / "quarantine" / month) == samples.SENSOR_ROWS_QUARANTINED
