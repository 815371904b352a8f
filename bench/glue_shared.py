"""What the Glue benchmarks (`glue_sales`, `glue_gharchive`, `glue_sensor`) share.

Each of them: generated input (seeded, streamed to disk, a small share of bad rows and duplicates
so the quarantine paths run), the job's own `main()` in one process, the same work in DuckDB
(2 threads, like `local[2]`; built-in read_csv / JSON functions / Parquet writer only, no extension
downloads) in another, and then a comparison of what both wrote, read back with DuckDB: the loaded
rows must be identical (EXCEPT ALL both ways is empty) and the quarantined rows must have the same
reasons in the same numbers.

What the reference does not do: the jobs' state markers (listing and a few tiny JSON files) and
their per-file Spark jobs for headers. Row order within a file is not tracked by the reference:
the generated duplicates are exact copies of valid rows, so which copy is kept changes no output.

This module registers no benchmark (`python -m bench` does not import it as one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import measure
from bench.measure import Check, Clock, Context, Measurement, human_bytes, run_isolated

CORES = 2  # local[2]; DuckDB gets as many threads
SEED = 20240601
JOB_LABEL = "Glue job, Spark local[2]"
REF_LABEL = "DuckDB reference, 2 threads"


def sized(ctx: Context, sizes: dict[str, dict[str, int]]) -> dict[str, int]:
    """The benchmark's `quick` or `full` parameters."""
    return sizes["quick" if ctx.quick else "full"]


# --- cached inputs -----------------------------------------------------------------------------------


def cached_input(
    ctx: Context, name: str, version: int, params: dict[str, Any], write: Callable[..., dict[str, Any]]
) -> Path:
    """The folder of generated input for these parameters, written once (`write(folder, **params)`).

    Bump the generator's `version` when its output changes: the cached inputs are then regenerated.
    """

    def generate(folder: Path) -> dict[str, Any]:
        (folder / "files").mkdir()
        return {"params": params, "seed": SEED, **write(folder / "files", **params)}

    key = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    folder, _ = measure.cached_input(ctx, name, f"{key}-v{version}-seed{SEED}", generate)
    return folder / "files"


def input_note(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    stats = json.loads((folder.parent / "manifest.json").read_text())
    extra = ", ".join(f"{k} {v:,}" for k, v in stats.items() if isinstance(v, int) and k != "seed")
    return f"input: {len(files)} files, {human_bytes(size)} ({extra})"


class LineWriter:
    """Buffered line writer: generators build lines one at a time and never hold a file in memory."""

    def __init__(self, handle: Any, block: int = 20_000) -> None:
        self.handle, self.block = handle, block
        self.buffer: list[str] = []

    def add(self, line: str) -> None:
        self.buffer.append(line)
        if len(self.buffer) >= self.block:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.handle.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()


# --- the job: its main() on local[2] ------------------------------------------------------------------


def run_job(clock: Clock, module: str, argv: list[str]) -> dict[str, Any]:
    """The job's main(argv) on its own session (glue_common.spark_session, local[2]), started before the
    clock (main() reuses it); adds how many Spark jobs the run took (its actions and their stages' jobs)."""
    import importlib

    import glue_common

    job = importlib.import_module(module)
    spark = glue_common.spark_session(job.JOB)
    spark.sparkContext.setLogLevel("ERROR")
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    with clock:
        summary = job.main(argv)
    return {**summary, "spark_jobs": len(set(tracker.getJobIdsForGroup(None)) - before)}


def locations(input_dir: str, root: str, *names: str) -> list[str]:
    """`--input_path <input_dir>` and `--<name>_path <root>/<name>` for each name."""
    paths = {"output": "out", "quarantine": "quarantine", "state": "state"}
    return ["--input_path", input_dir, *(a for n in names for a in (f"--{n}_path", f"{root}/{paths[n]}"))]


# --- the reference: DuckDB --------------------------------------------------------------------------


def duckdb_connect(root: str | None = None) -> Any:
    """An in-memory DuckDB with local[2]'s parallelism that never downloads an extension."""
    import duckdb

    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={"threads": CORES, "autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def fetch_one(con: Any, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return tuple(row)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def reasons(checks: list[tuple[str, str]]) -> str:
    """'; '-joined reasons of the failed checks, or NULL (concat_ws skips NULLs)."""
    joined = "concat_ws('; ', " + ", ".join(f"CASE WHEN {cond} THEN {sql_text(text)} END" for cond, text in checks)
    return f"nullif({joined}), '')"


# --- comparing what both wrote ----------------------------------------------------------------------


def except_both_ways(con: Any, left: str, right: str) -> tuple[int, int, int, int]:
    """(rows in left, rows in right, left EXCEPT ALL right, right EXCEPT ALL left)."""
    n_left, n_right, only_left, only_right = fetch_one(
        con,
        f"""
        SELECT (SELECT count(*) FROM ({left})), (SELECT count(*) FROM ({right})),
               (SELECT count(*) FROM ({left} EXCEPT ALL {right})), (SELECT count(*) FROM ({right} EXCEPT ALL {left}))
    """,
    )
    return n_left, n_right, only_left, only_right


def same_rows(con: Any, what: str, left: str, right: str) -> Check:
    n_left, n_right, only_left, only_right = except_both_ways(con, left, right)
    ok = n_left == n_right and only_left == 0 and only_right == 0
    return Check(
        what, ok, f"{n_left:,} vs {n_right:,} rows; only in the job {only_left:,}, only in the reference {only_right:,}"
    )


def reason_histograms(con: Any, left: str, right: str) -> Check:
    query = "SELECT reason, count(*) AS n FROM ({}) GROUP BY reason"
    _, _, only_left, only_right = except_both_ways(con, query.format(left), query.format(right))
    kinds = fetch_one(con, f"SELECT count(*), sum(n) FROM ({query.format(left)})")
    return Check(
        "quarantine reasons (every distinct reason text and its count)",
        only_left == 0 and only_right == 0 and kinds[0] > 0,
        f"{kinds[0]} distinct reasons over {int(kinds[1] or 0):,} rows; differing groups {only_left} / {only_right}",
    )


def figure_checks(job: Measurement, ref: Measurement, keys: tuple[str, ...]) -> list[Check]:
    return [Check.equal(key, job.figures.get(key), ref.figures.get(key)) for key in keys]


# --- running both and describing the run ---------------------------------------------------------------


def run_pair(
    ctx: Context, input_dir: Path, job_fn: Callable[..., Any], ref_fn: Callable[..., Any]
) -> tuple[Measurement, Measurement, Path, Path]:
    """The job, then the reference, each in a fresh process on the same input; (job, reference, their roots)."""
    job_root, ref_root = ctx.run_dir / "job", ctx.run_dir / "reference"
    job = run_isolated(
        job_fn, JOB_LABEL, outputs=job_root / "out", log_dir=ctx.run_dir, input_dir=str(input_dir), root=str(job_root)
    )
    ref = run_isolated(
        ref_fn, REF_LABEL, outputs=ref_root / "out", log_dir=ctx.run_dir, input_dir=str(input_dir), root=str(ref_root)
    )
    return job, ref, job_root, ref_root


def files_note(root: Path, what: str, suffixes: tuple[str, ...]) -> str:
    sizes = measure.data_files(root, suffixes)
    mean = human_bytes(sum(sizes) / len(sizes)) if sizes else "-"
    return f"{what}: {len(sizes):,} files, mean {mean}"


def spark_note(job: Measurement) -> str:
    return (
        f"the job ran {job.figures['spark_jobs']} Spark jobs (its actions, and the extra jobs adaptive execution "
        "and partitioned writes start); no Python UDFs; only counts (and state markers) reach the driver"
    )
