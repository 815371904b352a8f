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

from bench import measure
from bench.__main__ import load_benchmarks, write_results
from bench.glue_jobs import SIZES

REPO = Path(__file__).resolve().parents[2]
QUICK = SIZES["quick"]
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
    assert_loads_add_up(job, QUICK["sales"]["rows"])
    assert {k: job[k] for k in ("rows_in", "rows_loaded", "rows_quarantined")} == ref
    files = [m["output_files"] for m in report["measurements"]]
    assert files[0] == files[1] > 0  # one file per order_date/source_file partition, in both


def test_gharchive_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "gharchive")
    report = only_report(data, "gharchive")
    assert_table(done.stdout, report)
    job, ref = figures(report)
    assert_loads_add_up(job, QUICK["gharchive"]["events"])
    assert job["duplicates"] > 0
    assert {k: job[k] for k in ("rows_in", "rows_loaded", "rows_quarantined", "duplicates")} == ref
    assert report["measurements"][0]["output_files"] == QUICK["gharchive"]["hours"]  # one file per hour here


def test_sensor_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "sensor")
    report = only_report(data, "sensor")
    assert_table(done.stdout, report)
    job, ref = figures(report)
    sensors = QUICK["sensor"]["sensors"]
    assert job["sensors"] == ref["sensors"] == sensors
    assert job["points"] == ref["points"] == sensors * MARCH_POINTS
    assert 0 < job["gap_points"] == ref["gap_points"] < job["points"]
    assert job["rows_in"] == ref["rows_in"] == job["rows_valid"] + job["rows_quarantined"]
    assert 0 < job["rows_quarantined"] == ref["rows_quarantined"]


def test_estate_quick(tmp_path: Path) -> None:
    done, data = run_bench(tmp_path, "--only", "estate")
    report = only_report(data, "estate")
    assert_table(done.stdout, report)
    (build,) = report["measurements"]
    assert build["figures"]["resources"] == build["figures"]["distinct_urns"] > 100


@pytest.mark.parametrize("script", ["sales_csv_to_parquet", "gharchive_events", "sensor_timeseries", "glue_common"])
def test_the_benchmarked_scripts_use_no_python_udfs_and_bring_no_data_to_the_driver(script: str) -> None:
    source = (REPO / "glue_scripts" / f"{script}.py").read_text()
    for forbidden in ("udf", "toPandas", ".rdd", "mapInPandas", "applyInPandas", "toLocalIterator"):
        assert forbidden not in source, f"{script}.py uses {forbidden}"


# --- the machinery -----------------------------------------------------------------------------------


def test_every_benchmark_module_registers_itself() -> None:
    load_benchmarks()
    assert {"sales", "gharchive", "sensor", "estate"} <= set(measure.BENCHMARKS)


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
