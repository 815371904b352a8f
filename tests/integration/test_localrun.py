"""The README's main command (`make run` -> `python -m localrun`), end to end as a user runs it."""

from __future__ import annotations

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
        "2024-03, 240 of them gaps\n"
        "gharchive: 3 hour(s) ingested (bookmark 2024-01-01T02), 1209 event(s) in, 1200 loaded, 9 quarantined\n"
        "covid19: 5 file(s) copied, 124 row(s) in, 89 loaded, 35 quarantined; star schema dim_date 4, "
        "dim_location 13, fact_cases 23, fact_testing 9\n"
        f"(rejected rows with reasons under {tmp_path / 'lake' / 'processed' / 'quarantine'})"
    )
    # GH Archive: hour 3 is not published yet and the second run fetches nothing.
    assert '"stopped_reason": "hour 2024-01-01T03 not published yet (404)"' in out
    assert out.count('"hours_fetched": 0') == 1
    assert "\nAthena named query gharchive-events-per-type-per-day:" in out
    assert "\npublic.sales per day: order_date | orders | units | net revenue\n  2024-03-01 |      2 |     3 |" in out
    assert "    temp-lab |  44640 |    240\n" in out
    table = out[out.index("\npublic.performance_summary\n") + 1 :].splitlines()
    assert (
        "render_logs.csv |        iac-vx1 |      59.750411 |      88.059120 |             24 |              5"
        in table[2]
    )
    assert sum(" render_logs_generated.csv | " in line for line in table) == 8  # eight generated devices
    quarantine = list((tmp_path / "lake" / "processed" / "quarantine" / "render-logs").glob("*.quarantine.csv"))
    assert [q.name.split(".")[0] for q in quarantine] == ["render_logs_with_errors"]
