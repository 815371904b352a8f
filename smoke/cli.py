"""`python -m smoke --stack <name>`: run every pipeline of a deployed stack end to end on the bundled
samples and check the results where users see them.

    python -m smoke --stack acme/pr-12 [--outputs-file outputs.json] [--timeout-minutes 40]
        [--only render-logs,sales] [--summary-file smoke.md]

Reads the stack's outputs (`pulumi stack output --json`, or --outputs-file), uploads the samples to
each pipeline's input, starts what is started by hand (the sensor, GH Archive and COVID-19 state
machines; render logs and sales start from their S3 events), waits with a progress line every 30 s,
then checks the warehouse tables (Data API, admin secret), the lake (Athena) and the quarantine.
Prints one line per pipeline; exit 0 when all passed, 1 when any failed (each named with its step),
2 when the run could not begin (bad arguments, unreadable outputs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from smoke.outputs import PIPELINE_OUTPUTS, OutputsError, read_outputs
from smoke.queries import Clock, RealClock
from smoke.run import PIPELINES, Context, elapsed_text, markdown_summary, run_smoke

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack (<org>/<stack> or <stack>) whose outputs to read")
    parser.add_argument("--outputs-file", type=Path, help="the outputs as `pulumi stack output --json` prints them")
    parser.add_argument("--timeout-minutes", type=float, default=40, help="bound on waiting for every run (default 40)")
    parser.add_argument("--only", default="", help=f"comma-separated pipelines ({', '.join(PIPELINE_OUTPUTS)})")
    parser.add_argument("--summary-file", type=Path, help="append a Markdown summary here (PR comment, job summary)")
    parser.add_argument("--poll-seconds", type=float, default=15, help="seconds between status polls (default 15)")
    args = parser.parse_args(argv)
    if args.timeout_minutes <= 0:
        parser.error("--timeout-minutes must be positive")
    return args


def boto3_clients(region: str | None) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    config = Config(retries={"mode": "standard", "max_attempts": 10})
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, config=config)
        return cache[service]

    return client


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Callable[[str], Any] | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> int:
    args = parse_args(argv)
    stream = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    stack = args.stack.rsplit("/", 1)[-1]
    try:
        outputs = read_outputs(args.stack, args.outputs_file)
    except OutputsError as error:
        say(f"smoke: {error}")
        return EXIT_USAGE
    deployed = outputs.deployed_pipelines()
    wanted = [name.strip() for name in args.only.split(",") if name.strip()] or deployed
    unknown = [name for name in wanted if name not in PIPELINE_OUTPUTS]
    if unknown:
        say(f"smoke: unknown pipeline(s) {', '.join(unknown)} (known: {', '.join(PIPELINE_OUTPUTS)})")
        return EXIT_USAGE
    absent = [name for name in wanted if name not in deployed]
    if absent:
        say(f"smoke: stack {stack} does not build {', '.join(absent)} (it builds: {', '.join(deployed) or 'none'})")
        return EXIT_USAGE
    missing = {name: outputs.missing(name) for name in wanted if outputs.missing(name)}
    if missing:
        say("smoke: missing stack outputs: " + "; ".join(f"{n}: {', '.join(k)}" for n, k in missing.items()))
        return EXIT_USAGE
    if not wanted:
        say(f"smoke: stack {stack} builds no pipeline")
        return EXIT_USAGE

    clock = clock or RealClock()
    run_name = f"smoke-{clock.wall():%Y%m%dT%H%M%SZ}"
    ctx = Context(outputs, clients or boto3_clients(outputs.region), clock, say, run_name)
    say(f"smoke: {run_name} on stack {stack}: {', '.join(wanted)}; timeout {args.timeout_minutes:g} min")
    results = run_smoke(
        [PIPELINES[name]() for name in wanted], ctx, args.timeout_minutes * 60, poll_seconds=args.poll_seconds
    )
    elapsed = elapsed_text(clock.now() - ctx.started)
    for result in results:
        say(result.line())
    failed = [r for r in results if not r.passed]
    if failed:
        say(f"smoke: FAILED on {stack} after {elapsed}: " + ", ".join(f"{r.pipeline} at {r.step}" for r in failed))
    else:
        say(f"smoke: all {len(results)} pipeline(s) passed on {stack} in {elapsed}")
    if args.summary_file:
        with args.summary_file.open("a", encoding="utf-8") as summary:
            summary.write(markdown_summary(stack, results, elapsed, args.timeout_minutes))
    return EXIT_FAILED if failed else EXIT_PASSED
