"""Deterministic synthetic render logs, shaped like the seed's (used by the local run and benchmarks)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

HEADER = "timestamp,device_id,frame_rate,gpu_usage,latency_ms\n"


def write_render_logs(path: Path, rows: int, devices: int = 8, seed: int = 7, block: int = 100_000) -> Path:
    """Write `rows` valid rows for `devices` devices (iac-vx1...), 10 s apart, in blocks to bound memory."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 10, 6, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for first in range(0, rows, block):
            n = min(block, rows - first)
            # tolist(): plain Python numbers, whose repr is the shortest round-trip decimal.
            device = rng.integers(1, devices + 1, n).tolist()
            frame = rng.normal(59.8, 0.2, n).tolist()
            gpu = rng.uniform(75.0, 95.0, n).tolist()
            latency = rng.integers(15, 26, n).tolist()
            lines = [
                f"{(start + timedelta(seconds=10 * (first + i))).isoformat()},iac-vx{device[i]},"
                f"{frame[i]!r},{gpu[i]!r},{latency[i]}\n"
                for i in range(n)
            ]
            out.writelines(lines)
    return path
