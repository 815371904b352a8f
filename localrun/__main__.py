"""`python -m localrun`: the render-log pipeline on this machine, end to end.

The lake is a local folder (.local/lake), the warehouse a throwaway PostgreSQL, and the job the same
`render-summary` command the Batch image runs, as a separate process per file: what EventBridge and
Step Functions do in AWS for each uploaded CSV.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from localrun.postgres import temporary_postgres
from localrun.sample_data import write_render_logs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data" / "render_logs"


def run_render_logs(lake: Path, dsn: str, generated_rows: int) -> list[dict]:
    raw = lake / "raw" / "render-logs" / "2025" / "10" / "06"
    raw.mkdir(parents=True, exist_ok=True)
    for sample in sorted(SAMPLES.glob("*.csv")):
        shutil.copy(sample, raw / sample.name)
    write_render_logs(raw / "render_logs_generated.csv", generated_rows)
    summaries = []
    for csv_file in sorted(raw.glob("*.csv")):
        print(f"\n$ render-summary --input {csv_file}", flush=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "render_summary",
                "--input",
                str(csv_file),
                "--quarantine",
                str(lake / "processed" / "quarantine" / "render-logs"),
                "--warehouse",
                "postgres",
                "--postgres-dsn",
                dsn,
            ],
            capture_output=True,
            text=True,
        )
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        summaries.append(summary)
        print(json.dumps(summary, indent=2))
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            raise SystemExit(result.returncode)
    return summaries


def print_table(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT regexp_replace(source_uri, '^.*/', '') AS file, device_id, avg_frame_rate, avg_gpu_usage, "
            "max_latency_ms, log_count FROM public.performance_summary ORDER BY source_uri, device_id"
        ).fetchall()
    header = ("file", "device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count")
    print("\npublic.performance_summary")
    print(" | ".join(f"{h:>28}" if i == 0 else f"{h:>14}" for i, h in enumerate(header)))
    for file, device, fps, gpu, latency, count in rows:
        print(f"{file:>28} | {device:>14} | {fps:>14.6f} | {gpu:>14.6f} | {latency:>14} | {count:>14}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=ROOT / ".local" / "lake", help="local lake folder (recreated)")
    parser.add_argument("--generated-rows", type=int, default=200_000, help="rows in the generated sample file")
    args = parser.parse_args()
    shutil.rmtree(args.lake, ignore_errors=True)
    with temporary_postgres() as dsn:
        summaries = run_render_logs(args.lake, dsn, args.generated_rows)
        print_table(dsn)
    rows_in = sum(s["rows_in"] for s in summaries)
    quarantined = sum(s["rows_quarantined"] for s in summaries)
    print(
        f"\n{len(summaries)} file(s), {rows_in} row(s) in, {rows_in - quarantined} loaded, {quarantined} quarantined "
        f"(rejected rows with reasons under {args.lake / 'processed' / 'quarantine'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
