"""`python -m bench --quick`: each benchmark runs, prints its table, and its approaches did the same work.

Nothing here looks at a time: the figures asserted are counts, and that the job and the reference
agree on them (and on the rows they wrote, which the benchmark compares itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import glue_gharchive, glue_sales, glue_sensor, measure, render_logs
from bench.__main__ import load_benchmarks, write_results
from localrun import sample_data

REPO = Path(__file__).resolve().parents[2]
MARCH_POINTS = 31 * 24 * 60


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--data-dir",
            str(tmp_path / "data"),
            "--json",
            str(report),
            "--results",
            str(tmp_path / "RESULTS.md"),
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert not (tmp_path / "RESULTS.md").exists(), "--quick must not write RESULTS.md"
    return done, json.loads(report.read_text())


def only_report(data: dict[str, Any], name: str) -> dict[str, Any]:
    assert data["failures"] == {}
    assert [r["name"] for r in data["reports"]] == [name]
    report = data["reports"][0]
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert report["checks"], "a benchmark must prove its approaches agree"
    return report


def figures(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    job, reference = report["measurements"]
    assert reference["approach"] == report["reference"]
    return job["figures"], reference["figures"]


def assert_table(stdout: str, report: dict[str, Any]) -> None:
    assert f"### {report['name']}: " in stdout
    assert measure.TABLE_HEADER.format(rows=report["rows_label"]) in stdout
    for m in report["measurements"]:
        assert f"| {m['approach']} | " in stdout
        assert m["wall_s"] > 0 and m["work_s"] > 0 and m["peak_rss_bytes"] > 0


def assert_loads_add_up(f: dict[str, Any], rows_in: int) -> None:
    assert f["rows_in"] == rows_in
    assert f["rows_in"] == f["rows_loaded"] + f["rows_quarantined"]
    assert 0 < f["rows_quarantined"] < f["rows_in"] * 0.05  # the generated bad rows and duplicates, a few %


def test_sales_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "sales")
    report = only_report(data, "sales")
    assert_table(done.stdout, report)
    job, ref = figures(report)
    assert_loads_add_up(job, glue_sales.SIZES["quick"]["rows"])
    assert {k: job[k] for k in ("rows_in", "rows_loaded", "rows_quarantined")} == ref
    files = [m["output_files"] for m in report["measurements"]]
    assert files[0] == files[1] > 0  # one file per order_date/source_file partition, in both


def test_gharchive_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "gharchive")
    report = only_report(data, "gharchive")
    assert_table(done.stdout, report)
    job, ref = figures(report)
    assert_loads_add_up(job, glue_gharchive.SIZES["quick"]["events"])
    assert job["duplicates"] > 0
    assert {k: job[k] for k in ("rows_in", "rows_loaded", "rows_quarantined", "duplicates")} == ref
    assert report["measurements"][0]["output_files"] == glue_gharchive.SIZES["quick"]["hours"]  # one file per hour here


def test_sensor_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "sensor")
    report = only_report(data, "sensor")
    assert_table(done.stdout, report)
    job, ref = figures(report)
    sensors = glue_sensor.SIZES["quick"]["sensors"]
    assert job["sensors"] == ref["sensors"] == sensors
    assert job["points"] == ref["points"] == sensors * MARCH_POINTS
    assert 0 < job["gap_points"] == ref["gap_points"] < job["points"]
    assert job["rows_in"] == ref["rows_in"] == job["rows_valid"] + job["rows_quarantined"]
    assert 0 < job["rows_quarantined"] == ref["rows_quarantined"]


def test_sensor_history_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "sensor-history")
    report = only_report(data, "sensor-history")
    assert_table(done.stdout, report)
    sizes = glue_sensor.HISTORY_SIZES["quick"]
    short_index, long_index, short_full, long_full = (m["figures"] for m in report["measurements"])
    # The month index reads this month's upload and last month's whatever the history; the full scan all.
    assert (short_index["files_read"], long_index["files_read"]) == (2, 2)
    assert short_index["bytes_read"] == long_index["bytes_read"] > 0
    assert (short_full["files_read"], long_full["files_read"]) == (sizes["short"], sizes["months"])
    assert long_full["bytes_read"] > short_full["bytes_read"] >= short_index["bytes_read"]
    points = sizes["sensors"] * 31 * 24 * 6  # March 2024 at ten minutes
    assert {m["points"] for m in (short_index, long_index, short_full, long_full)} == {points}
    assert f"{sizes['months']} months of history: the month index reads 2 of {sizes['months']} files" in done.stdout


def test_estate_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "estate")
    report = only_report(data, "estate")
    assert_table(done.stdout, report)
    (build,) = report["measurements"]
    assert build["figures"]["resources"] == build["figures"]["distinct_urns"] > 100


def test_render_logs_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "render-logs", "render-logs-large")
    assert data["failures"] == {}
    reports = {r["name"]: r for r in data["reports"]}
    assert list(reports) == ["render-logs", "render-logs-large"]
    rows, large = render_logs.SIZES["quick"]["rows"], render_logs.SIZES["quick"]["large"]
    for report in reports.values():
        assert report["ok"], [c for c in report["checks"] if not c["ok"]]
        assert_table(done.stdout, report)
    assert [m["approach"] for m in reports["render-logs"]["measurements"]] == [
        f"job, local file ({rows:,} rows)",
        f"job, S3 via moto ({rows:,} rows)",
        "seed: pandas read_csv + groupby",
        "DuckDB read_csv + GROUP BY, 2 threads",
        "DuckDB with the job's checks, 2 threads",
    ]
    assert [m["approach"] for m in reports["render-logs-large"]["measurements"]] == [
        f"job, local file ({rows:,} rows)",
        f"job, local file ({large:,} rows)",
        f"job, S3 via moto ({large:,} rows)",
        "DuckDB read_csv + GROUP BY, 2 threads",
    ]
    manifest = json.loads(next((tmp_path / "data").rglob(f"rows{rows}-*/manifest.json")).read_text())
    local, streamed, seed, duck, checked = (m["figures"] for m in reports["render-logs"]["measurements"])
    assert local["rows"] == streamed["rows"] == seed["rows"] == duck["rows"] == checked["rows"] == manifest["rows"]
    assert local["quarantined"] == streamed["quarantined"] == manifest["bad_rows"] > 0
    assert checked["loaded"] == manifest["rows"] - manifest["bad_rows"]
    assert local["devices"] == streamed["devices"]  # the same blocks from a file and from S3: the same bits
    assert len(local["devices"]) == render_logs.DEVICES


def test_render_logs_devices_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "render-logs-devices")
    report = only_report(data, "render-logs-devices")
    assert_table(done.stdout, report)
    few, many = render_logs.DEVICE_COUNTS["quick"]
    assert [m["figures"] for m in report["measurements"]] == [
        {"rows": n, "devices": n, "table_rows": n, "table_logs": n} for n in (few, many)
    ]
    assert (
        f"- job peak RSS: {measure.human_bytes(report['measurements'][1]['peak_rss_bytes'])} with {many:,}"
        in done.stdout
    )


def test_generated_render_logs_hold_what_the_manifest_says(tmp_path: Path) -> None:
    path = tmp_path / "render_logs.csv"
    stats = render_logs.write_render_logs(path, 20_000, block=7_000)
    lines = path.read_bytes().decode().split("\n")
    assert lines[0] + "\n" == sample_data.RENDER_LOG_HEADER.decode() and lines[-1] == ""
    body = lines[1:-1]
    assert len(body) == 20_000
    blank = [line for line in body if not line]
    bad = [line for line in body if line and not line.split(",")[1].startswith("iac-")]
    assert stats == {
        "rows": 20_000 - len(blank),
        "bad_rows": len(bad),
        "blank_lines": len(blank),
        "bytes": path.stat().st_size,
    }
    assert 0 < len(bad) < 60 and blank  # 0.1% bad, a tenth of them blank
    good = [line.split(",") for line in body if line and line not in bad]
    assert {len(fields) for fields in good} == {5}
    assert {fields[1] for fields in good} <= {f"iac-vx{i:03d}" for i in range(render_logs.DEVICES)}
    assert all(0 < float(fields[3]) < 100 and 8 <= int(fields[4]) < 45 for fields in good)
    assert render_logs.write_render_logs(tmp_path / "again.csv", 20_000, block=7_000) == {**stats}
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()  # seeded: the same file every time


@pytest.mark.parametrize("script", ["sales_csv_to_parquet", "gharchive_events", "sensor_timeseries", "glue_common"])
def test_the_benchmarked_scripts_use_no_python_udfs_and_bring_no_data_to_the_driver(script: str) -> None:
    source = (REPO / "glue_scripts" / f"{script}.py").read_text()
    for forbidden in ("udf", "toPandas", ".rdd", "mapInPandas", "applyInPandas", "toLocalIterator"):
        assert forbidden not in source, f"{script}.py uses {forbidden}"


# --- the machinery -----------------------------------------------------------------------------------


def test_every_benchmark_module_registers_itself() -> None:
    load_benchmarks()
    assert set(measure.BENCHMARKS) == {
        "render-logs", "render-logs-large", "render-logs-devices", "sales", "gharchive", "sensor",
        "sensor-history", "estate",
    }  # fmt: skip


def allocate_in_a_grandchild(clock: measure.Clock, *, megabytes: int) -> dict[str, Any]:
    """Run in a child by run_isolated: a grandchild holds the memory, as Spark's JVM would."""
    code = f"import time; block = bytearray({megabytes} * 1024 * 1024); time.sleep(1.0)"
    with clock:
        subprocess.run([sys.executable, "-c", code], check=True)
    return {"rows": 1}


def test_run_isolated_measures_the_whole_process_tree(tmp_path: Path) -> None:
    m = measure.run_isolated(allocate_in_a_grandchild, "grandchild", log_dir=tmp_path, megabytes=300)
    assert m.figures == {"rows": 1}
    assert m.peak_rss_bytes >= 300 * 1024 * 1024
    assert 1.0 <= m.work_s <= m.wall_s


def test_tree_rss_counts_this_process() -> None:
    assert measure.tree_rss(os.getpid()) > 10 * 1024 * 1024


def failing(clock: measure.Clock) -> dict[str, Any]:
    raise RuntimeError("boom")


def test_a_failing_approach_raises_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(measure.BenchError, match="boom"):
        measure.run_isolated(failing, "fails", log_dir=tmp_path)


def test_results_keep_sections_of_benchmarks_not_run(tmp_path: Path) -> None:
    load_benchmarks()
    results = tmp_path / "RESULTS.md"
    write_results(results, {"cpu": "old"}, {"sales": "### sales: old\n", "sensor": "### sensor: old\n"}, "cmd")
    write_results(results, {"cpu": "new"}, {"sensor": "### sensor: new\n"}, "cmd")
    text = results.read_text()
    assert "- cpu: new" in text and "- cpu: old" not in text
    assert "### sales: old" in text and "### sensor: new" in text and "### sensor: old" not in text
    assert text.index("### sales") < text.index("### sensor")  # benchmark order, not run order
