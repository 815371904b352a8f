"""The job's settings: flags, each falling back to a GHARCHIVE_* environment variable, all checked up front."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlparse

from job_runtime.contracts import GHARCHIVE_JOBS_ITEM
from job_runtime.errors import BadInputError
from lake_ingest.gharchive.hours import JOB, default_baseline

MAX_HOURS_LIMIT = 744  # 31 days: a month of backfill per run at most
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TABLE_RE = re.compile(r"[A-Za-z0-9_.-]{3,255}")


@dataclass(frozen=True)
class Settings:
    base_url: str
    output: str
    jobs_table: str
    runs_table: str
    job_name: str
    baseline_day: date
    max_hours: int
    request_timeout: float
    attempts: int
    backoff_seconds: float
    lease_seconds: int
    now: datetime


def _flag(name: str, env_name: str) -> str:
    return f"--{name} ({env_name})"


def _int_in(value: str, flag: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise BadInputError(f"{flag}: {value!r} is not an integer") from None
    if not low <= number <= high:
        raise BadInputError(f"{flag}: {value!r} is out of range {low}..{high}")
    return number


def _positive_float(value: str, flag: str, allow_zero: bool = False) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise BadInputError(f"{flag}: {value!r} is not a number of seconds") from None
    if number != number or number in (float("inf"), float("-inf")) or number < 0 or (number == 0 and not allow_zero):
        raise BadInputError(f"{flag}: {value!r} must be {'zero or more' if allow_zero else 'more than zero'} seconds")
    return number


def _parse_now(value: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInputError(f"{flag}: {value!r} is not an ISO timestamp (e.g. 2024-01-01T06:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_day(value: str, flag: str) -> date:
    try:
        if not _DAY_RE.fullmatch(value.strip()):
            raise ValueError
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadInputError(f"{flag}: {value!r} is not a date YYYY-MM-DD") from None


def _check_output(value: str, flag: str) -> str:
    if value.startswith("s3://"):
        parsed = urlparse(value)
        if not parsed.netloc or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parsed.netloc):
            raise BadInputError(f"{flag}: {value!r} has no valid bucket name (expected s3://bucket/prefix/)")
        return value
    if "://" in value or not value.strip():
        raise BadInputError(f"{flag}: {value!r} is neither s3://bucket/prefix/ nor a local directory")
    if Path(value).exists() and not Path(value).is_dir():
        raise BadInputError(f"{flag}: {value!r} exists and is not a directory")
    return value


def _check_table(value: str, flag: str) -> str:
    if not _TABLE_RE.fullmatch(value):
        raise BadInputError(f"{flag}: {value!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
    return value


def build_parser() -> argparse.ArgumentParser:
    def env(name: str, default: str | None = None) -> str | None:
        """An empty variable counts as unset: the job definition may declare every variable."""
        return os.environ.get(name) or default

    p = argparse.ArgumentParser(
        prog=JOB,
        description=(__doc__ or "").splitlines()[0],
        epilog="Every flag falls back to the environment variable in brackets. "
        "The baseline day only seeds the jobs item's baseline_day when it has none; "
        "re-baselining a job means editing baseline_day in its item.",
    )
    p.add_argument(
        "--base-url",
        default=env("GHARCHIVE_BASE_URL", "https://data.gharchive.org"),
        help="where the hourly files are [env GHARCHIVE_BASE_URL]",
    )
    p.add_argument(
        "--output",
        default=env("GHARCHIVE_OUTPUT"),
        help="s3://bucket/prefix/ or a local directory (required) [env GHARCHIVE_OUTPUT]",
    )
    p.add_argument(
        "--jobs-table",
        default=env("GHARCHIVE_JOBS_TABLE"),
        help="DynamoDB table holding the bookmark (required) [env GHARCHIVE_JOBS_TABLE]",
    )
    p.add_argument(
        "--runs-table",
        default=env("GHARCHIVE_RUNS_TABLE"),
        help="DynamoDB table with one row per run (required) [env GHARCHIVE_RUNS_TABLE]",
    )
    p.add_argument(
        "--job-name",
        default=env("GHARCHIVE_JOB_NAME", GHARCHIVE_JOBS_ITEM),
        help="key of the bookmark item [env GHARCHIVE_JOB_NAME]",
    )
    p.add_argument(
        "--baseline-day",
        default=env("GHARCHIVE_BASELINE_DAY", ""),
        help="YYYY-MM-DD written to the jobs item's baseline_day when it has none (the item's value wins); "
        "empty: 3 days before today (UTC) [env GHARCHIVE_BASELINE_DAY]",
    )
    p.add_argument(
        "--max-hours",
        default=env("GHARCHIVE_MAX_HOURS", "24"),
        help=f"hours per run, 1..{MAX_HOURS_LIMIT} [env GHARCHIVE_MAX_HOURS]",
    )
    p.add_argument(
        "--request-timeout",
        default=env("GHARCHIVE_REQUEST_TIMEOUT", "60"),
        help="seconds per connect/read [env GHARCHIVE_REQUEST_TIMEOUT]",
    )
    p.add_argument(
        "--attempts", default=env("GHARCHIVE_ATTEMPTS", "4"), help="download attempts per hour [env GHARCHIVE_ATTEMPTS]"
    )
    p.add_argument(
        "--backoff-seconds",
        default=env("GHARCHIVE_BACKOFF_SECONDS", "2"),
        help="first retry delay, doubled per attempt, with jitter [env GHARCHIVE_BACKOFF_SECONDS]",
    )
    p.add_argument(
        "--lease-seconds",
        default=env("GHARCHIVE_LEASE_SECONDS", "3600"),
        help="how long a claim on an hour holds before another run may take it over; must exceed "
        "one hour's download with its retries [env GHARCHIVE_LEASE_SECONDS]",
    )
    p.add_argument(
        "--now",
        default=env("GHARCHIVE_NOW", ""),
        help="ISO timestamp; hours ending after it are not requested (default: the real UTC now) [env GHARCHIVE_NOW]",
    )
    return p


def parse_settings(argv: Sequence[str] | None, real_now: datetime | None = None) -> Settings:
    """argparse errors (unknown flag, missing required value) exit 2; a bad value raises BadInputError (exit 3)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, env_name in (
        ("output", "GHARCHIVE_OUTPUT"),
        ("jobs_table", "GHARCHIVE_JOBS_TABLE"),
        ("runs_table", "GHARCHIVE_RUNS_TABLE"),
    ):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} (or {env_name}) is required")

    base_url = args.base_url.strip().rstrip("/")
    if urlparse(base_url).scheme not in ("http", "https") or not urlparse(base_url).netloc:
        raise BadInputError(f"{_flag('base-url', 'GHARCHIVE_BASE_URL')}: {args.base_url!r} is not an http(s) URL")
    if not args.job_name.strip():
        raise BadInputError(f"{_flag('job-name', 'GHARCHIVE_JOB_NAME')}: {args.job_name!r} is empty")
    now_flag = _flag("now", "GHARCHIVE_NOW")
    now = _parse_now(args.now, now_flag) if args.now.strip() else (real_now or datetime.now(UTC))
    baseline_flag = _flag("baseline-day", "GHARCHIVE_BASELINE_DAY")
    baseline = _parse_day(args.baseline_day, baseline_flag) if args.baseline_day.strip() else default_baseline(now)
    if baseline > now.date():
        raise BadInputError(f"{baseline_flag}: {args.baseline_day!r} is after today ({now.date().isoformat()})")
    return Settings(
        base_url=base_url,
        output=_check_output(args.output, _flag("output", "GHARCHIVE_OUTPUT")),
        jobs_table=_check_table(args.jobs_table, _flag("jobs-table", "GHARCHIVE_JOBS_TABLE")),
        runs_table=_check_table(args.runs_table, _flag("runs-table", "GHARCHIVE_RUNS_TABLE")),
        job_name=args.job_name.strip(),
        baseline_day=baseline,
        max_hours=_int_in(args.max_hours, _flag("max-hours", "GHARCHIVE_MAX_HOURS"), 1, MAX_HOURS_LIMIT),
        request_timeout=_positive_float(args.request_timeout, _flag("request-timeout", "GHARCHIVE_REQUEST_TIMEOUT")),
        attempts=_int_in(args.attempts, _flag("attempts", "GHARCHIVE_ATTEMPTS"), 1, 20),
        backoff_seconds=_positive_float(
            args.backoff_seconds, _flag("backoff-seconds", "GHARCHIVE_BACKOFF_SECONDS"), allow_zero=True
        ),
        lease_seconds=_int_in(args.lease_seconds, _flag("lease-seconds", "GHARCHIVE_LEASE_SECONDS"), 1, 7 * 86400),
        now=now,
    )
