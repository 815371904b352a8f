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
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The seed's 13 rows, the bad-rows sample (8 rows, 6 rejected) and the generated 1000 rows.
    assert out.rstrip().endswith(
        f"3 file(s), 1021 row(s) in, 1015 loaded, 6 quarantined (rejected rows with reasons under "
        f"{tmp_path / 'lake' / 'processed' / 'quarantine'})"
    )
    table = out[out.index("\npublic.performance_summary\n") + 1 :].splitlines()
    assert (
        "render_logs.csv |        iac-vx1 |      59.750411 |      88.059120 |             24 |              5"
        in table[2]
    )
    assert sum(" render_logs_generated.csv | " in line for line in table) == 8  # eight generated devices
    quarantine = list((tmp_path / "lake" / "processed" / "quarantine" / "render-logs").glob("*.quarantine.csv"))
    assert [q.name.split(".")[0] for q in quarantine] == ["render_logs_with_errors"]
