"""What the smoke run uploads (the bundled samples) and what the pipelines must make of them.

The counts are the local run's (`make run`, proven by tests/integration/test_localrun.py) and the jobs'
own output on these files; tests/smoke/test_samples.py recomputes the render-log and sensor figures
from the samples and the job code, so a changed sample or job cannot leave them stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"


@dataclass(frozen=True)
class DeviceSummary:
    """One row of performance_summary for one input file."""

    device_id: str
    log_count: int
    max_latency_ms: int
    avg_frame_rate: float
    avg_gpu_usage: float


# render-logs: per file, the rows the Batch job merges (keyed by source_uri, device_id) and the rows it
# quarantines (none: no quarantine file is left behind).
RENDER_LOGS_FILES = ("render_logs.csv", "render_logs_with_errors.csv")
RENDER_LOGS_SUMMARY: dict[str, tuple[DeviceSummary, ...]] = {
    "render_logs.csv": (
        DeviceSummary("iac-vx1", 5, 24, 59.750411, 88.059120),
        DeviceSummary("iac-vx2", 2, 20, 59.726740, 91.514274),
        DeviceSummary("iac-vx3", 1, 21, 59.562249, 94.969918),
        DeviceSummary("iac-vx4", 5, 25, 59.822822, 85.949711),
    ),
    "render_logs_with_errors.csv": (
        DeviceSummary("iac-vx1", 1, 20, 60.0, 90.0),
        DeviceSummary("iac-vx3", 1, 30, 58.5, 70.0),
    ),
}
RENDER_LOGS_QUARANTINED = {"render_logs.csv": 0, "render_logs_with_errors.csv": 6}
# Averages are compared to this many decimals (the table stores FLOAT8).
AVERAGE_TOLERANCE = 1e-6

# sales: one file, 24 rows, 5 rejected; the 19 orders loaded and their units.
SALES_FILE = "sales_2024_03.csv"
SALES_ROWS_IN, SALES_ROWS_LOADED, SALES_ROWS_QUARANTINED = 24, 19, 5
SALES_ORDER_IDS = (
    *(f"SO-{n}" for n in (1001, 1002, 1003, 1004, 1006, 1008, 1010, 1011)),
    *(f"SO-{n}" for n in range(1013, 1024)),
)
SALES_UNITS = 70

# sensor-timeseries: the month the sample covers, its intervals and the regular one-minute series
# (sensorFrequency's default): 31 days x 1,440 points per sensor, gaps where no interval covers a minute.
SENSOR_FILE = "sensor_intervals_2024_03.csv"
SENSOR_MONTH = "2024-03"
SENSOR_ROWS_QUARANTINED = 4
SENSOR_POINTS = {"temp-hall": (44640, 0), "temp-lab": (44640, 240), "temp-roof": (44640, 0)}  # (points, gaps)
SENSOR_FREQUENCY = "1min"


def sample(*parts: str) -> Path:
    return SAMPLES.joinpath(*parts)
