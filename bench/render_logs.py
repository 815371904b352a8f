"""The render-log Batch job (`render-summary`) against the seed's pandas approach and DuckDB, same files.

Two benchmarks (`python -m bench --only render-logs render-logs-large`):

- `render-logs`: 10,000,000 rows (~760 MB of CSV). The job on the local file; the job reading the
  object through moto's S3 (a `ThreadedMotoServer` in a process of its own, reached over HTTP through
  `AWS_ENDPOINT_URL` as the job reaches S3: the server's copy of the object is not the job's memory);
  the seed's approach (`pd.read_csv` of the whole file, then `groupby().agg()`, with the pandas the
  image ships); and DuckDB (`read_csv` + `GROUP BY`, the near-hardware reference the ratios divide by).
- `render-logs-large`: the same on a file larger than 2 GB (30,000,000 rows), plus the job on the
  10M-row file again, to show that the job's memory does not grow with the input (the seed's approach
  is left out there: it would hold ~5 GB to say what the 10M run already says).

The input is generated (seeded, streamed to disk in blocks, cached under bench/data/inputs): seed-format
rows for 500 devices, and 0.1% bad lines of the kinds the job quarantines (unparsable timestamps,
missing or non-numeric values, out-of-range values, a field missing, overlong device ids, an empty
device id, blank lines). The bad rows carry their own device ids, so the seed's approach and DuckDB,
which validate nothing, still compute the valid devices' figures from valid rows only: every approach
must agree on those 500 devices (counts and maxima exactly, averages to 1e-9 relative), on the rows
read, and the job must quarantine exactly the generated bad rows. Each approach runs alone in a fresh
process (bench/measure.py): wall time of that process, the work it times itself, peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import measure
from bench.measure import REPO, Check, Clock, Context, Measurement, Report, benchmark, human_bytes, run_isolated

GENERATOR_VERSION = 1  # bump when the generator changes: cached inputs are regenerated
SEED = 20251006
DEVICES = 500
BAD_FRACTION = 0.001
SIZES = {"full": {"rows": 10_000_000, "large": 30_000_000}, "quick": {"rows": 20_000, "large": 60_000}}
CHECKED_LABEL = "DuckDB with the job's checks, 2 threads"
TARGETS = {"seed / job": 5.0, "job / DuckDB": 1.3, "job peak RSS": 384 * 1024 * 1024}
HEADER = b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n"
# Bad lines, one kind drawn at random for each; `{ts}` is the row's own timestamp. None: a blank line.
BAD_LINES: list[str | None] = [
    "{ts},,59.0,80.0,18",  # empty device_id
    "not-a-time,bad-timestamp,59.5,81.0,19",
    "{ts},bad-missing-field,59.5,81.0",
    "{ts},bad-gpu,58.0,101.5,22",
    "{ts},bad-frame-rate,-1.0,80.0,22",
    "{ts},bad-latency,58.5,70.0,20.5",
    "{ts},bad-missing-value,,70.0,20",
    "{ts},bad-nan,nan,70.0,20",
    "{ts}," + "bad-device-id-too-long-" * 3 + ",58.5,70.0,20",
    None,
]


# --- input ---------------------------------------------------------------------------------------------


def write_render_logs(path: Path, rows: int, seed: int = SEED, block: int = 1_000_000) -> dict[str, int]:
    """`rows` lines of render-log CSV after the header, written a block at a time (vectorised: ~2 s per 1M).

    Returns what the job must find: rows (non-blank lines), bad rows, blank lines and bytes.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    devices = pa.array([f"iac-vx{i:03d}" for i in range(DEVICES)])
    bad_texts = pa.array([b"" if line is None else line.encode() for line in BAD_LINES], pa.binary())
    blank_kind = BAD_LINES.index(None)
    start = np.datetime64("2025-10-06T00:00:00", "us")
    bad = blank = 0
    with path.open("wb") as out:
        out.write(HEADER)
        for first in range(0, rows, block):
            n = min(block, rows - first)
            ts = pc.strftime(
                pa.array(start + (first + np.arange(n)) * 10_000 + rng.integers(0, 10_000, n), pa.timestamp("us")),
                format="%Y-%m-%dT%H:%M:%S",
            )
            lines = pc.binary_join_element_wise(
                ts,
                devices.take(pa.array(rng.integers(0, DEVICES, n))),
                pc.cast(pa.array(rng.normal(59.8, 0.25, n)), pa.string()),
                pc.cast(pa.array(rng.uniform(60.0, 99.9, n)), pa.string()),
                pc.cast(pa.array(rng.integers(8, 45, n)), pa.string()),
                ",",
            ).cast(pa.binary())
            is_bad = rng.random(n) < BAD_FRACTION
            kinds = rng.integers(0, len(BAD_LINES), int(is_bad.sum()))
            templates = bad_texts.take(pa.array(kinds))
            texts = pc.replace_substring(templates, b"{ts}", b"")  # a bad line's own timestamp is put in below
            with_ts = pc.binary_join_element_wise(pc.filter(ts, pa.array(is_bad)).cast(pa.binary()), texts, b"")
            has_ts = pc.starts_with(templates.cast(pa.string()), "{ts}")
            lines = pc.replace_with_mask(lines, pa.array(is_bad), pc.if_else(has_ts, with_ts, texts))
            bad += int((kinds != blank_kind).sum())
            blank += int((kinds == blank_kind).sum())
            out.write(pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), lines), b"\n")[0].as_py())
            out.write(b"\n")
    return {"rows": rows - blank, "bad_rows": bad, "blank_lines": blank, "bytes": path.stat().st_size}


def cached_input(ctx: Context, rows: int) -> tuple[Path, dict[str, int]]:
    """The generated file for `rows` (written once, kept under bench/data/inputs) and its manifest.

    Generated in a child process, so the process that launches every measured approach stays small.
    """

    def generate(folder: Path) -> dict[str, Any]:
        command = [sys.executable, "-m", "bench.render_logs", "generate", str(folder / "render_logs.csv"), str(rows)]
        done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
        return {"seed": SEED, **json.loads(done.stdout)}

    folder, manifest = measure.cached_input(ctx, "render-logs", f"rows{rows}-v{GENERATOR_VERSION}-seed{SEED}", generate)
    return folder / "render_logs.csv", manifest


# --- the approaches (each runs in its own fresh process) --------------------------------------------------


def job(clock: Clock, *, data: str, quarantine: str, endpoint: str | None = None) -> dict[str, Any]:
    """The job's whole run (`render_summary.cli.run`, as `render-summary --warehouse none` calls it)."""
    if endpoint:  # the job's boto3 clients find moto through the standard variables, as in AWS
        os.environ.update(_aws_env(endpoint))
    from render_summary.cli import run

    with clock:
        result, summary = run(data, quarantine, None, "public", "performance_summary")
    devices = {
        row["device_id"]: [
            int(row["log_count"]),
            float(row["avg_frame_rate"]),
            float(row["avg_gpu_usage"]),
            int(row["max_latency_ms"]),
        ]
        for row in summary.to_pylist()
    }
    return {"rows": result.rows_in, "quarantined": result.rows_quarantined, "devices": devices}


def seed_approach(clock: Clock, *, data: str) -> dict[str, Any]:
    """What the seed did: the whole CSV into one DataFrame, then one groupby."""
    import pandas as pd

    with clock:
        df = pd.read_csv(data)
        summary = df.groupby("device_id").agg(
            avg_frame_rate=("frame_rate", "mean"),
            avg_gpu_usage=("gpu_usage", "mean"),
            max_latency_ms=("latency_ms", "max"),
            log_count=("timestamp", "count"),
        )
    devices = {
        str(device): [int(row.log_count), float(row.avg_frame_rate), float(row.avg_gpu_usage), int(row.max_latency_ms)]
        for device, row in summary.iterrows()
        if str(device).startswith("iac-")
    }
    return {"rows": len(df), "devices": devices}


def duckdb_approach(clock: Clock, *, data: str, threads: int) -> dict[str, Any]:
    """The same aggregation in DuckDB: its parallel CSV reader and hash aggregate, nothing validated."""
    import duckdb

    path = data.replace("'", "''")
    with clock:
        con = duckdb.connect(config={"threads": threads})
        found = con.sql(
            f"""
            SELECT device_id, count(*), avg(frame_rate), avg(gpu_usage), max(latency_ms)
            FROM read_csv('{path}', header = true, null_padding = true, auto_detect = false,
                          columns = {{'timestamp': 'VARCHAR', 'device_id': 'VARCHAR', 'frame_rate': 'DOUBLE',
                                     'gpu_usage': 'DOUBLE', 'latency_ms': 'DOUBLE'}})
            GROUP BY device_id
            """
        ).fetchall()
    devices = {
        device: [int(count), float(frame), float(gpu), int(latency)]
        for device, count, frame, gpu, latency in found
        if device is not None and device.startswith("iac-")
    }
    return {"rows": sum(int(count) for _, count, *_ in found), "devices": devices}


def duckdb_checked_approach(clock: Clock, *, data: str, threads: int) -> dict[str, Any]:
    """DuckDB doing the job's checks too: every field as text, TRY_CAST, the job's ranges, bad rows left out.

    Not the job's exact rules (its timestamps are ISO 8601 as pandas reads them, its ids trimmed as
    Python trims them) and no quarantine (no line numbers, no reasons): a lower bound on what validating
    costs DuckDB. On the generated file it keeps exactly the rows the job keeps (checked).
    """
    import duckdb

    path = data.replace("'", "''")
    with clock:
        con = duckdb.connect(config={"threads": threads})
        found = con.sql(
            f"""
            WITH raw AS (
                SELECT * FROM read_csv('{path}', header = true, null_padding = true, auto_detect = false,
                                       columns = {{'timestamp': 'VARCHAR', 'device_id': 'VARCHAR',
                                                  'frame_rate': 'VARCHAR', 'gpu_usage': 'VARCHAR',
                                                  'latency_ms': 'VARCHAR'}})
            ), typed AS (
                SELECT TRY_CAST(timestamp AS TIMESTAMP) AS ts, trim(device_id) AS device_id,
                       TRY_CAST(frame_rate AS DOUBLE) AS frame_rate, TRY_CAST(gpu_usage AS DOUBLE) AS gpu_usage,
                       TRY_CAST(latency_ms AS DOUBLE) AS latency_ms
                FROM raw
            ), checked AS (
                SELECT *, coalesce(
                    ts IS NOT NULL AND device_id <> '' AND octet_length(encode(device_id)) <= 50
                    AND NOT regexp_matches(device_id, '[\\\\\\x00-\\x1f\\x7f]')
                    AND frame_rate BETWEEN 0 AND 10000 AND gpu_usage BETWEEN 0 AND 100
                    AND latency_ms BETWEEN 0 AND 2147483647 AND latency_ms = round(latency_ms), false) AS ok
                FROM typed
            )
            SELECT device_id, count(*) FILTER (ok), avg(frame_rate) FILTER (ok), avg(gpu_usage) FILTER (ok),
                   max(latency_ms) FILTER (ok), count(*)
            FROM checked GROUP BY device_id
            """
        ).fetchall()
    devices = {
        device: [int(count), float(frame), float(gpu), int(latency)]
        for device, count, frame, gpu, latency, _ in found
        if count
    }
    return {
        "rows": sum(int(every) for *_, every in found),
        "loaded": sum(count for count, *_ in devices.values()),
        "devices": devices,
    }


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


# --- the benchmarks ----------------------------------------------------------------------------------------


class MotoS3:
    """A moto server (`ThreadedMotoServer`) in a process of its own, holding the input object.

    Not in the job's process (its copy of the object is not the job's memory) nor in this one (see
    `cached_input`); the job reaches it over HTTP through `AWS_ENDPOINT_URL`, as it reaches S3.
    """

    def __enter__(self) -> MotoS3:
        import boto3

        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.render_logs", "moto"], cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        env = _aws_env(self.endpoint)
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )
        self.client.create_bucket(Bucket="raw")
        self.client.create_bucket(Bucket="quarantine")
        return self

    def put(self, path: Path, key: str) -> str:
        self.client.upload_file(str(path), "raw", key)
        return f"s3://raw/{key}"

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # the server's process ends when its stdin does
        self.process.wait(timeout=60)


def _serve_moto() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    sys.stdin.read()
    server.stop()


def _warm(*paths: Path) -> None:
    """Read the inputs once, so every approach finds them in the page cache (the first one measured
    would otherwise pay for the disk, after the Glue benchmarks pushed the files out of memory)."""
    for path in paths:
        with path.open("rb", buffering=0) as handle:
            while handle.read(1 << 24):
                pass


def _job_label(where: str, rows: int) -> str:
    return f"job, {where} ({rows:,} rows)"


def _measure_job(ctx: Context, label: str, data: str, quarantine: str, endpoint: str | None = None) -> Measurement:
    return run_isolated(
        job, label, log_dir=ctx.run_dir, data=data, quarantine=quarantine, endpoint=endpoint, timeout=1800
    )


def _agree(measurements: list[Measurement], reference: Measurement) -> Check:
    """Every approach's figures for the valid devices match the reference's (the job's)."""
    want = reference.figures["devices"]
    worst, problems = 0.0, []
    for m in measurements:
        got = m.figures["devices"]
        if sorted(got) != sorted(want):
            problems.append(f"{m.approach}: devices {len(got)} vs {len(want)}")
            continue
        for device, (count, frame, gpu, latency) in want.items():
            other = got[device]
            if (other[0], other[3]) != (count, latency):
                problems.append(f"{m.approach}: {device} count/max {other[0]}/{other[3]} vs {count}/{latency}")
            worst = max(worst, *(abs(a - b) / abs(b) for a, b in ((other[1], frame), (other[2], gpu))))
    ok = not problems and worst <= 1e-9
    detail = f"{len(want)} devices: counts and maxima equal, averages within {worst:.1e} relative (allowed 1e-9)"
    return Check("per-device results of the valid rows", ok, "; ".join(problems[:3]) or detail)


def _ratio_notes(job_local: Measurement, duck: Measurement, seed: Measurement | None) -> list[str]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    wall = job_local.wall_s / duck.wall_s
    startup = f"start-up and exit (wall - work): job {job_local.wall_s - job_local.work_s:.2f} s (Python, pyarrow and "
    startup += f"numpy imports; pandas is not imported), DuckDB {duck.wall_s - duck.work_s:.2f} s"
    notes = [
        startup,
        f"job / DuckDB: wall {wall:.2f}, work {job_local.work_s / duck.work_s:.2f} "
        f"(target: wall <= {TARGETS['job / DuckDB']}: {verdict(wall <= TARGETS['job / DuckDB'])})",
        f"job peak RSS {human_bytes(job_local.peak_rss_bytes)} (target < {human_bytes(TARGETS['job peak RSS'])}: "
        f"{verdict(job_local.peak_rss_bytes < TARGETS['job peak RSS'])})",
    ]
    if seed is not None:
        faster = seed.wall_s / job_local.wall_s
        notes.insert(
            0,
            f"seed / job: wall {faster:.1f}x, work {seed.work_s / job_local.work_s:.1f}x, peak RSS "
            f"{seed.peak_rss_bytes / job_local.peak_rss_bytes:.1f}x (target: >= {TARGETS['seed / job']}x faster: "
            f"{verdict(faster >= TARGETS['seed / job'])})",
        )
    return notes


def _input_note(path: Path, stats: dict[str, int]) -> str:
    return (
        f"input {path.name}: {human_bytes(stats['bytes'])}, {stats['rows']:,} rows ({stats['bad_rows']:,} bad) "
        f"and {stats['blank_lines']:,} blank lines, {DEVICES} devices, seed {SEED}"
    )


def _counts(job_runs: list[Measurement], others: list[Measurement], stats: dict[str, int]) -> list[Check]:
    return [
        Check.equal("rows read", stats["rows"], *(m.figures["rows"] for m in job_runs + others)),
        Check.equal(
            "rows quarantined (generated, then each job run)",
            stats["bad_rows"],
            *(m.figures["quarantined"] for m in job_runs),
        ),
    ]


@benchmark("render-logs", title="render-log CSV -> per-device summary (render-summary)", order=40)
def bench_render_logs(ctx: Context) -> Report:
    rows = SIZES["quick" if ctx.quick else "full"]["rows"]
    path, stats = cached_input(ctx, rows)
    _warm(path)
    duck_label = "DuckDB read_csv + GROUP BY, 2 threads"
    local = _measure_job(ctx, _job_label("local file", rows), str(path), str(ctx.run_dir / "quarantine"))
    with MotoS3() as s3:
        uri = s3.put(path, f"render-logs/{path.name}")
        streamed = _measure_job(ctx, _job_label("S3 via moto", rows), uri, "s3://quarantine/render-logs", s3.endpoint)
    seed = run_isolated(seed_approach, "seed: pandas read_csv + groupby", log_dir=ctx.run_dir, data=str(path))
    duck = run_isolated(duckdb_approach, duck_label, log_dir=ctx.run_dir, data=str(path), threads=2)
    checked = run_isolated(duckdb_checked_approach, CHECKED_LABEL, log_dir=ctx.run_dir, data=str(path), threads=2)
    loaded = local.figures["rows"] - local.figures["quarantined"]
    return Report(
        name="render-logs",
        title=f"{rows:,} render-log rows ({human_bytes(stats['bytes'])} CSV) -> per-device summary",
        measurements=[local, streamed, seed, duck, checked],
        reference=duck_label,
        rows_key="rows",
        checks=[
            *_counts([local, streamed], [seed, duck, checked], stats),
            Check.equal("rows loaded (the job, DuckDB with checks)", loaded, checked.figures["loaded"]),
            _agree([streamed, seed, duck, checked], local),
        ],
        notes=[
            _input_note(path, stats),
            *_ratio_notes(local, duck, seed),
            f"job / {CHECKED_LABEL}: wall {local.wall_s / checked.wall_s:.2f}, work "
            f"{local.work_s / checked.work_s:.2f} (the job also records each bad row's line, reasons and text)",
        ],
    )


@benchmark("render-logs-large", title="render-summary on a file over 2 GB: memory stays flat", order=45)
def bench_render_logs_large(ctx: Context) -> Report:
    sizes = SIZES["quick" if ctx.quick else "full"]
    small_path, _ = cached_input(ctx, sizes["rows"])
    path, stats = cached_input(ctx, sizes["large"])
    _warm(small_path, path)
    duck_label = "DuckDB read_csv + GROUP BY, 2 threads"
    small = _measure_job(ctx, _job_label("local file", sizes["rows"]), str(small_path), str(ctx.run_dir / "q-small"))
    local = _measure_job(ctx, _job_label("local file", sizes["large"]), str(path), str(ctx.run_dir / "quarantine"))
    with MotoS3() as s3:
        uri = s3.put(path, f"render-logs/{path.name}")
        label = _job_label("S3 via moto", sizes["large"])
        streamed = _measure_job(ctx, label, uri, "s3://quarantine/render-logs", s3.endpoint)
    duck = run_isolated(duckdb_approach, duck_label, log_dir=ctx.run_dir, data=str(path), threads=2)
    growth = local.peak_rss_bytes / small.peak_rss_bytes
    return Report(
        name="render-logs-large",
        title=f"{sizes['large']:,} render-log rows ({human_bytes(stats['bytes'])} CSV): memory does not grow",
        measurements=[small, local, streamed, duck],
        reference=duck_label,
        rows_key="rows",
        checks=[*_counts([local, streamed], [duck], stats), _agree([streamed, duck], local)],
        notes=[
            _input_note(path, stats),
            f"job peak RSS on {sizes['large']:,} rows / on {sizes['rows']:,} rows: {growth:.2f} "
            f"({human_bytes(local.peak_rss_bytes)} / {human_bytes(small.peak_rss_bytes)}; input "
            f"{sizes['large'] / sizes['rows']:.0f}x larger)",
            f"streamed from S3: peak RSS {human_bytes(streamed.peak_rss_bytes)} for a "
            f"{human_bytes(stats['bytes'])} object",
            *_ratio_notes(local, duck, None),
        ],
    )


if __name__ == "__main__":  # helpers run in processes of their own (see cached_input and MotoS3)
    if sys.argv[1] == "generate":
        print(json.dumps(write_render_logs(Path(sys.argv[2]), int(sys.argv[3]))))
    elif sys.argv[1] == "moto":
        _serve_moto()
