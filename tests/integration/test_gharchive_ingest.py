"""`gharchive-ingest` end to end: the real CLI as a subprocess against a real local HTTP server standing in for
data.gharchive.org (scripted per file: 200, 404, 500, slow, truncated, HTML) and real HTTP DynamoDB/S3 (moto).

Each test creates its own tables and bucket in the shared moto server, and its own archive server whose
request log shows exactly which files each run downloaded.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from tests.jobs.emf import check_run_summary, figures, json_lines

REPO = Path(__file__).resolve().parents[2]
DAY = "2024-01-01"
NOW = "2024-01-02T00:00:00Z"  # the whole of DAY is over
JOB_NAME = "gharchive"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def name(hour: int, day: str = DAY) -> str:
    return f"{day}-{hour}.json.gz"


def hour_text(hour: int, day: str = DAY) -> str:
    return f"{day}T{hour:02d}"


def archive_file(hour: int, day: str = DAY) -> bytes:
    """A small but real GH Archive-shaped file: gzip of JSON lines, distinct per hour."""
    lines = "".join(json.dumps({"id": f"{day}-{hour}-{i}", "type": "PushEvent"}) + "\n" for i in range(3))
    return gzip.compress(lines.encode(), mtime=0)


# --- the archive server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0  # seconds before the status line: longer than --request-timeout means a timeout
    content_length: int | None = None  # announced length when it differs from the body (a truncated body)
    gate: threading.Event | None = None  # hold the reply until the test opens the gate


class Archive:
    """Files by name, each a script of replies used in order; the last reply repeats. Unknown names: 404."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                with archive.lock:
                    archive.requests.append(path)
                    script = archive.scripts.get(path, [Reply(404, b"Not Found")])
                    reply = script.pop(0) if len(script) > 1 else script[0]
                if reply.gate is not None:
                    reply.gate.wait(60)
                time.sleep(reply.delay)
                self.send_response(reply.status)
                content_type = "application/gzip" if reply.body[:2] == b"\x1f\x8b" else "text/html"
                self.send_header("Content-Type", content_type)
                length = len(reply.body) if reply.content_length is None else reply.content_length
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, hour: int, *replies: Reply) -> bytes:
        """Serve `archive_file(hour)` (after any scripted failures in `replies`); returns the served bytes."""
        body = archive_file(hour)
        self.script(name(hour), *replies, Reply(body=body))
        return body

    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts[path] = list(replies)

    def count(self, path: str) -> int:
        with self.lock:
            return self.requests.count(path)

    def log(self) -> list[str]:
        with self.lock:
            return list(self.requests)

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()


@pytest.fixture
def archive() -> Iterator[Archive]:
    server = Archive()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


# --- AWS side (moto) -------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Lake:
    """One test's jobs table, runs table and bucket in the shared moto server."""

    def __init__(self, moto_server: Any) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.jobs_table, self.runs_table = f"jobs-{suffix}", f"runs-{suffix}"
        self.bucket = f"lake-{suffix}"
        self.output = f"s3://{self.bucket}/raw/gharchive/"
        self.aws_env = moto_server.aws_env()
        self.dynamodb = moto_server.client("dynamodb")
        self.s3 = moto_server.client("s3")
        self.dynamodb.create_table(
            TableName=self.jobs_table,
            KeySchema=[{"AttributeName": "job_name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.dynamodb.create_table(
            TableName=self.runs_table,
            KeySchema=[
                {"AttributeName": "job_name", "KeyType": "HASH"},
                {"AttributeName": "run_id", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "job_name", "AttributeType": "S"},
                {"AttributeName": "run_id", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.s3.create_bucket(Bucket=self.bucket)

    def key(self, hour: int, day: str = DAY) -> str:
        return f"raw/gharchive/date={day}/{name(hour, day)}"

    def objects(self) -> dict[str, bytes]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket)
        return {
            obj["Key"]: self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
            for obj in listing.get("Contents", [])
        }

    def job_item(self, job_name: str = JOB_NAME) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.jobs_table, Key={"job_name": {"S": job_name}}, ConsistentRead=True)
        if "Item" not in item:
            return None
        return plain({k: TypeDeserializer().deserialize(v) for k, v in item["Item"].items()})

    def put_job_item(self, **attributes: Any) -> None:
        item = {"job_name": JOB_NAME, **attributes}
        self.dynamodb.put_item(
            TableName=self.jobs_table, Item={k: TypeSerializer().serialize(v) for k, v in item.items()}
        )

    def runs(self, job_name: str = JOB_NAME) -> list[dict[str, Any]]:
        items = self.dynamodb.query(
            TableName=self.runs_table,
            KeyConditionExpression="job_name = :j",
            ExpressionAttributeValues={":j": {"S": job_name}},
            ConsistentRead=True,
        )["Items"]
        return [plain({k: TypeDeserializer().deserialize(v) for k, v in item.items()}) for item in items]


@pytest.fixture
def lake(moto_server: Any) -> Lake:
    return Lake(moto_server)


def job_env(lake: Lake, extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GHARCHIVE_", "METRICS_"))}
    base = {k: v for k, v in base.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    return {**base, **lake.aws_env, "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "2", **(extra or {})}


def job_args(archive: Archive, lake: Lake, *extra: str, output: str | None = None) -> list[str]:
    return [
        sys.executable, "-m", "lake_ingest.gharchive",
        "--base-url", archive.base_url,
        "--output", output or lake.output,
        "--jobs-table", lake.jobs_table,
        "--runs-table", lake.runs_table,
        "--now", NOW,
        "--backoff-seconds", "0.01",
        *extra,
    ]  # fmt: skip


def summary_of(stdout: str, stderr: str, stack: str = "local", pipeline: str = "gharchive") -> dict[str, Any]:
    """The run's one JSON line: its metrics line (tests/jobs/emf.py; without the varying timestamp and
    duration), or the plain JSON line of a run refused for its settings."""
    lines = json_lines(stdout)
    assert len(lines) == 1, f"expected one JSON line on stdout:\n{stdout}\nstderr:\n{stderr}"
    if "_aws" not in lines[0]:
        return lines[0]
    document = check_run_summary(lines[0], stack=stack, pipeline=pipeline, job="gharchive_ingest")
    # The download parses no rows; Files is the hour files it stored.
    assert (document["RowsIn"], document["Files"]) == (0, document["hours_fetched"])
    return figures(document)


def run_metrics(hours: int, stack: str = "local", pipeline: str = "gharchive") -> dict[str, Any]:
    """The dimensions and metrics of a run that stored `hours` hour files."""
    return {"Stack": stack, "Pipeline": pipeline, "Job": "gharchive_ingest", "RowsIn": 0, "RowsLoaded": 0,
            "RowsQuarantined": 0, "Files": hours}  # fmt: skip


def run_job(
    archive: Archive, lake: Lake, *extra: str, output: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = subprocess.run(
        job_args(archive, lake, *extra, output=output),
        env=job_env(lake, env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, summary_of(result.stdout, result.stderr)


def expected_summary(run_id: str, hours: list[int], size: int, bookmark: str | None, reason: str) -> dict[str, Any]:
    return {
        **run_metrics(len(hours)),
        "run_id": run_id,
        "status": "SUCCEEDED",
        "hours_fetched": len(hours),
        "bytes": size,
        "first_hour": hour_text(hours[0]) if hours else None,
        "last_hour": hour_text(hours[-1]) if hours else None,
        "bookmark": bookmark,
        "stopped_reason": reason,
    }


def assert_run_row(row: dict[str, Any], run_id: str, status: str, hours: list[int], size: int, **rest: str) -> None:
    assert RUN_ID.fullmatch(run_id)
    assert ISO.fullmatch(row["started_at"]) and ISO.fullmatch(row["finished_at"])
    assert row["started_at"] <= row["finished_at"]
    assert row == {
        "job_name": JOB_NAME,
        "run_id": run_id,
        "status": status,
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "hours_fetched": [hour_text(h) for h in hours],
        "hours_count": len(hours),
        "bytes": size,
        **rest,
    }


def assert_bookmark(lake: Lake, bookmark: str, baseline: str = DAY, counted_from: str | None = DAY) -> None:
    """The jobs item holds the baseline, the bookmark (counted from `counted_from`: None when no run of this
    job advanced it) and nothing of a lease."""
    item = lake.job_item()
    assert item is not None
    assert ISO.fullmatch(item["updated_at"])
    expected = {"job_name": JOB_NAME, "baseline_day": baseline, "bookmark": bookmark, "updated_at": item["updated_at"]}
    if counted_from is not None:
        expected["bookmark_baseline"] = counted_from
    assert item == expected


# --- first run, rerun, bounds -----------------------------------------------------------------------------


def test_first_run_stores_hours_from_the_baseline_until_404(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(3)}  # hour 3 is not published: 404

    result, summary = run_job(archive, lake, "--baseline-day", DAY)

    assert result.returncode == 0, result.stderr
    size = sum(len(b) for b in served.values())
    reason = "hour 2024-01-01T03 not published yet (404)"
    assert summary == expected_summary(summary["run_id"], [0, 1, 2], size, "2024-01-01T02", reason)
    assert lake.objects() == {lake.key(h): served[h] for h in range(3)}
    assert archive.log() == [name(0), name(1), name(2), name(3)]
    assert_bookmark(lake, "2024-01-01T02")
    (row,) = lake.runs()
    assert_run_row(row, summary["run_id"], "SUCCEEDED", [0, 1, 2], size, stopped_reason=reason)
    for h in range(3):
        assert f"stored hour {hour_text(h)}: {len(served[h])} bytes in " in result.stderr


def test_rerun_continues_from_the_bookmark_and_never_downloads_earlier_hours(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(2)}
    first, first_summary = run_job(archive, lake, "--baseline-day", DAY)
    assert first.returncode == 0, first.stderr
    assert first_summary["bookmark"] == "2024-01-01T01"

    # Hours 2 and 3 get published; hour 3 is over 8 MiB, so it goes through a multipart upload.
    served[2] = archive.publish(2)
    noise = random.Random(7).randbytes(9 * 1024 * 1024)  # noqa: S311 - test data, not a secret
    big = gzip.compress(noise, mtime=0)
    archive.script(name(3), Reply(body=big))
    served[3] = big
    archive.clear_log()

    second, summary = run_job(archive, lake, "--baseline-day", "2023-12-01")  # the bookmark wins over the baseline

    assert second.returncode == 0, second.stderr
    reason = "hour 2024-01-01T04 not published yet (404)"
    size = len(served[2]) + len(big)
    assert summary == expected_summary(summary["run_id"], [2, 3], size, "2024-01-01T03", reason)
    assert archive.log() == [name(2), name(3), name(4)]
    assert lake.objects() == {lake.key(h): served[h] for h in range(4)}
    assert_bookmark(lake, "2024-01-01T03")
    rows = {row["run_id"]: row for row in lake.runs()}
    assert sorted(rows) == sorted([first_summary["run_id"], summary["run_id"]])
    assert_run_row(rows[summary["run_id"]], summary["run_id"], "SUCCEEDED", [2, 3], size, stopped_reason=reason)
    assert_run_row(
        rows[first_summary["run_id"]],
        first_summary["run_id"],
        "SUCCEEDED",
        [0, 1],
        len(served[0]) + len(served[1]),
        stopped_reason="hour 2024-01-01T02 not published yet (404)",
    )


def test_the_baseline_is_kept_in_the_jobs_item_and_the_setting_only_seeds_it(archive: Archive, lake: Lake) -> None:
    lake.put_job_item(baseline_day="2024-01-01")  # an operator's item: the setting below must not win
    served = {h: archive.publish(h) for h in range(2)}

    result, summary = run_job(archive, lake, "--baseline-day", "2023-12-31", "--max-hours", "2")

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(
        summary["run_id"], [0, 1], sum(map(len, served.values())), hour_text(1), "reached max hours (2)"
    )
    assert archive.log() == [name(0), name(1)]
    assert_bookmark(lake, "2024-01-01T01")


def test_editing_baseline_day_in_the_item_restarts_from_the_new_day(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(3)}
    first, _ = run_job(archive, lake, "--baseline-day", DAY, "--max-hours", "3")
    assert first.returncode == 0, first.stderr
    assert_bookmark(lake, "2024-01-01T02")
    earlier = {h: archive_file(h, "2023-12-31") for h in (0, 1)}
    for h, body in earlier.items():
        archive.script(name(h, "2023-12-31"), Reply(body=body))
    item = lake.job_item()
    assert item is not None
    lake.put_job_item(**{**item, "baseline_day": "2023-12-31"})  # the operator's one edit
    archive.clear_log()

    second, summary = run_job(archive, lake, "--baseline-day", DAY, "--max-hours", "2")

    assert second.returncode == 0, second.stderr
    size = sum(map(len, earlier.values()))
    # The claim expected the old bookmark; the new one counts from the new baseline.
    assert summary == expected_summary(summary["run_id"], [], size, "2023-12-31T01", "reached max hours (2)") | {
        "Files": 2,
        "hours_fetched": 2,
        "first_hour": "2023-12-31T00",
        "last_hour": "2023-12-31T01",
    }
    assert archive.log() == [name(0, "2023-12-31"), name(1, "2023-12-31")]
    assert_bookmark(lake, "2023-12-31T01", baseline="2023-12-31", counted_from="2023-12-31")
    assert "baseline_day changed from 2024-01-01 to 2023-12-31: restarting at 2023-12-31 hour 0" in second.stderr
    assert lake.objects() == {
        **{lake.key(h): served[h] for h in range(3)},
        **{lake.key(h, "2023-12-31"): earlier[h] for h in (0, 1)},
    }


def test_a_malformed_baseline_day_in_the_item_fails_naming_it(archive: Archive, lake: Lake) -> None:
    lake.put_job_item(baseline_day="2024-1-1")

    result, summary = run_job(archive, lake)

    assert result.returncode == 5, result.stderr
    assert summary["status"] == "FAILED"
    assert summary["error"] == (
        f"job 'gharchive' in {lake.jobs_table} has a malformed baseline_day '2024-1-1' (expected YYYY-MM-DD)"
    )
    assert archive.log() == []


def test_max_hours_caps_the_run(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(5)}

    result, summary = run_job(archive, lake, "--baseline-day", DAY, "--max-hours", "2")

    assert result.returncode == 0, result.stderr
    size = len(served[0]) + len(served[1])
    assert summary == expected_summary(summary["run_id"], [0, 1], size, "2024-01-01T01", "reached max hours (2)")
    assert archive.log() == [name(0), name(1)]
    assert lake.objects() == {lake.key(0): served[0], lake.key(1): served[1]}
    assert_bookmark(lake, "2024-01-01T01")
    (row,) = lake.runs()
    assert_run_row(row, summary["run_id"], "SUCCEEDED", [0, 1], size, stopped_reason="reached max hours (2)")


def test_hours_not_over_yet_are_not_requested(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(6)}  # published, but hour 3 ends after --now

    result, summary = run_job(archive, lake, "--baseline-day", DAY, "--now", "2024-01-01T03:00:01Z")

    assert result.returncode == 0, result.stderr
    size = sum(len(served[h]) for h in range(3))
    assert summary == expected_summary(summary["run_id"], [0, 1, 2], size, "2024-01-01T02", "caught up")
    assert archive.log() == [name(0), name(1), name(2)]
    assert_bookmark(lake, "2024-01-01T02")

    # Nothing has ended since: the next run requests nothing and leaves the bookmark alone.
    archive.clear_log()
    again, summary = run_job(archive, lake, "--now", "2024-01-01T03:59:59Z")
    assert again.returncode == 0, again.stderr
    assert summary == expected_summary(summary["run_id"], [], 0, "2024-01-01T02", "caught up")
    assert archive.log() == []
    assert_bookmark(lake, "2024-01-01T02")


def test_without_baseline_day_the_first_hour_is_three_days_before_now(archive: Archive, lake: Lake) -> None:
    served = archive.publish(0)

    result, summary = run_job(archive, lake, "--now", "2024-01-04T01:30:00Z", "--max-hours", "1")

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(summary["run_id"], [0], len(served), "2024-01-01T00", "reached max hours (1)")
    assert archive.log() == [name(0)]
    assert "job 'gharchive' has no bookmark: starting at 2024-01-01 hour 0" in result.stderr


# --- retries and failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Reply(500, b"<html>oops</html>"), id="http-500"),
        pytest.param(Reply(503, b"busy"), id="http-503"),
        pytest.param(Reply(body=archive_file(0), delay=2.0), id="slower-than-request-timeout"),
        pytest.param(Reply(body=archive_file(0)[:20], content_length=len(archive_file(0))), id="truncated-body"),
    ],
)
def test_transient_failures_are_retried_and_the_hour_is_stored_intact(
    archive: Archive, lake: Lake, failure: Reply
) -> None:
    served = archive.publish(0, failure)

    result, summary = run_job(archive, lake, "--baseline-day", DAY, "--request-timeout", "0.5")

    assert result.returncode == 0, result.stderr
    reason = "hour 2024-01-01T01 not published yet (404)"
    assert summary == expected_summary(summary["run_id"], [0], len(served), "2024-01-01T00", reason)
    assert archive.count(name(0)) == 2
    assert lake.objects() == {lake.key(0): served}
    assert_bookmark(lake, "2024-01-01T00")
    assert "hour 2024-01-01T00 attempt 1/4 failed: " in result.stderr


def test_retries_exhausted_fails_with_exit_4_and_keeps_the_bookmark(archive: Archive, lake: Lake) -> None:
    lake.put_job_item(bookmark="2024-01-01T00", updated_at="2024-01-01T01:05:00Z")
    archive.script(name(1), Reply(500, b"down"))

    result, summary = run_job(archive, lake, "--attempts", "3")

    assert result.returncode == 4, result.stderr
    error = (
        f"hour 2024-01-01T01: gave up after 3 attempt(s): "
        f"HTTP 500 Internal Server Error from {archive.base_url}/2024-01-01-1.json.gz"
    )
    assert summary == {
        **expected_summary(summary["run_id"], [], 0, "2024-01-01T00", "failed on hour 2024-01-01T01"),
        "status": "FAILED",
        "error": error,
    }
    assert archive.log() == [name(1)] * 3
    assert lake.objects() == {}
    # Bookmark unchanged and the lease released (the claim only touched updated_at); the item had no
    # baseline_day, so the default (three days before --now) seeded it.
    assert_bookmark(lake, "2024-01-01T00", baseline="2023-12-30", counted_from=None)
    (row,) = lake.runs()
    assert_run_row(row, summary["run_id"], "FAILED", [], 0, stopped_reason="failed on hour 2024-01-01T01", error=error)
    assert f"ERROR lake_ingest.gharchive: {error}" in result.stderr


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_200_that_is_not_gzip_fails_without_retry(archive: Archive, lake: Lake, tmp_path: Path, where: str) -> None:
    archive.publish(0)
    archive.script(name(1), Reply(200, b"<!DOCTYPE html><html><body>maintenance</body></html>"))
    output = lake.output if where == "s3" else str(tmp_path / "lake")

    result, summary = run_job(archive, lake, "--baseline-day", DAY, output=output)

    assert result.returncode == 5, result.stderr
    error = (
        f"hour 2024-01-01T01: {archive.base_url}/2024-01-01-1.json.gz is not a gzip file (starts with 3c 21, not 1f 8b)"
    )
    size = len(archive_file(0))
    assert summary == {
        **expected_summary(summary["run_id"], [0], size, "2024-01-01T00", "failed on hour 2024-01-01T01"),
        "status": "FAILED",
        "error": error,
    }
    assert archive.log() == [name(0), name(1)]
    assert_bookmark(lake, "2024-01-01T00")
    (row,) = lake.runs()
    assert_run_row(
        row, summary["run_id"], "FAILED", [0], size, stopped_reason="failed on hour 2024-01-01T01", error=error
    )
    if where == "s3":
        assert lake.objects() == {lake.key(0): archive_file(0)}
    else:  # no partial file left behind, not even a hidden temp file
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
            "lake/date=2024-01-01/2024-01-01-0.json.gz"
        ]


def test_an_s3_error_that_retrying_cannot_fix_exits_5(archive: Archive, lake: Lake) -> None:
    archive.publish(0)
    missing = f"missing-{uuid.uuid4().hex[:10]}"

    result, summary = run_job(archive, lake, "--baseline-day", DAY, output=f"s3://{missing}/gh/")

    assert result.returncode == 5, result.stderr
    error = (
        f"hour 2024-01-01T00: storing s3://{missing}/gh/date=2024-01-01/2024-01-01-0.json.gz: "
        "NoSuchBucket: The specified bucket does not exist"
    )
    assert summary["status"] == "FAILED" and summary["error"] == error
    assert archive.log() == [name(0)]  # not retried
    item = lake.job_item()
    # The baseline seeded; claimed, released, never advanced.
    assert item is not None and set(item) == {"job_name", "baseline_day", "updated_at"}
    (row,) = lake.runs()
    assert_run_row(row, summary["run_id"], "FAILED", [], 0, stopped_reason="failed on hour 2024-01-01T00", error=error)


def test_a_missing_runs_table_fails_before_anything_is_claimed_or_downloaded(archive: Archive, lake: Lake) -> None:
    archive.publish(0)
    missing = f"runs-missing-{uuid.uuid4().hex[:8]}"

    result, summary = run_job(archive, lake, "--baseline-day", DAY, "--runs-table", missing)

    assert result.returncode == 5, result.stderr
    assert summary["status"] == "FAILED" and summary["hours_fetched"] == 0
    assert summary["error"].startswith(f"recording run {summary['run_id']} in {missing}: ResourceNotFoundException: ")
    assert archive.log() == []
    assert lake.job_item() is None and lake.objects() == {}


# --- leases and concurrency -------------------------------------------------------------------------------


def test_a_live_lease_of_another_run_stops_the_run_cleanly(archive: Archive, lake: Lake) -> None:
    for h in range(3):
        archive.publish(h)
    expires = int(time.time()) + 3600
    lease = {
        "bookmark": "2024-01-01T00",
        "updated_at": "2024-01-01T01:05:00Z",
        "lease_owner": "20240101T010500Z-0badc0de",
        "lease_hour": "2024-01-01T01",
        "lease_expires": expires,
    }
    lake.put_job_item(**lease)

    result, summary = run_job(archive, lake)

    assert result.returncode == 0, result.stderr
    until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reason = f"another run holds the lease on hour 2024-01-01T01 (run 20240101T010500Z-0badc0de, until {until})"
    assert summary == expected_summary(summary["run_id"], [], 0, "2024-01-01T00", reason)
    assert archive.log() == []
    assert lake.objects() == {}
    assert lake.job_item() == {"job_name": JOB_NAME, "baseline_day": "2023-12-30", **lease}  # only seeded
    (row,) = lake.runs()
    assert_run_row(row, summary["run_id"], "SUCCEEDED", [], 0, stopped_reason=reason)


def test_an_expired_lease_of_a_crashed_run_is_taken_over(archive: Archive, lake: Lake) -> None:
    served = {h: archive.publish(h) for h in range(1, 3)}
    lake.put_job_item(
        bookmark="2024-01-01T00",
        updated_at="2024-01-01T01:05:00Z",
        lease_owner="20240101T010500Z-0badc0de",
        lease_hour="2024-01-01T01",
        lease_expires=int(time.time()) - 60,
    )

    result, summary = run_job(archive, lake)

    assert result.returncode == 0, result.stderr
    size = len(served[1]) + len(served[2])
    reason = "hour 2024-01-01T03 not published yet (404)"
    assert summary == expected_summary(summary["run_id"], [1, 2], size, "2024-01-01T02", reason)
    assert archive.log() == [name(1), name(2), name(3)]
    assert lake.objects() == {lake.key(1): served[1], lake.key(2): served[2]}
    # An item without baseline_day (written before baselines were kept) is seeded and the bookmark continues.
    assert_bookmark(lake, "2024-01-01T02", baseline="2023-12-30", counted_from="2023-12-30")


def start_job(archive: Archive, lake: Lake, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        job_args(archive, lake, "--baseline-day", DAY, *extra),
        env=job_env(lake),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_race_the_run_holding_the_hour_wins_and_the_other_stops_without_downloading(
    archive: Archive, lake: Lake
) -> None:
    """Two runs start together; the one that claims hour 0 is held inside its download until the other has
    finished, so the other one must have met the live lease."""
    gate = threading.Event()
    served = {0: archive.publish(0, Reply(body=archive_file(0), gate=gate))}
    served |= {h: archive.publish(h) for h in range(1, 4)}
    runs = [start_job(archive, lake), start_job(archive, lake)]
    try:
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in runs) and time.monotonic() < deadline:
            time.sleep(0.02)
        loser = next(p for p in runs if p.poll() is not None)
        winner = next(p for p in runs if p is not loser)
        loser_out, loser_err = loser.communicate(timeout=5)
        assert winner.poll() is None, "the run holding hour 0 finished before its download was released"
    finally:
        gate.set()
    winner_out, winner_err = winner.communicate(timeout=60)

    assert (loser.returncode, winner.returncode) == (0, 0), loser_err + winner_err
    won, lost = summary_of(winner_out, winner_err), summary_of(loser_out, loser_err)
    size = sum(len(b) for b in served.values())
    reason = "hour 2024-01-01T04 not published yet (404)"
    assert won == expected_summary(won["run_id"], [0, 1, 2, 3], size, "2024-01-01T03", reason)
    assert lost["hours_fetched"] == 0 and lost["bookmark"] is None
    assert re.fullmatch(
        rf"another run holds the lease on hour 2024-01-01T00 \(run {won['run_id']}, until \S+Z\)",
        lost["stopped_reason"],
    )
    assert archive.log() == [name(h) for h in range(5)]
    assert lake.objects() == {lake.key(h): served[h] for h in range(4)}
    assert_bookmark(lake, "2024-01-01T03")


def test_race_free_running_every_hour_is_downloaded_and_stored_exactly_once(archive: Archive, lake: Lake) -> None:
    lake.s3.put_bucket_versioning(Bucket=lake.bucket, VersioningConfiguration={"Status": "Enabled"})
    served = {h: archive.publish(h, Reply(body=archive_file(h), delay=0.15)) for h in range(6)}
    runs = [start_job(archive, lake) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in runs]

    assert [p.returncode for p in runs] == [0, 0], outputs
    summaries = [summary_of(out, err) for out, err in outputs]
    rows = {row["run_id"]: row for row in lake.runs()}
    fetched = [h for s in summaries for h in rows[s["run_id"]]["hours_fetched"]]
    assert sorted(fetched) == [hour_text(h) for h in range(6)]  # every hour once, by one run or the other
    assert sum(s["hours_fetched"] for s in summaries) == 6
    for h in range(6):
        assert archive.count(name(h)) == 1
    versions = lake.s3.list_object_versions(Bucket=lake.bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(lake.key(h) for h in range(6))  # one PUT per hour
    assert lake.objects() == {lake.key(h): served[h] for h in range(6)}
    assert_bookmark(lake, "2024-01-01T05")
    for s in summaries:
        assert rows[s["run_id"]]["status"] == "SUCCEEDED"
        assert rows[s["run_id"]]["stopped_reason"] == s["stopped_reason"]


# --- local output, environment contract, bad arguments ----------------------------------------------------


def test_local_directory_output_configured_by_environment_only(archive: Archive, lake: Lake, tmp_path: Path) -> None:
    served = {h: archive.publish(h) for h in (22, 23)}
    served[0] = archive_file(0, "2024-01-02")
    archive.script(name(0, "2024-01-02"), Reply(body=served[0]))
    out = tmp_path / "lake"
    env = {
        "GHARCHIVE_BASE_URL": archive.base_url,
        "GHARCHIVE_OUTPUT": str(out),
        "GHARCHIVE_JOBS_TABLE": lake.jobs_table,
        "GHARCHIVE_RUNS_TABLE": lake.runs_table,
        "GHARCHIVE_JOB_NAME": "gharchive-local",
        "GHARCHIVE_BASELINE_DAY": "",  # declared but empty: the default applies
        "GHARCHIVE_MAX_HOURS": "5",
        "GHARCHIVE_BACKOFF_SECONDS": "0.01",
        "GHARCHIVE_NOW": "2024-01-02T03:00:00+00:00",
        # What the Batch job definition sets (components/compute.py BatchJob): the metrics' dimensions.
        "METRICS_STACK": "dev",
        "METRICS_PIPELINE": "gharchive",
    }
    lake.put_job_item(job_name="gharchive-local", bookmark="2024-01-01T21", updated_at="2024-01-01T22:05:00Z")

    result = subprocess.run(
        [sys.executable, "-m", "lake_ingest.gharchive"],
        env=job_env(lake, env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout, result.stderr, stack="dev")
    size = sum(len(b) for b in served.values())
    assert summary == {
        **run_metrics(3, stack="dev"),
        "run_id": summary["run_id"],
        "status": "SUCCEEDED",
        "hours_fetched": 3,
        "bytes": size,
        "first_hour": "2024-01-01T22",
        "last_hour": "2024-01-02T00",
        "bookmark": "2024-01-02T00",
        "stopped_reason": "hour 2024-01-02T01 not published yet (404)",
    }
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "date=2024-01-01/2024-01-01-22.json.gz": served[22],
        "date=2024-01-01/2024-01-01-23.json.gz": served[23],
        "date=2024-01-02/2024-01-02-0.json.gz": served[0],
    }
    item = lake.job_item("gharchive-local")
    assert item is not None and item["bookmark"] == "2024-01-02T00" and "lease_owner" not in item
    (row,) = lake.runs("gharchive-local")
    assert row["hours_fetched"] == ["2024-01-01T22", "2024-01-01T23", "2024-01-02T00"]
    assert lake.job_item() is None  # other job names untouched


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (
            ["--baseline-day", "2024-13-01"],
            {},
            "--baseline-day (GHARCHIVE_BASELINE_DAY): '2024-13-01' is not a date YYYY-MM-DD",
        ),
        (["--max-hours", "745"], {}, "--max-hours (GHARCHIVE_MAX_HOURS): '745' is out of range 1..744"),
        ([], {"GHARCHIVE_MAX_HOURS": "ten"}, "--max-hours (GHARCHIVE_MAX_HOURS): 'ten' is not an integer"),
        (
            ["--output", "gs://bucket/gh/"],
            {},
            "--output (GHARCHIVE_OUTPUT): 'gs://bucket/gh/' is neither s3://bucket/prefix/ nor a local directory",
        ),
        (
            ["--now", "yesterday"],
            {},
            "--now (GHARCHIVE_NOW): 'yesterday' is not an ISO timestamp (e.g. 2024-01-01T06:00:00Z)",
        ),
    ],
)
def test_bad_arguments_exit_3_naming_the_flag_and_value(
    archive: Archive, lake: Lake, extra: list[str], env: dict[str, str], message: str
) -> None:
    result, summary = run_job(archive, lake, *extra, env=env)

    assert result.returncode == 3
    assert f"gharchive-ingest: error: {message}\n" in result.stderr
    assert summary["status"] == "FAILED" and summary["error"] == message
    assert archive.log() == []
    assert lake.runs() == [] and lake.job_item() is None


def test_missing_required_setting_is_a_usage_error(lake: Lake) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lake_ingest.gharchive", "--output", lake.output, "--jobs-table", lake.jobs_table],
        env=job_env(lake),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "error: --runs-table (or GHARCHIVE_RUNS_TABLE) is required" in result.stderr
