"""Hours as GH Archive names them and as the bookmark records them, and which hours a run fetches."""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

JOB = "gharchive-ingest"
HOUR = timedelta(hours=1)
BASELINE_DAYS_BACK = 3
_HOUR_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")


def format_hour(hour: datetime) -> str:
    """Bookmark form of an hour: `2024-01-01T05` (zero-padded, so strings sort like hours)."""
    return hour.astimezone(UTC).strftime("%Y-%m-%dT%H")


def parse_hour(text: str) -> datetime:
    """Inverse of `format_hour`; ValueError for anything else."""
    if not _HOUR_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not an hour YYYY-MM-DDTHH")
    return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def archive_name(hour: datetime) -> str:
    """GH Archive's file name for an hour: `2024-01-01-5.json.gz` (no leading zero on the hour)."""
    hour = hour.astimezone(UTC)
    return f"{hour:%Y-%m-%d}-{hour.hour}.json.gz"


def relative_key(hour: datetime) -> str:
    """Where an hour goes below the output prefix: `date=2024-01-01/2024-01-01-5.json.gz`."""
    return f"date={hour.astimezone(UTC):%Y-%m-%d}/{archive_name(hour)}"


def default_baseline(now: datetime) -> date:
    """The baseline when none is configured: three days before `now`'s UTC date."""
    return now.astimezone(UTC).date() - timedelta(days=BASELINE_DAYS_BACK)


def first_hour(bookmark: datetime | None, baseline: date) -> datetime:
    """The hour after the bookmark, or hour 0 of the baseline day when there is no bookmark yet."""
    if bookmark is not None:
        return bookmark + HOUR
    return datetime(baseline.year, baseline.month, baseline.day, tzinfo=UTC)


def pending_hours(bookmark: datetime | None, baseline: date, now: datetime, max_hours: int) -> list[datetime]:
    """Hours to fetch, oldest first: from `first_hour`, only hours that have ended by `now`, at most `max_hours`."""
    hours: list[datetime] = []
    hour = first_hour(bookmark, baseline)
    while len(hours) < max_hours and hour + HOUR <= now:
        hours.append(hour)
        hour += HOUR
    return hours


def new_run_id(started: datetime) -> str:
    """Sortable run id: `20240101T050000Z-1a2b3c4d`."""
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def backoff_delay(attempt: int, base_seconds: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: base * 2**(attempt-1), scaled into [50 %, 100 %) of that."""
    return base_seconds * 2 ** (attempt - 1) * (0.5 + rand() / 2)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
