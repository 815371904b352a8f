"""`gharchive-ingest`: copy GH Archive's hourly files into the lake, unchanged, one hour at a time.

Every hour after the job's bookmark is downloaded from `<base-url>/YYYY-MM-DD-H.json.gz` (GH Archive's
naming: hour 0..23 without a leading zero) and stored as `<output>date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz`.
State lives in two DynamoDB tables:

* jobs (hash key `job_name`): `bookmark` = the last stored hour as `YYYY-MM-DDTHH`, `updated_at`, and
  while a run works on an hour a lease (`lease_owner` = run id, `lease_hour`, `lease_expires` epoch s).
  Each hour is CLAIMED with a conditional write (bookmark unchanged since this run read it, no live lease
  of another run), downloaded and stored, then ADVANCED with a conditional write (this run still owns the
  lease, bookmark unchanged) that also drops the lease. Two concurrent runs therefore never store the
  same hour twice; the loser stops cleanly. A lease older than `--lease-seconds` (a crashed run) is
  taken over.
* job_run_details (hash `job_name`, range `run_id`): one row per run, RUNNING at start, then SUCCEEDED
  or FAILED with the hours fetched, bytes, why it stopped and the error.

Without a jobs item (or with one that has no bookmark) the first hour is hour 0 of `--baseline-day`;
once the item has a bookmark the bookmark wins, so re-baselining means deleting the job's item.
An hour that is not published yet (404) or not over yet (`--now`) ends the run cleanly without
advancing. 5xx, 408/429, timeouts and short reads are retried with exponential backoff and jitter,
each retry restarting the hour's download from scratch; when the attempts run out the run fails with
exit 4, which the Batch retry strategy retries. Flags fall back to GHARCHIVE_* environment variables
so the Batch job definition needs no command-line arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import random
import re
import secrets
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from job_errors import EXIT_OK, TRANSIENT_AWS_CODES, BadInputError, JobError, TransientError

log = logging.getLogger("lake_ingest.gharchive")

JOB = "gharchive-ingest"
HOUR = timedelta(hours=1)
MAX_HOURS_LIMIT = 744  # 31 days: a month of backfill per run at most
BASELINE_DAYS_BACK = 3
GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1024 * 1024
RETRYABLE_HTTP = {408, 425, 429}  # plus every 5xx
SUCCEEDED, FAILED, RUNNING = "SUCCEEDED", "FAILED", "RUNNING"
_HOUR_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TABLE_RE = re.compile(r"[A-Za-z0-9_.-]{3,255}")

# Placeholders of the jobs item's lease attributes (DynamoDB rejects names an expression does not use,
# so `#bookmark` is added only where the expression reads it).
_LEASE_NAMES = {
    "#owner": "lease_owner",
    "#lease_hour": "lease_hour",
    "#expires": "lease_expires",
    "#updated": "updated_at",
}


# --- hours -----------------------------------------------------------------------------------------------


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


# --- settings --------------------------------------------------------------------------------------------


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
        "Re-baselining a job means deleting its item from the jobs table: an existing bookmark wins.",
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
        default=env("GHARCHIVE_JOB_NAME", "gharchive"),
        help="key of the bookmark item [env GHARCHIVE_JOB_NAME]",
    )
    p.add_argument(
        "--baseline-day",
        default=env("GHARCHIVE_BASELINE_DAY", ""),
        help="YYYY-MM-DD whose hour 0 is fetched first when the job has no bookmark yet; "
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


# --- errors ----------------------------------------------------------------------------------------------


class NotPublished(Exception):
    """HTTP 404: GH Archive has not published the hour yet. Not an error: the run stops cleanly."""


class LeaseConflict(Exception):
    """Another run owns the hour or moved the bookmark: this run stops cleanly."""


def aws_error(exc: Exception, action: str) -> JobError:
    """Map a boto3 failure to the exit code Batch should act on (throttling and 5xx are transient)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, (ConnectionError, HTTPClientError)):  # connect/read timeouts, resets, endpoint down
        return TransientError(f"{action}: {exc}")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = f"{action}: {code}: {error.get('Message', '') or exc}"
        return TransientError(text) if code in TRANSIENT_AWS_CODES or status >= 500 else JobError(text)
    return JobError(f"{action}: {type(exc).__name__}: {exc}")


def _network_error_text(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return f"{type(exc).__name__}: {exc}"


# --- download --------------------------------------------------------------------------------------------


class CheckedStream:
    """Read side of one download: counts bytes, insists on the gzip magic and on Content-Length.

    `read(n)` fills n bytes unless the body ends (like a buffered file), because s3transfer takes a short
    read for the end of the file. Network failures while reading become TransientError; a body that is not
    gzip is a JobError (a 200 HTML page will not fix itself); fewer bytes than Content-Length is transient.
    """

    def __init__(self, raw: Any, url: str, expected_length: int | None) -> None:
        self._raw = raw
        self.url = url
        self.expected_length = expected_length
        self.bytes_read = 0
        self._head = b""
        self._eof = False

    def read(self, size: int | None = -1) -> bytes:
        if self._eof:
            return b""
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            try:
                data = self._raw.read(READ_CHUNK if wanted is None else wanted - got)
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(
                    f"reading {self.url} failed after {self.bytes_read + got} byte(s): {_network_error_text(exc)}"
                ) from exc
            if not data:
                self._finish(got)
                break
            if len(self._head) < len(GZIP_MAGIC):
                self._head += data[: len(GZIP_MAGIC) - len(self._head)]
                if len(self._head) == len(GZIP_MAGIC) and self._head != GZIP_MAGIC:
                    raise JobError(f"{self.url} is not a gzip file (starts with {self._head.hex(' ')}, not 1f 8b)")
            parts.append(data)
            got += len(data)
        self.bytes_read += got
        return b"".join(parts)

    def _finish(self, pending: int) -> None:
        self._eof = True
        total = self.bytes_read + pending
        if self.expected_length is not None and total != self.expected_length:
            raise TransientError(f"short read from {self.url}: {total} of {self.expected_length} byte(s)")
        if self._head != GZIP_MAGIC:
            raise JobError(f"{self.url} is not a gzip file ({total} byte(s))")


class Sink(Protocol):
    def location(self, hour: datetime) -> str: ...

    def store(self, hour: datetime, stream: CheckedStream) -> None: ...


class S3Sink:
    """Streams into S3 with upload_fileobj: one PutObject below 8 MiB, multipart (bounded memory) above."""

    def __init__(self, output: str, client: Any) -> None:
        parsed = urlparse(output)
        self.bucket = parsed.netloc
        prefix = parsed.path.lstrip("/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.client = client

    def key(self, hour: datetime) -> str:
        return self.prefix + relative_key(hour)

    def location(self, hour: datetime) -> str:
        return f"s3://{self.bucket}/{self.key(hour)}"

    def store(self, hour: datetime, stream: CheckedStream) -> None:
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(
                stream,
                self.bucket,
                self.key(hour),
                ExtraArgs={"ContentType": "application/gzip"},
                Config=TransferConfig(max_concurrency=4),
            )
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            cause = exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
            raise aws_error(cause if isinstance(cause, Exception) else exc, f"storing {self.location(hour)}") from exc


class LocalSink:
    """Writes to a temp file next to the target, fsyncs, renames: readers never see a partial file."""

    def __init__(self, output: str) -> None:
        self.root = Path(output).resolve()

    def path(self, hour: datetime) -> Path:
        return self.root / relative_key(hour)

    def location(self, hour: datetime) -> str:
        return str(self.path(hour))

    def store(self, hour: datetime, stream: CheckedStream) -> None:
        target = self.path(hour)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        except OSError as exc:
            raise JobError(f"storing {target}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(READ_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise JobError(f"storing {target}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise


def make_sink(output: str, s3_client: Any | None = None) -> Sink:
    if output.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Sink(output, s3_client)
    return LocalSink(output)


def fetch_once(url: str, hour: datetime, sink: Sink, timeout: float) -> int:
    """One attempt: GET the hour and stream it into the sink. Returns the bytes stored."""
    request = urllib.request.Request(url, headers={"User-Agent": f"{JOB} (lake ingestion)"})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) checked in parse_settings
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise NotPublished(url) from None
        text = f"HTTP {exc.code} {exc.reason} from {url}"
        if exc.code >= 500 or exc.code in RETRYABLE_HTTP:
            raise TransientError(text) from None
        raise JobError(text) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status lines
        raise TransientError(f"GET {url} failed: {_network_error_text(exc)}") from exc
    with response:
        header = response.headers.get("Content-Length")
        expected = int(header) if header is not None and header.strip().isdigit() else None
        stream = CheckedStream(response, url, expected)
        sink.store(hour, stream)
        return stream.bytes_read


def fetch_with_retries(
    fetch: Callable[[], int],
    hour_text: str,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Retries TransientError with backoff; NotPublished and other JobErrors pass through at once."""
    for attempt in range(1, attempts + 1):
        try:
            return fetch()
        except TransientError as exc:
            if attempt == attempts:
                raise TransientError(f"hour {hour_text}: gave up after {attempts} attempt(s): {exc}") from exc
            delay = backoff_delay(attempt, backoff_seconds)
            log.warning(
                "hour %s attempt %d/%d failed: %s; retrying in %.2f s", hour_text, attempt, attempts, exc, delay
            )
            sleep(delay)
        except JobError as exc:
            raise type(exc)(f"hour {hour_text}: {exc}") from exc
    raise AssertionError("unreachable: attempts >= 1")


# --- DynamoDB bookkeeping --------------------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        (kind, value), *_ = typed.items()
        out[name] = int(value) if kind == "N" else value
    return out


class Bookkeeper:
    """The jobs item (bookmark + lease) and this run's job_run_details row; every write is conditional."""

    def __init__(
        self,
        client: Any,
        jobs_table: str,
        runs_table: str,
        job_name: str,
        run_id: str,
        lease_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.jobs_table, self.runs_table = jobs_table, runs_table
        self.job_name, self.run_id = job_name, run_id
        self.lease_seconds = lease_seconds
        self.clock = clock

    def _call(self, action: str, method: str, conditional: bool = False, **kwargs: Any) -> Any:
        """Calls the client; AWS failures become JobError/TransientError, except a failed condition when
        `conditional` (the caller decides what losing the condition means)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            if conditional and self._condition_failed(exc):
                raise
            raise aws_error(exc, action) from exc
        except BotoCoreError as exc:
            raise aws_error(exc, action) from exc

    @staticmethod
    def _condition_failed(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return (
            isinstance(exc, ClientError)
            and exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        )

    def read_item(self) -> dict[str, Any]:
        response = self._call(
            f"reading {self.job_name!r} from {self.jobs_table}",
            "get_item",
            TableName=self.jobs_table,
            Key={"job_name": _s(self.job_name)},
            ConsistentRead=True,
        )
        return _plain(response.get("Item", {}))

    @staticmethod
    def _bookmark_condition(expected: str | None, values: dict[str, Any]) -> str:
        if expected is None:
            return "attribute_not_exists(#bookmark)"
        values[":expected"] = _s(expected)
        return "#bookmark = :expected"

    def claim(self, hour_text: str, expected_bookmark: str | None) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            ":run": _s(self.run_id),
            ":hour": _s(hour_text),
            ":expires": _n(int(now) + self.lease_seconds),
            ":now": _n(int(now)),
            ":at": _s(iso(datetime.fromtimestamp(now, UTC))),
        }
        condition = (
            f"({self._bookmark_condition(expected_bookmark, values)}) "
            "AND (attribute_not_exists(#owner) OR #expires < :now)"
        )
        try:
            self._call(
                f"claiming hour {hour_text} in {self.jobs_table}",
                "update_item",
                conditional=True,
                TableName=self.jobs_table,
                Key={"job_name": _s(self.job_name)},
                UpdateExpression="SET #owner = :run, #lease_hour = :hour, #expires = :expires, #updated = :at",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#bookmark": "bookmark", **_LEASE_NAMES},
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not self._condition_failed(exc):
                raise
            raise LeaseConflict(self._conflict_reason(hour_text, expected_bookmark)) from None

    def _conflict_reason(self, hour_text: str, expected_bookmark: str | None) -> str:
        item = self.read_item()
        owner, expires = item.get("lease_owner"), item.get("lease_expires")
        if owner and owner != self.run_id and expires is not None and expires >= int(self.clock()):
            until = iso(datetime.fromtimestamp(expires, UTC))
            return f"another run holds the lease on hour {item.get('lease_hour')} (run {owner}, until {until})"
        if item.get("bookmark") != expected_bookmark:
            return f"another run moved the bookmark to {item.get('bookmark')} before hour {hour_text} was claimed"
        return f"another run claimed hour {hour_text} first"

    def advance(self, hour_text: str, expected_bookmark: str | None) -> None:
        values: dict[str, Any] = {
            ":run": _s(self.run_id),
            ":hour": _s(hour_text),
            ":at": _s(iso(datetime.fromtimestamp(self.clock(), UTC))),
        }
        condition = f"#owner = :run AND ({self._bookmark_condition(expected_bookmark, values)})"
        try:
            self._call(
                f"advancing the bookmark to {hour_text} in {self.jobs_table}",
                "update_item",
                conditional=True,
                TableName=self.jobs_table,
                Key={"job_name": _s(self.job_name)},
                UpdateExpression="SET #bookmark = :hour, #updated = :at REMOVE #owner, #lease_hour, #expires",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#bookmark": "bookmark", **_LEASE_NAMES},
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not self._condition_failed(exc):
                raise
            raise JobError(
                f"hour {hour_text}: lost the lease before advancing the bookmark (another run took it over "
                f"after --lease-seconds {self.lease_seconds}; the stored object is identical and the bookmark "
                "was left to that run)"
            ) from None

    def release(self) -> bool:
        """Drop this run's lease without touching the bookmark. False when the lease was not ours anymore."""
        try:
            self._call(
                f"releasing the lease in {self.jobs_table}",
                "update_item",
                conditional=True,
                TableName=self.jobs_table,
                Key={"job_name": _s(self.job_name)},
                UpdateExpression="SET #updated = :at REMOVE #owner, #lease_hour, #expires",
                ConditionExpression="#owner = :run",
                ExpressionAttributeNames=_LEASE_NAMES,
                ExpressionAttributeValues={
                    ":run": _s(self.run_id),
                    ":at": _s(iso(datetime.fromtimestamp(self.clock(), UTC))),
                },
            )
        except Exception as exc:
            if not self._condition_failed(exc):
                raise
            return False
        return True

    def start_run(self, started_at: str) -> None:
        self._call(
            f"recording run {self.run_id} in {self.runs_table}",
            "put_item",
            TableName=self.runs_table,
            Item={
                "job_name": _s(self.job_name),
                "run_id": _s(self.run_id),
                "status": _s(RUNNING),
                "started_at": _s(started_at),
                "hours_fetched": {"L": []},
                "hours_count": _n(0),
                "bytes": _n(0),
            },
            ConditionExpression="attribute_not_exists(run_id)",
        )

    def record_progress(self, hours: list[str], total_bytes: int) -> None:
        self._call(
            f"recording progress of run {self.run_id} in {self.runs_table}",
            "update_item",
            TableName=self.runs_table,
            Key={"job_name": _s(self.job_name), "run_id": _s(self.run_id)},
            UpdateExpression="SET #hours = :hours, #count = :count, #bytes = :bytes",
            ExpressionAttributeNames={"#hours": "hours_fetched", "#count": "hours_count", "#bytes": "bytes"},
            ExpressionAttributeValues={
                ":hours": {"L": [_s(h) for h in hours]},
                ":count": _n(len(hours)),
                ":bytes": _n(total_bytes),
            },
        )

    def finish_run(self, result: RunResult) -> None:
        item: dict[str, Any] = {
            "job_name": _s(self.job_name),
            "run_id": _s(self.run_id),
            "status": _s(result.status),
            "started_at": _s(result.started_at),
            "finished_at": _s(result.finished_at or result.started_at),
            "hours_fetched": {"L": [_s(h) for h in result.hours]},
            "hours_count": _n(len(result.hours)),
            "bytes": _n(result.bytes),
        }
        if result.stopped_reason is not None:
            item["stopped_reason"] = _s(result.stopped_reason)
        if result.error is not None:
            item["error"] = _s(result.error)
        self._call(
            f"recording the end of run {self.run_id} in {self.runs_table}",
            "put_item",
            TableName=self.runs_table,
            Item=item,
        )


# --- the run ---------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run_id: str | None
    started_at: str
    status: str = RUNNING
    hours: list[str] = field(default_factory=list)
    bytes: int = 0
    bookmark: str | None = None
    stopped_reason: str | None = None
    error: str | None = None
    exit_code: int = EXIT_OK
    finished_at: str | None = None

    def fail(self, exc: JobError, hour_text: str | None) -> None:
        self.status, self.error, self.exit_code = FAILED, str(exc), exc.exit_code
        self.stopped_reason = f"failed on hour {hour_text}" if hour_text else "failed"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job": JOB,
            "run_id": self.run_id,
            "status": self.status,
            "hours_fetched": len(self.hours),
            "bytes": self.bytes,
            "first_hour": self.hours[0] if self.hours else None,
            "last_hour": self.hours[-1] if self.hours else None,
            "bookmark": self.bookmark,
            "stopped_reason": self.stopped_reason,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


class Ingest:
    def __init__(self, settings: Settings, book: Bookkeeper, sink: Sink, result: RunResult) -> None:
        self.settings, self.book, self.sink, self.result = settings, book, sink, result
        self.current_hour: str | None = None

    def run(self) -> None:
        s, result = self.settings, self.result
        item = self.book.read_item()
        bookmark_text = item.get("bookmark")
        try:
            bookmark = parse_hour(bookmark_text) if bookmark_text is not None else None
        except ValueError as exc:
            raise JobError(f"job {s.job_name!r} in {s.jobs_table} has a malformed bookmark: {exc}") from None
        result.bookmark = bookmark_text
        hours = pending_hours(bookmark, s.baseline_day, s.now, s.max_hours)
        if bookmark is None:
            log.info("job %r has no bookmark: starting at %s hour 0", s.job_name, s.baseline_day.isoformat())
        log.info(
            "%d hour(s) to fetch (bookmark %s, now %s, max %d)", len(hours), bookmark_text, iso(s.now), s.max_hours
        )
        for hour in hours:
            if not self.ingest_hour(hour):
                return
        after = (hours[-1] if hours else first_hour(bookmark, s.baseline_day) - HOUR) + HOUR
        result.stopped_reason = "caught up" if after + HOUR > s.now else f"reached max hours ({s.max_hours})"

    def ingest_hour(self, hour: datetime) -> bool:
        """True when the hour was stored and the bookmark advanced; False when the run should stop cleanly."""
        s, result = self.settings, self.result
        hour_text = format_hour(hour)
        self.current_hour = hour_text
        try:
            self.book.claim(hour_text, result.bookmark)
        except LeaseConflict as conflict:
            result.stopped_reason = str(conflict)
            log.info("stopping: %s", conflict)
            return False
        url = f"{s.base_url}/{archive_name(hour)}"
        started = time.monotonic()
        try:
            size = fetch_with_retries(
                lambda: fetch_once(url, hour, self.sink, s.request_timeout), hour_text, s.attempts, s.backoff_seconds
            )
        except NotPublished:
            self._release(hour_text)
            result.stopped_reason = f"hour {hour_text} not published yet (404)"
            log.info("stopping: %s", result.stopped_reason)
            return False
        except BaseException:
            self._release(hour_text)
            raise
        self.book.advance(hour_text, result.bookmark)
        result.bookmark = hour_text
        result.hours.append(hour_text)
        result.bytes += size
        log.info(
            "stored hour %s: %d bytes in %.2f s -> %s",
            hour_text,
            size,
            time.monotonic() - started,
            self.sink.location(hour),
        )
        self.book.record_progress(result.hours, result.bytes)
        return True

    def _release(self, hour_text: str) -> None:
        try:
            if not self.book.release():
                log.warning("lease on hour %s was no longer ours to release", hour_text)
        except JobError as exc:
            log.error("could not release the lease on hour %s (it expires by itself): %s", hour_text, exc)


def run(settings: Settings, dynamodb: Any | None = None, s3: Any | None = None) -> RunResult:
    """Whole job. Never raises for failures it understands: the result carries status, error and exit code."""
    if dynamodb is None:
        import boto3

        dynamodb = boto3.client("dynamodb")
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    result = RunResult(run_id=run_id, started_at=iso(started))
    book = Bookkeeper(
        dynamodb, settings.jobs_table, settings.runs_table, settings.job_name, run_id, settings.lease_seconds
    )
    log.info("run %s of job %r -> %s", run_id, settings.job_name, settings.output)
    try:
        book.start_run(result.started_at)
    except JobError as exc:
        result.fail(exc, None)
        result.finished_at = iso(datetime.now(UTC))
        log.error("%s", exc)
        return result
    ingest = Ingest(settings, book, make_sink(settings.output, s3), result)
    try:
        ingest.run()
        result.status = SUCCEEDED
    except JobError as exc:
        result.fail(exc, ingest.current_hour)
        log.error("%s", exc)
    except Exception as exc:  # a bug: still record the run as FAILED, with the traceback in the log
        log.exception("unexpected error")
        result.fail(JobError(f"{type(exc).__name__}: {exc}"), ingest.current_hour)
    result.finished_at = iso(datetime.now(UTC))
    try:
        book.finish_run(result)
    except JobError as exc:
        log.error("%s", exc)
        if result.status == SUCCEEDED:
            result.fail(exc, None)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = parse_settings(argv)
    except BadInputError as exc:
        print(f"{JOB}: error: {exc}", file=sys.stderr)
        rejected = RunResult(run_id=None, started_at="")
        rejected.status, rejected.error = FAILED, str(exc)
        print(json.dumps(rejected.summary()))
        return exc.exit_code
    result = run(settings)
    print(json.dumps(result.summary()))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
