"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print a table each, write RESULTS.md.

Every module of this package (except `__main__`, `measure` and `glue_shared`) is imported, and each registers
its benchmarks with `@bench.measure.benchmark(name, title=..., order=...)`; a new `bench/foo.py`
needs no change here. A full run rewrites `bench/RESULTS.md`: the machine, then one section per
benchmark (sections of benchmarks not run this time are kept from the previous file, with the
date they were measured). `--quick` runs small sizes as a smoke test and writes no RESULTS.md.
Exit status 1 when a benchmark fails or its approaches disagree on what they produced.

`BENCH_GLUE_SCRIPTS=<folder> python -m bench --only sales` runs the jobs from another copy of
glue_scripts/ (e.g. `git show <commit>:glue_scripts/...` into a folder): before/after figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import bench
from bench.measure import BENCHMARKS, REPO, Context, Report, as_json, render

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
DATA = HERE / "data"  # git-ignored: generated inputs (kept) and each run's outputs
NOT_BENCHMARKS = {"__main__", "measure", "glue_shared"}  # the machinery, not benchmarks
SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n", re.S)


def load_benchmarks() -> dict[str, str]:
    """Import every benchmark module of the package (they register themselves); {module: error} of those
    that failed to import (their benchmarks are then missing)."""
    broken = {}
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name not in NOT_BENCHMARKS and not module.name.startswith("_"):
            try:
                importlib.import_module(f"bench.{module.name}")
            except Exception:
                broken[module.name] = traceback.format_exc()
    return broken


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _java() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = (done.stderr or done.stdout).splitlines()
    return " / ".join(line.strip() for line in lines[:2]) or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": f"{cores} ({usable} usable by this process)",
        "ram": _ram(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "load average at start (1, 5, 15 min)": load,
        "python": platform.python_version(),
        "java": _java(),
        "pyspark": _version("pyspark"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "duckdb": _version("duckdb"),
        "pulumi": _version("pulumi"),
        "pulumi-aws": _version("pulumi-aws"),
        "git": _git(),
    }


def write_results(path: Path, facts: dict[str, str], sections: dict[str, str], command: str) -> None:
    """RESULTS.md: the machine, then every benchmark's section (this run's, or kept from the last file)."""
    kept: dict[str, str] = {}
    if path.exists():
        kept = {m["name"]: m["body"] for m in SECTION.finditer(path.read_text())}
    merged = {**kept, **sections}
    order = {b.name: (b.order, b.name) for b in BENCHMARKS.values()}
    lines = [
        "# Benchmark results",
        "",
        f"Regenerate with `{command}` (`make bench` runs every benchmark). Written by `python -m bench`; "
        "do not edit by hand.",
        "Times are wall-clock seconds: `wall` is the approach's whole fresh process (interpreter, imports, "
        "Spark's JVM start), `work` what it times itself (the job's `main()`, the reference's queries). "
        "`peak RSS` is the process tree's (Spark's JVM included). Ratios are approach / reference; "
        "every table's approaches are checked to have produced the same rows.",
        "",
        "## Machine (latest run)",
        "",
        *(f"- {k}: {v}" for k, v in facts.items()),
        "",
        "## Benchmarks",
        "",
    ]
    for name in sorted(merged, key=lambda n: order.get(n, (1000, n))):
        lines += [f"<!-- bench:{name} -->", merged[name].rstrip("\n"), f"<!-- /bench:{name} -->", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    broken = load_benchmarks()
    names = sorted(BENCHMARKS, key=lambda n: (BENCHMARKS[n].order, n))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; no RESULTS.md")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=names, help=f"of: {', '.join(names)}")
    parser.add_argument("--data-dir", type=Path, default=DATA, help=f"inputs and outputs (default {DATA})")
    parser.add_argument("--json", type=Path, help="also write every report as JSON here")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"the Markdown file a full run writes ({RESULTS})"
    )
    args = parser.parse_args(argv)
    selected = [n for n in names if not args.only or n in args.only]

    facts = machine()
    command = (
        "python -m bench" + (" --quick" if args.quick else "") + (f" --only {' '.join(args.only)}" if args.only else "")
    )
    print(f"# {command}  ({'quick' if args.quick else 'full'} sizes)\n")
    print("\n".join(f"- {k}: {v}" for k, v in facts.items()) + "\n", flush=True)

    reports: list[Report] = []
    sections: dict[str, str] = {}
    failures: dict[str, str] = {}
    for module, error in broken.items():
        print(f"bench/{module}.py failed to import; its benchmarks are missing:\n{error}", file=sys.stderr)
        if not args.only:  # a run of everything must not pass without them
            failures[f"bench/{module}.py"] = error.strip().splitlines()[-1]
    for name in selected:
        run_dir = args.data_dir.resolve() / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        ctx = Context(quick=args.quick, data_dir=args.data_dir.resolve(), run_dir=run_dir)
        print(f"running {name} ...", flush=True)
        started = time.perf_counter()
        try:
            report = BENCHMARKS[name].run(ctx)
        except Exception as error:  # a failed benchmark is reported; the others still run
            failures[name] = f"{type(error).__name__}: {error}"
            print(f"FAILED {name} after {time.perf_counter() - started:.0f} s:\n{traceback.format_exc()}", flush=True)
            continue
        text = render(report)
        print(f"\n{text}\n(benchmark took {time.perf_counter() - started:.0f} s)\n", flush=True)
        reports.append(report)
        sections[name] = f"{text}\nMeasured {facts['date']} with `{command}`.\n"
        if not report.ok:
            failures[name] = "approaches disagree: " + "; ".join(c.name for c in report.checks if not c.ok)

    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": facts, "quick": args.quick, "reports": [as_json(r) for r in reports], "failures": failures},
                indent=2,
                default=str,
            )
        )
    if not args.quick and sections:
        write_results(args.results, facts, sections, "python -m bench")
        print(f"wrote {args.results}")
    for name, why in failures.items():
        print(f"FAILED {name}: {why}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
