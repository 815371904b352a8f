"""The README's main command (`make run` -> `python -m localrun`), end to end as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_local_run_loads_every_sample_and_prints_the_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localrun", "--lake", str(tmp_path / "lake"), "--generated-rows", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # Render logs: the seed's 13 rows, the bad-rows sample (8 rows, 6 rejected) and 1000 generated rows.
    # Sales: 24 rows, 5 bad. Sensor: 28 intervals, 4 bad; 3 sensors x 44,640 minutes of March 2024.
    # GH Archive: 3 hours x 400 events + 2 repeats and 1 broken line each. COVID-19: the bundled samples.
    assert out.rstrip().endswith(
        "render-logs: 3 file(s), 1021 row(s) in, 1015 loaded, 6 quarantined\n"
        "sales: 1 file(s), 24 row(s) in, 19 loaded, 5 quarantined\n"
        "sensor-timeseries: 28 interval(s) in, 24 valid, 4 quarantined; 133920 points for 3 sensor(s) in "
        "2024-03, 240 of them gaps; read 1 of 1 raw file(s) (month index)\n"
        "gharchive: 3 hour(s) ingested (bookmark 2024-01-01T02), 1209 event(s) in, 1200 loaded, 9 quarantined\n"
        "covid19: 5 file(s) copied, 124 row(s) in, 89 loaded, 35 quarantined; star schema dim_date 4, "
        "dim_location 13, fact_cases 23, fact_testing 9\n"
        f"(rejected rows with reasons under {tmp_path / 'lake' / 'processed' / 'quarantine'})"
    )
    # GH Archive: hour 3 is not published yet and the second run fetches nothing.
    assert '"stopped_reason": "hour 2024-01-01T03 not published yet (404)"' in out
    assert out.count('"hours_fetched": 0') == 1
    assert "\nAthena named query gharchive-events-per-type-per-day:" in out
    # The transform's run is in job_run_details beside the ingest's.
    run_row = r"\njob_run_details gharchive_events \d{8}T\d{6}Z-[0-9a-f]{8}: SUCCEEDED, 1200 loaded, 9 quarantined\n"
    assert re.search(run_row, out)
    assert (
        "\npublic.sales_data_table per day: order_date | orders | units | net revenue\n  2024-03-01 |      2 |     3 |"
        in out
    )
    # The converted Parquet through its catalog table, right after the convert step (partitions it registered).
    assert (
        "\nAthena SELECT count(*), sum(quantity), count(DISTINCT order_date) FROM sales_orders "
        "(on local Spark, partitions as registered): 19 | 70 | 15\n" in out
    )
    assert "    temp-lab |  44640 |    240\n" in out
    # Three files sharing devices (the seed's iac-vx1..4, the bad-rows sample's iac-vx1 and iac-vx3, the
    # generated file's iac-vx1..8): each file's rows, then one row per device over all of them, as the
    # analyst role reads them.
    assert (
        "\nSELECT regexp_replace(source_uri, '^.*/', ''), count(*), sum(log_count) FROM performance_summary_by_file\n"
        "             render_logs.csv |   4 device(s) |    13 row(s)\n"
        "   render_logs_generated.csv |   8 device(s) |  1000 row(s)\n"
        " render_logs_with_errors.csv |   2 device(s) |     2 row(s)\n"
        "\nSELECT * FROM performance_summary\n"
        "     device_id | avg_frame_rate |  avg_gpu_usage | max_latency_ms |      log_count\n"
        "       iac-vx1 |      59.772105 |      83.544816 |             44 |            113\n"
        "       iac-vx2 |      59.831345 |      79.041045 |             44 |            137\n"
        "       iac-vx3 |      59.799831 |      80.715169 |             44 |            125\n"
        "       iac-vx4 |      59.798887 |      82.424873 |             44 |            146\n"
        "       iac-vx5 |      59.745870 |      79.424138 |             44 |            123\n"
        "       iac-vx6 |      59.784708 |      79.386764 |             44 |            116\n"
        "       iac-vx7 |      59.825886 |      78.405672 |             44 |            133\n"
        "       iac-vx8 |      59.805432 |      80.682187 |             44 |            122\n"
    ) in out
    assert not list((tmp_path / "lake" / "processed" / "stage" / "render-logs").iterdir())  # stages removed
    quarantine = list((tmp_path / "lake" / "processed" / "quarantine" / "render-logs").glob("*.quarantine.csv"))
    assert [q.name.split(".")[0] for q in quarantine] == ["render_logs_with_errors"]
