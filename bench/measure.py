"""What every benchmark shares: the registry, running one approach in a fresh process, and the tables.

A benchmark module (a `bench/<name>.py`; `python -m bench` imports every one, see bench/__init__.py) registers itself::

    from bench.measure import Check, Context, Report, benchmark, run_isolated

    def my_job(clock: Clock, *, data: str, out: str) -> dict:   # runs in a child process
        setup()                      # imports, sessions: not counted as work
        with clock:                  # the work itself
            rows = do_the_work(data, out)
        return {"rows": rows}        # JSON-able figures, compared with the reference's

    @benchmark("mine", title="...", order=50)
    def bench_mine(ctx: Context) -> Report:
        job = run_isolated(my_job, "job", outputs=ctx.run_dir / "job", data=..., out=...)
        ref = run_isolated(my_reference, "reference (duckdb)", outputs=..., ...)
        return Report(..., measurements=[job, ref], reference="reference (duckdb)", rows_key="rows",
                      checks=[Check.equal("rows", job.figures["rows"], ref.figures["rows"])])

Each approach runs alone in a fresh `python -m bench.measure` process, so its import, JVM and
memory costs are its own. Measured: wall time of that process (interpreter, imports, Spark's JVM
start: everything), the work time the approach times itself with `clock`, and the peak resident
memory of the whole process tree (Spark's memory is in its `java` child), sampled from /proc every
0.1 s, and never below the child's own high-water mark (VmHWM).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# On Glue each script and glue_common.py are top-level modules; the children see them the same way.
# BENCH_GLUE_SCRIPTS=<folder> benchmarks another copy of the scripts (e.g. a checkout of an older commit).
CHILD_PATH = (str(REPO), os.environ.get("BENCH_GLUE_SCRIPTS") or str(REPO / "glue_scripts"))
SAMPLE_SECONDS = 0.1
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Where a benchmark keeps its inputs and outputs, and how big it runs."""

    quick: bool  # small sizes: a smoke run (the tests), nothing written to RESULTS.md
    data_dir: Path  # generated inputs, kept between runs (regenerated when the parameters change)
    run_dir: Path  # this benchmark's outputs, emptied before it runs


@dataclass(frozen=True)
class Measurement:
    """One approach's run: times, memory, the figures it returned and the files it wrote."""

    approach: str
    wall_s: float  # the whole child process: interpreter start, imports, JVM start, work, exit
    work_s: float  # what the approach timed with its clock (the whole call when it did not)
    peak_rss_bytes: int  # the child's process tree (JVM included) at its largest
    figures: dict[str, Any]
    output_files: int = 0  # data files under `outputs` (names starting with `.` or `_` excluded)
    output_bytes: int = 0
    log: str = ""  # the child's stdout and stderr

    @property
    def mean_file_bytes(self) -> float:
        return self.output_bytes / self.output_files if self.output_files else 0.0


@dataclass(frozen=True)
class Check:
    """Did the approaches do the same work? One named comparison."""

    name: str
    ok: bool
    detail: str

    @classmethod
    def equal(cls, name: str, *values: Any) -> Check:
        """All values equal (e.g. the job's count, the reference's)."""
        return cls(name, len(set(map(repr, values))) == 1, " = ".join(_figure(v) for v in values))


@dataclass
class Report:
    """What a benchmark returns: its table, the agreement checks and notes."""

    name: str
    title: str
    measurements: list[Measurement]
    reference: str | None  # the approach the ratios divide by (job / reference); None: no ratios
    rows_key: str  # the figure every measurement reports as its row count (rows/s uses it)
    rows_label: str = "rows"
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    order: int
    run: Callable[[Context], Report]


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, *, title: str, order: int = 100) -> Callable[[Callable[[Context], Report]], Any]:
    """Register `func(ctx) -> Report` as benchmark `name` (`--only name`); lower `order` runs first."""

    def register(func: Callable[[Context], Report]) -> Callable[[Context], Report]:
        if name in BENCHMARKS and BENCHMARKS[name].run is not func:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(name, title, order, func)
        return func

    return register


def cached_input(
    ctx: Context, name: str, key: str, write: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any]]:
    """The folder `<data dir>/inputs/<name>/<key>` of generated input and its manifest, generated once.

    `write(folder)` fills an empty folder and returns the manifest. It works in `<key>.partial`, renamed
    when done: an interrupted run leaves nothing that looks finished. `key` names every parameter,
    generator version and seed, so a change to any of them generates anew.
    """
    folder = ctx.data_dir / "inputs" / name / key
    manifest = folder / "manifest.json"
    if not manifest.exists():
        shutil.rmtree(folder, ignore_errors=True)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        (partial / "manifest.json").write_text(json.dumps(write(partial), indent=2))
        partial.rename(folder)
    return folder, json.loads(manifest.read_text())


# --- the child side ---------------------------------------------------------------------------------


class Clock:
    """Given to every approach: `with clock:` around the work (may be entered more than once)."""

    def __init__(self) -> None:
        self.elapsed: float | None = None
        self._started = 0.0

    def __enter__(self) -> Clock:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = (self.elapsed or 0.0) + time.perf_counter() - self._started


def _child(target: str, request_path: str) -> int:
    """Run one approach: `module:function` with the request's keyword arguments; write the result."""
    request = json.loads(Path(request_path).read_text())
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    clock = Clock()
    started = time.perf_counter()
    try:
        figures = function(clock, **request["kwargs"])
    except BaseException:
        traceback.print_exc()
        Path(request["result"]).write_text(json.dumps({"error": traceback.format_exc()}))
        return 1
    total = time.perf_counter() - started
    work = clock.elapsed if clock.elapsed is not None else total
    result = {"work_s": work, "figures": figures, "self_peak_rss_bytes": _own_peak_rss()}
    Path(request["result"]).write_text(json.dumps(result, default=str))
    return 0


def _own_peak_rss() -> int:
    """This process's own peak resident memory since it started (VmHWM), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --- the parent side --------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """An approach failed; the message ends with the tail of its log."""


def _processes() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, resident bytes), from /proc/<pid>/stat."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, ... rss is the 22nd
        found[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE_SIZE)
    return found


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (shared pages counted in each)."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in processes:
            continue
        seen.add(pid)
        total += processes[pid][1]
        stack.extend(children.get(pid, ()))
    return total


class _PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def data_files(root: Path, suffixes: Iterable[str] = (".parquet",)) -> list[int]:
    """Sizes of the data files under root (what a crawler or reader would see)."""
    if not root.exists():
        return []
    ends = tuple(suffixes)
    return [
        p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name.endswith(ends) and not p.name.startswith((".", "_"))
    ]


def run_isolated(
    function: Callable[..., dict[str, Any]],
    approach: str,
    *,
    outputs: Path | None = None,
    suffixes: Iterable[str] = (".parquet",),
    log_dir: Path | None = None,
    timeout: float = 3600.0,
    **kwargs: Any,
) -> Measurement:
    """Run `function(clock, **kwargs)` alone in a fresh Python process and measure it.

    `function` must be a module-level function of an importable module (the child imports it);
    kwargs must be JSON-able. `outputs`: the directory whose data files (`suffixes`) are counted.
    """
    target = f"{function.__module__}:{function.__qualname__}"
    scratch = log_dir or (outputs.parent if outputs else Path.cwd())
    scratch.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "-" for ch in approach).strip("-")
    request_path, result_path = scratch / f"{slug}.request.json", scratch / f"{slug}.result.json"
    log_path = scratch / f"{slug}.log"
    result_path.unlink(missing_ok=True)
    request_path.write_text(json.dumps({"kwargs": kwargs, "result": str(result_path)}))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*CHILD_PATH, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONHASHSEED", "0")
    with log_path.open("wb") as log:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.measure", target, str(request_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        sampler = _PeakSampler(child.pid)
        sampler.start()
        deadline = started + timeout
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                _, status = os.waitpid(child.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        sampled_peak = sampler.stop()
    text = log_path.read_text(errors="replace")
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if child.returncode != 0 or "error" in result or not result:
        tail = "\n".join(text.splitlines()[-40:])
        raise BenchError(f"{approach} ({target}) exited {child.returncode}; log {log_path}:\n{tail}")
    # The sampled tree peak can miss a spike shorter than SAMPLE_SECONDS; the child's own high-water
    # mark cannot (but leaves its descendants out). Both are lower bounds: the larger is reported.
    # (Not wait4's ru_maxrss: for a child forked from this process it includes this process's size.)
    sizes = data_files(outputs, suffixes) if outputs is not None else []
    return Measurement(
        approach=approach,
        wall_s=wall,
        work_s=float(result["work_s"]),
        peak_rss_bytes=max(sampled_peak, int(result.get("self_peak_rss_bytes", 0))),
        figures=result["figures"],
        output_files=len(sizes),
        output_bytes=sum(sizes),
        log=str(log_path),
    )


# --- tables ------------------------------------------------------------------------------------------


def _figure(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.6g}"


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference > 0 else "-"


TABLE_HEADER = (
    "| approach | wall s | work s | {rows} | {rows}/s | peak RSS | out files | mean file | "
    "work / ref | wall / ref | peak / ref |"
)


def render(report: Report) -> str:
    """The benchmark's Markdown section: title, table, agreement checks, notes."""
    reference = next((m for m in report.measurements if m.approach == report.reference), None)
    lines = [f"### {report.name}: {report.title}", ""]
    lines.append(TABLE_HEADER.format(rows=report.rows_label))
    lines.append("|" + "---|" * 11)
    for m in report.measurements:
        rows = m.figures.get(report.rows_key)
        rate = f"{rows / m.work_s:,.0f}" if isinstance(rows, (int, float)) and m.work_s > 0 else "-"
        ratios = (
            [
                _ratio(m.work_s, reference.work_s),
                _ratio(m.wall_s, reference.wall_s),
                _ratio(m.peak_rss_bytes, reference.peak_rss_bytes),
            ]
            if reference
            else ["-", "-", "-"]
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    m.approach,
                    f"{m.wall_s:.2f}",
                    f"{m.work_s:.2f}",
                    _figure(rows) if rows is not None else "-",
                    rate,
                    human_bytes(m.peak_rss_bytes),
                    f"{m.output_files:,}",
                    human_bytes(m.mean_file_bytes) if m.output_files else "-",
                    *ratios,
                ]
            )
            + " |"
        )
    lines.append("")
    if report.checks:
        lines.append("Agreement:")
        lines.extend(f"- {'ok' if c.ok else 'MISMATCH'}: {c.name}: {c.detail}" for c in report.checks)
        lines.append("")
    lines.extend(f"- {note}" for note in report.notes)
    if report.notes:
        lines.append("")
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    data = asdict(report)
    data["ok"] = report.ok
    return data


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
