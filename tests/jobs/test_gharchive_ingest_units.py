"""Pure parts of `gharchive-ingest`: hour names, which hours a run fetches, settings, the checked stream, retries.

The job end to end (HTTP, DynamoDB, S3) is in tests/integration/test_gharchive_ingest.py.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import socket
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lake_ingest import gharchive as gh

from job_runtime.errors import BadInputError, JobError, TransientError, classify_aws_error


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- hours ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "bookmark", "archive", "key"),
    [
        ("2024-01-01T00:00", "2024-01-01T00", "2024-01-01-0.json.gz", "date=2024-01-01/2024-01-01-0.json.gz"),
        ("2024-01-01T05:00", "2024-01-01T05", "2024-01-01-5.json.gz", "date=2024-01-01/2024-01-01-5.json.gz"),
        ("2024-02-29T23:59", "2024-02-29T23", "2024-02-29-23.json.gz", "date=2024-02-29/2024-02-29-23.json.gz"),
    ],
)
def test_hour_names(moment: str, bookmark: str, archive: str, key: str) -> None:
    hour = utc(moment)
    assert gh.format_hour(hour) == bookmark
    assert gh.archive_name(hour) == archive
    assert gh.relative_key(hour) == key


def test_hour_names_are_utc_whatever_the_input_zone() -> None:
    hour = datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))  # 2023-12-31T23 UTC
    assert gh.format_hour(hour) == "2023-12-31T23"
    assert gh.archive_name(hour) == "2023-12-31-23.json.gz"


def test_parse_hour_round_trips_and_sorts() -> None:
    assert gh.parse_hour("2024-01-01T05") == datetime(2024, 1, 1, 5, tzinfo=UTC)
    hours = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(30)]
    texts = [gh.format_hour(h) for h in hours]
    assert [gh.parse_hour(t) for t in texts] == hours
    assert sorted(texts) == texts  # zero-padded: string order is time order (09 < 10)


@pytest.mark.parametrize("text", ["2024-01-01T5", "2024-01-01 05", "2024-01-01T24", "2024-01-01T05:00", "", "x"])
def test_parse_hour_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        gh.parse_hour(text)


def test_default_baseline_is_three_days_before_the_utc_date() -> None:
    assert gh.default_baseline(utc("2024-01-04T01:30:00")) == date(2024, 1, 1)
    assert gh.default_baseline(utc("2024-03-01T00:00:00")) == date(2024, 2, 27)  # leap year
    # 01:00 at +05:00 is still 2024-01-03 in UTC
    assert gh.default_baseline(datetime(2024, 1, 4, 1, tzinfo=timezone(timedelta(hours=5)))) == date(2023, 12, 31)


def hours(*texts: str) -> list[datetime]:
    return [gh.parse_hour(t) for t in texts]


def test_pending_hours_start_at_baseline_hour_0_without_a_bookmark() -> None:
    got = gh.pending_hours(None, date(2024, 1, 1), utc("2024-01-01T03:00:00"), 24)
    assert got == hours("2024-01-01T00", "2024-01-01T01", "2024-01-01T02")


def test_pending_hours_continue_after_the_bookmark_ignoring_the_baseline() -> None:
    got = gh.pending_hours(gh.parse_hour("2023-12-31T22"), date(2020, 1, 1), utc("2024-01-02T00:00:00"), 3)
    assert got == hours("2023-12-31T23", "2024-01-01T00", "2024-01-01T01")


def test_pending_hours_only_include_hours_that_have_ended() -> None:
    bookmark = gh.parse_hour("2024-01-01T05")
    assert gh.pending_hours(bookmark, date(2024, 1, 1), utc("2024-01-01T07:00:00"), 24) == hours("2024-01-01T06")
    assert gh.pending_hours(bookmark, date(2024, 1, 1), utc("2024-01-01T06:59:59"), 24) == []
    assert gh.pending_hours(bookmark, date(2024, 1, 1), utc("2024-01-01T05:30:00"), 24) == []


def test_pending_hours_are_bounded_by_max_hours() -> None:
    got = gh.pending_hours(None, date(2024, 1, 1), utc("2024-03-01T00:00:00"), 744)
    assert len(got) == 744
    assert (got[0], got[-1]) == (utc("2024-01-01T00:00:00"), utc("2024-01-31T23:00:00"))
    assert gh.pending_hours(None, date(2024, 1, 1), utc("2024-03-01T00:00:00"), 1) == hours("2024-01-01T00")


def test_run_ids_are_sortable_and_unique() -> None:
    first = gh.new_run_id(utc("2024-01-01T05:06:07"))
    assert re.fullmatch(r"20240101T050607Z-[0-9a-f]{8}", first)
    assert gh.new_run_id(utc("2024-01-01T05:06:07")) != first
    assert gh.new_run_id(utc("2024-01-01T05:06:08")) > first


def test_backoff_doubles_with_jitter_between_half_and_full() -> None:
    assert [gh.backoff_delay(n, 2.0, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [gh.backoff_delay(n, 2.0, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert gh.backoff_delay(3, 0.01, rand=lambda: 0.5) == pytest.approx(0.03)


# --- settings ---------------------------------------------------------------------------------------------

REQUIRED = ["--output", "s3://lake/raw/gharchive/", "--jobs-table", "jobs", "--runs-table", "job_run_details"]
REAL_NOW = utc("2024-05-10T12:34:56")


@pytest.fixture(autouse=True)
def no_gharchive_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "GHARCHIVE_BASE_URL", "GHARCHIVE_OUTPUT", "GHARCHIVE_JOBS_TABLE", "GHARCHIVE_RUNS_TABLE",
        "GHARCHIVE_JOB_NAME", "GHARCHIVE_BASELINE_DAY", "GHARCHIVE_MAX_HOURS", "GHARCHIVE_REQUEST_TIMEOUT",
        "GHARCHIVE_ATTEMPTS", "GHARCHIVE_BACKOFF_SECONDS", "GHARCHIVE_LEASE_SECONDS", "GHARCHIVE_NOW",
    ]:  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_settings_defaults() -> None:
    assert gh.parse_settings(REQUIRED, real_now=REAL_NOW) == gh.Settings(
        base_url="https://data.gharchive.org",
        output="s3://lake/raw/gharchive/",
        jobs_table="jobs",
        runs_table="job_run_details",
        job_name="gharchive",
        baseline_day=date(2024, 5, 7),
        max_hours=24,
        request_timeout=60.0,
        attempts=4,
        backoff_seconds=2.0,
        lease_seconds=3600,
        now=REAL_NOW,
    )


def test_settings_from_environment_and_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GHARCHIVE_BASE_URL": "http://mirror.example/gh/",
        "GHARCHIVE_OUTPUT": "s3://lake",
        "GHARCHIVE_JOBS_TABLE": "dp-jobs",
        "GHARCHIVE_RUNS_TABLE": "dp-job-run-details",
        "GHARCHIVE_JOB_NAME": "gharchive-backfill",
        "GHARCHIVE_BASELINE_DAY": "2024-01-01",
        "GHARCHIVE_MAX_HOURS": "744",
        "GHARCHIVE_REQUEST_TIMEOUT": "2.5",
        "GHARCHIVE_ATTEMPTS": "1",
        "GHARCHIVE_BACKOFF_SECONDS": "0",
        "GHARCHIVE_LEASE_SECONDS": "900",
        "GHARCHIVE_NOW": "2024-02-01T06:00:00+01:00",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = gh.parse_settings([], real_now=REAL_NOW)
    assert settings == gh.Settings(
        base_url="http://mirror.example/gh",
        output="s3://lake",
        jobs_table="dp-jobs",
        runs_table="dp-job-run-details",
        job_name="gharchive-backfill",
        baseline_day=date(2024, 1, 1),
        max_hours=744,
        request_timeout=2.5,
        attempts=1,
        backoff_seconds=0.0,
        lease_seconds=900,
        now=utc("2024-02-01T05:00:00"),
    )
    flagged = gh.parse_settings(["--max-hours", "3", "--job-name", "other", "--now", "2024-02-01T00:00:00"])
    assert (flagged.max_hours, flagged.job_name, flagged.now) == (3, "other", utc("2024-02-01T00:00:00"))


def test_empty_environment_values_mean_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GHARCHIVE_BASE_URL", "GHARCHIVE_MAX_HOURS", "GHARCHIVE_BASELINE_DAY", "GHARCHIVE_NOW"):
        monkeypatch.setenv(name, "")
    settings = gh.parse_settings(REQUIRED, real_now=REAL_NOW)
    assert (settings.base_url, settings.max_hours, settings.baseline_day, settings.now) == (
        "https://data.gharchive.org",
        24,
        date(2024, 5, 7),
        REAL_NOW,
    )


def test_baseline_default_follows_now() -> None:
    settings = gh.parse_settings([*REQUIRED, "--now", "2024-01-04T00:00:00Z"], real_now=REAL_NOW)
    assert settings.baseline_day == date(2024, 1, 1)


def test_local_directory_output_is_accepted(tmp_path: Path) -> None:
    assert gh.parse_settings([*REQUIRED, "--output", str(tmp_path / "new" / "dir")]).output == str(
        tmp_path / "new" / "dir"
    )


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [
        ("--baseline-day", "2024-02-30", "is not a date YYYY-MM-DD"),
        ("--baseline-day", "20240101", "is not a date YYYY-MM-DD"),
        ("--baseline-day", "2024-05-11", "is after today (2024-05-10)"),
        ("--max-hours", "0", "is out of range 1..744"),
        ("--max-hours", "745", "is out of range 1..744"),
        ("--max-hours", "1.5", "is not an integer"),
        ("--attempts", "0", "is out of range 1..20"),
        ("--request-timeout", "0", "must be more than zero seconds"),
        ("--request-timeout", "soon", "is not a number of seconds"),
        ("--backoff-seconds", "-1", "must be zero or more seconds"),
        ("--backoff-seconds", "nan", "must be zero or more seconds"),
        ("--lease-seconds", "0", "is out of range 1..604800"),
        ("--now", "2024-13-01T00:00:00Z", "is not an ISO timestamp (e.g. 2024-01-01T06:00:00Z)"),
        ("--output", "gs://lake/gh/", "is neither s3://bucket/prefix/ nor a local directory"),
        ("--output", "s3:///gh/", "has no valid bucket name (expected s3://bucket/prefix/)"),
        ("--output", "s3://Lake_Bucket/", "has no valid bucket name (expected s3://bucket/prefix/)"),
        ("--jobs-table", "j", "is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"),
        ("--runs-table", "runs table", "is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"),
        ("--base-url", "ftp://data.gharchive.org", "is not an http(s) URL"),
        ("--job-name", " ", "is empty"),
    ],
)
def test_bad_values_name_the_flag_the_variable_and_the_value(flag: str, value: str, problem: str) -> None:
    with pytest.raises(BadInputError) as caught:
        gh.parse_settings([*REQUIRED, flag, value], real_now=REAL_NOW)
    variable = "GHARCHIVE_" + flag.removeprefix("--").upper().replace("-", "_")
    assert str(caught.value) == f"{flag} ({variable}): {value!r} {problem}"
    assert caught.value.exit_code == 3


def test_an_existing_file_is_not_an_output_directory(tmp_path: Path) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    with pytest.raises(
        BadInputError, match=re.escape(f"--output (GHARCHIVE_OUTPUT): '{file}' exists and is not a dir")
    ):
        gh.parse_settings([*REQUIRED, "--output", str(file)])


def test_main_reports_bad_values_with_exit_3_and_a_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert gh.main([*REQUIRED, "--max-hours", "0"]) == 3
    out, err = capsys.readouterr()
    message = "--max-hours (GHARCHIVE_MAX_HOURS): '0' is out of range 1..744"
    assert f"gharchive-ingest: error: {message}\n" in err
    assert out.splitlines()[-1] == (
        '{"job": "gharchive-ingest", "run_id": null, "status": "FAILED", "hours_fetched": 0, "bytes": 0, '
        '"first_hour": null, "last_hour": null, "bookmark": null, "stopped_reason": null, "error": "' + message + '"}'
    )


def test_missing_required_settings_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        gh.parse_settings(["--jobs-table", "jobs", "--runs-table", "runs"])
    assert caught.value.code == 2
    assert "error: --output (or GHARCHIVE_OUTPUT) is required" in capsys.readouterr().err


# --- the checked stream ------------------------------------------------------------------------------------

BODY = gzip.compress(random.Random(1).randbytes(20_000), mtime=0)  # noqa: S311 - incompressible test data
URL = "https://data.gharchive.org/2024-01-01-5.json.gz"


class Dribble(io.RawIOBase):
    """A raw stream that returns at most `step` bytes per read, like a socket, optionally failing at the end."""

    def __init__(self, data: bytes, step: int, fail_at_end: BaseException | None = None) -> None:
        self.data, self.step, self.pos, self.fail_at_end = data, step, 0, fail_at_end

    def read(self, size: int | None = -1) -> bytes:
        if self.pos >= len(self.data) and self.fail_at_end is not None:
            raise self.fail_at_end
        n = self.step if size is None or size < 0 else min(size, self.step)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


def test_stream_fills_each_read_and_counts_bytes() -> None:
    stream = gh.CheckedStream(Dribble(BODY, step=1), URL, len(BODY))
    first = stream.read(100)
    assert first == BODY[:100]  # filled from 100 one-byte reads: s3transfer takes a short read for the end
    rest = stream.read(10**9)
    assert first + rest == BODY
    assert stream.bytes_read == len(BODY)
    assert stream.read(10) == b""


def test_stream_without_content_length_accepts_any_length() -> None:
    stream = gh.CheckedStream(io.BytesIO(BODY), URL, None)
    assert stream.read() == BODY


def test_stream_rejects_a_body_that_is_not_gzip_on_the_first_bytes() -> None:
    stream = gh.CheckedStream(Dribble(b"<html>" + b"x" * 10_000, step=1), URL, None)
    with pytest.raises(JobError) as caught:
        stream.read(1)
        stream.read(1)
    assert type(caught.value) is JobError and caught.value.exit_code == 5
    assert str(caught.value) == f"{URL} is not a gzip file (starts with 3c 68, not 1f 8b)"


@pytest.mark.parametrize("body", [b"", b"\x1f"])
def test_stream_rejects_a_body_too_short_to_be_gzip(body: bytes) -> None:
    with pytest.raises(JobError, match=re.escape(f"{URL} is not a gzip file ({len(body)} byte(s))")):
        gh.CheckedStream(io.BytesIO(body), URL, len(body)).read(1024)


def test_stream_short_of_content_length_is_transient() -> None:
    stream = gh.CheckedStream(io.BytesIO(BODY[:500]), URL, len(BODY))
    with pytest.raises(TransientError) as caught:
        stream.read(1024 * 1024)
    assert str(caught.value) == f"short read from {URL}: 500 of {len(BODY)} byte(s)"


def test_stream_network_errors_are_transient() -> None:
    stream = gh.CheckedStream(Dribble(BODY[:300], step=100, fail_at_end=TimeoutError("timed out")), URL, len(BODY))
    with pytest.raises(TransientError) as caught:
        stream.read(1000)
    assert str(caught.value) == f"reading {URL} failed after 300 byte(s): TimeoutError: timed out"


def test_local_sink_writes_atomically_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    sink = gh.LocalSink(str(tmp_path / "out"))
    hour = gh.parse_hour("2024-01-01T05")
    sink.store(hour, gh.CheckedStream(Dribble(BODY, step=7), URL, len(BODY)))
    target = tmp_path / "out" / "date=2024-01-01" / "2024-01-01-5.json.gz"
    assert target.read_bytes() == BODY
    with pytest.raises(TransientError):
        sink.store(hour, gh.CheckedStream(io.BytesIO(BODY[:10]), URL, len(BODY)))
    assert target.read_bytes() == BODY  # the earlier complete file is untouched
    assert [p.name for p in target.parent.iterdir()] == ["2024-01-01-5.json.gz"]


def test_s3_sink_keys_normalise_the_prefix() -> None:
    hour = gh.parse_hour("2024-01-01T05")
    assert gh.S3Sink("s3://lake/raw/gharchive/", None).key(hour) == "raw/gharchive/date=2024-01-01/2024-01-01-5.json.gz"
    assert gh.S3Sink("s3://lake/raw/gharchive", None).key(hour) == "raw/gharchive/date=2024-01-01/2024-01-01-5.json.gz"
    assert gh.S3Sink("s3://lake", None).location(hour) == "s3://lake/date=2024-01-01/2024-01-01-5.json.gz"


def test_fetch_once_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}/2024-01-01-5.json.gz"
        with pytest.raises(TransientError) as caught:
            gh.fetch_once(url, gh.parse_hour("2024-01-01T05"), gh.LocalSink("/nonexistent"), timeout=5)
    assert str(caught.value).startswith(f"GET {url} failed: ConnectionRefusedError: ")


def test_aws_errors_map_to_exit_codes() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    def client_error(code: str, status: int) -> ClientError:
        response = {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "PutItem")

    throttled = classify_aws_error(client_error("ProvisionedThroughputExceededException", 400), "writing")
    assert (type(throttled), str(throttled)) == (TransientError, "writing: ProvisionedThroughputExceededException: msg")
    assert type(classify_aws_error(client_error("InternalFailure", 500), "x")) is TransientError
    denied = classify_aws_error(client_error("AccessDeniedException", 400), "writing")
    assert (type(denied), denied.exit_code) == (JobError, 5)
    assert type(classify_aws_error(EndpointConnectionError(endpoint_url="https://x"), "x")) is TransientError
    assert type(classify_aws_error(ReadTimeoutError(endpoint_url="https://x"), "x")) is TransientError


# --- retries ----------------------------------------------------------------------------------------------


def scripted(*outcomes: int | BaseException):
    calls: list[int] = []

    def fetch() -> int:
        outcome = outcomes[len(calls)]
        calls.append(1)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fetch, calls


def test_retries_transient_errors_with_growing_delays() -> None:
    fetch, calls = scripted(TransientError("HTTP 500"), TransientError("timed out"), 1234)
    sleeps: list[float] = []
    assert gh.fetch_with_retries(fetch, "2024-01-01T05", 4, 1.0, sleep=sleeps.append) == 1234
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_gives_up_after_the_last_attempt_with_the_last_error() -> None:
    fetch, calls = scripted(TransientError("HTTP 502"), TransientError("HTTP 503"))
    sleeps: list[float] = []
    with pytest.raises(TransientError) as caught:
        gh.fetch_with_retries(fetch, "2024-01-01T05", 2, 0.0, sleep=sleeps.append)
    assert str(caught.value) == "hour 2024-01-01T05: gave up after 2 attempt(s): HTTP 503"
    assert caught.value.exit_code == 4
    assert (len(calls), sleeps) == (2, [0.0])


def test_non_transient_errors_and_404_are_not_retried() -> None:
    fetch, calls = scripted(JobError("not gzip"))
    with pytest.raises(JobError) as caught:
        gh.fetch_with_retries(fetch, "2024-01-01T05", 4, 0.0, sleep=lambda _: None)
    assert (str(caught.value), caught.value.exit_code, len(calls)) == ("hour 2024-01-01T05: not gzip", 5, 1)

    fetch, calls = scripted(gh.NotPublished("url"))
    with pytest.raises(gh.NotPublished):
        gh.fetch_with_retries(fetch, "2024-01-01T05", 4, 0.0, sleep=lambda _: None)
    assert len(calls) == 1
