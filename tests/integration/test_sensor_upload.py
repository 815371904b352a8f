"""The sensor upload CLI as a real subprocess against real HTTP S3 (moto server), plus its pure parts.

Each test uses its own bucket in the shared moto server, so nothing here needs a reset.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from ingestion import sensor_upload

REPO = Path(__file__).resolve().parents[2]
CONTENT = b"sensor_id,start_time,end_time,value,readings\ntemp-hall,2024-03-01T00:00:00Z,2024-03-01T05:59:59Z,19.5,72\n"


def write(folder: Path, name: str, data: bytes, mtime: int) -> Path:
    path = folder / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def key_for(stem: str, data: bytes, prefix: str = "sensor/raw/") -> str:
    return f"{prefix}{stem}-{hashlib.sha256(data).hexdigest()[:16]}.csv"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestion.sensor_upload", *args],
        cwd=REPO,
        env={**os.environ, "AWS_MAX_ATTEMPTS": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def keys(s3, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def bucket(moto_server) -> str:
    name = f"raw-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


# --- pure parts ----------------------------------------------------------------------------------------


def test_newest_file_by_mtime_then_name_ignoring_other_patterns_and_dot_files(tmp_path):
    write(tmp_path, "sensor_2024_02.csv", b"a", 1_700_000_000)
    write(tmp_path, "sensor_2024_03.csv", b"b", 1_700_000_100)
    write(tmp_path, "notes.txt", b"c", 1_700_000_900)
    write(tmp_path, ".sensor_2024_04.csv", b"d", 1_700_000_900)
    (tmp_path / "subdir.csv").mkdir()
    assert sensor_upload.newest_file(tmp_path, "*.csv") == tmp_path / "sensor_2024_03.csv"
    write(tmp_path, "sensor_2024_01.csv", b"e", 1_700_000_100)  # same mtime: the larger name wins
    assert sensor_upload.newest_file(tmp_path, "*.csv") == tmp_path / "sensor_2024_03.csv"
    assert sensor_upload.newest_file(tmp_path, "*_01.csv") == tmp_path / "sensor_2024_01.csv"


def test_newest_file_errors_are_bad_input(tmp_path):
    with pytest.raises(sensor_upload.BadInputError, match=r"^no file matching '\*\.csv' in "):
        sensor_upload.newest_file(tmp_path, "*.csv")
    missing = tmp_path / "missing"
    with pytest.raises(sensor_upload.BadInputError) as raised:
        sensor_upload.newest_file(missing, "*.csv")
    assert str(raised.value) == f"folder {missing} does not exist or is not a directory"


def test_object_key_is_prefix_stem_and_content_hash():
    digest = hashlib.sha256(CONTENT).hexdigest()
    path = Path("/data/sensor_2024_03.csv")
    assert sensor_upload.object_key("sensor/raw/", path, digest) == f"sensor/raw/sensor_2024_03-{digest[:16]}.csv"
    assert sensor_upload.object_key("/sensor/raw", path, digest) == f"sensor/raw/sensor_2024_03-{digest[:16]}.csv"
    assert sensor_upload.object_key("", path, digest) == f"sensor_2024_03-{digest[:16]}.csv"


def test_plan_upload_reads_the_newest_file_once(tmp_path):
    write(tmp_path, "old.csv", b"old\n", 1_700_000_000)
    path = write(tmp_path, "new.csv", CONTENT, 1_700_000_001)
    planned = sensor_upload.plan_upload(tmp_path, "*.csv", "sensor/raw/")
    assert (planned.path, planned.key, planned.data) == (path, key_for("new", CONTENT), CONTENT)
    assert planned.sha256 == hashlib.sha256(CONTENT).digest()


def test_plan_upload_rejects_an_empty_newest_file(tmp_path):
    write(tmp_path, "old.csv", CONTENT, 1_700_000_000)
    empty = write(tmp_path, "new.csv", b"", 1_700_000_001)
    with pytest.raises(sensor_upload.BadInputError) as raised:
        sensor_upload.plan_upload(tmp_path, "*.csv", "sensor/raw/")
    assert str(raised.value) == f"newest file {empty} is empty"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Earliest start to latest end, offsets converted to UTC: 23:30-01:00 on Feb 29 is Feb 29 22:30 UTC.
        (
            ["a,2024-03-10T00:00:00Z,2024-03-10T01:00:00Z,1", "a,2024-03-01T00:30:00+01:00,2024-03-01T02:00,2"],
            ("2024-02-29T23:30:00+00:00", "2024-03-10T01:00:00+00:00", ["2024-02", "2024-03"]),
        ),
        # Nanosecond fractions, a space separator, no seconds; a year boundary.
        (
            ["a,2023-12-31 23:59:59.123456789,2024-01-01 00:05,1"],
            ("2023-12-31T23:59:59.123456+00:00", "2024-01-01T00:05:00+00:00", ["2023-12", "2024-01"]),
        ),
        # Rows the job quarantines do not count: blank, not ISO, not a date, too many fields.
        (
            ["a,,2024-05-01T00:00:00Z,1", "a,May 1,2024-05-01T00:00:00Z,1",
             "a,2024-02-30T00:00:00Z,2024-02-30T01:00:00Z,1", "a,2024-06-01T00:00:00Z,2024-06-01T01:00:00Z,1,extra",
             "a,2024-04-02T00:00:00Z,2024-04-02T01:00:00Z,1"],
            ("2024-04-02T00:00:00+00:00", "2024-04-02T01:00:00+00:00", ["2024-04"]),
        ),
    ],
)  # fmt: skip
def test_interval_range_is_what_the_job_would_date(rows, expected):
    data = ("sensor_id,start_time,end_time,value\n" + "\n".join(rows) + "\n").encode()
    found = sensor_upload.interval_range(data)
    assert found is not None
    first, last = found
    assert (first.isoformat(), last.isoformat(), sensor_upload.months_between(first, last)) == expected


def test_interval_range_leaves_files_without_both_time_columns_or_a_datable_row_to_the_job():
    assert (
        sensor_upload.interval_range(b"sensor_id,start,end,value\na,2024-03-01T00:00:00Z,2024-03-01T01:00:00Z,1\n")
        is None
    )
    assert sensor_upload.interval_range(b"sensor_id,start_time,end_time,value\na,,,1\n") is None
    assert sensor_upload.interval_range(b"\xff\xfe") is None


def test_index_entries_name_each_month_then_the_file_marker_last():
    data = b"sensor_id,start_time,end_time,value\na,2024-01-31T23:00:00Z,2024-03-01T00:00:00Z,1\n"
    entries = sensor_upload.index_entries("sensor/raw", "sensor/raw/sub/x-0123.csv", data)
    assert list(entries) == [
        "sensor/raw/_index/month=2024-01/sub/x-0123.csv.json",
        "sensor/raw/_index/month=2024-02/sub/x-0123.csv.json",
        "sensor/raw/_index/month=2024-03/sub/x-0123.csv.json",
        "sensor/raw/_index/files/sub/x-0123.csv.json",
    ]
    assert json.loads(entries["sensor/raw/_index/files/sub/x-0123.csv.json"]) == {
        "file": "sub/x-0123.csv",
        "first_start": "2024-01-31T23:00:00.000000Z",
        "last_end": "2024-03-01T00:00:00.000000Z",
        "months": ["2024-01", "2024-02", "2024-03"],
        "bytes": len(data),
    }


# --- the CLI against moto ----------------------------------------------------------------------------


def output(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_upload_newest_once_then_a_new_key_for_new_content(tmp_path, moto_server, bucket):
    s3 = moto_server.client("s3")
    env = moto_server.aws_env()
    write(tmp_path, "sensor_2024_02.csv", b"older export\n", 1_700_000_000)
    newest = write(tmp_path, "sensor_2024_03.csv", CONTENT, 1_700_000_100)
    args = ("--folder", str(tmp_path), "--bucket", bucket)

    first = output(run_cli(env, *args))
    key = key_for("sensor_2024_03", CONTENT)
    assert first == {"file": str(newest), "key": key, "uploaded": True, "bytes": len(CONTENT), "months": ["2024-03"]}
    rel = key.removeprefix("sensor/raw/")
    index = [f"sensor/raw/_index/files/{rel}.json", f"sensor/raw/_index/month=2024-03/{rel}.json"]
    assert keys(s3, bucket) == sorted([key, *index])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == CONTENT
    entry = {
        "file": rel,
        "first_start": "2024-03-01T00:00:00.000000Z",
        "last_end": "2024-03-01T05:59:59.000000Z",
        "months": ["2024-03"],
        "bytes": len(CONTENT),
    }
    for index_key in index:
        assert json.loads(s3.get_object(Bucket=bucket, Key=index_key)["Body"].read()) == entry

    # The index of a file uploaded before (or by a run that stopped after the CSV) is written again.
    s3.delete_object(Bucket=bucket, Key=index[1])
    second = output(run_cli(env, *args))
    assert second == {**first, "uploaded": False}
    assert keys(s3, bucket) == sorted([key, *index])

    # A corrected export reaching into April: a new key, indexed under both months.
    changed = CONTENT + b"temp-hall,2024-03-31T23:00:00Z,2024-04-01T00:59:59+00:00,19.75,72\n"
    write(tmp_path, "sensor_2024_03.csv", changed, 1_700_000_200)
    third = output(run_cli(env, *args))
    new_key = key_for("sensor_2024_03", changed)
    new_rel = new_key.removeprefix("sensor/raw/")
    assert third == {
        "file": str(newest),
        "key": new_key,
        "uploaded": True,
        "bytes": len(changed),
        "months": ["2024-03", "2024-04"],
    }
    assert sorted(keys(s3, bucket)) == sorted(
        [
            key,
            *index,
            new_key,
            f"sensor/raw/_index/files/{new_rel}.json",
            f"sensor/raw/_index/month=2024-03/{new_rel}.json",
            f"sensor/raw/_index/month=2024-04/{new_rel}.json",
        ]
    )


def test_prefix_and_pattern_flags(tmp_path, moto_server, bucket):
    write(tmp_path, "sensor.csv", b"csv\n", 1_700_000_900)
    chosen = write(tmp_path, "export.txt", CONTENT, 1_700_000_000)
    result = output(
        run_cli(
            moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", bucket, "--prefix", "in", "--pattern", "*.txt"
        )
    )
    key = key_for("export", CONTENT, "in/")
    assert result == {"file": str(chosen), "key": key, "uploaded": True, "bytes": len(CONTENT), "months": ["2024-03"]}
    rel = key.removeprefix("in/")
    assert keys(moto_server.client("s3"), bucket) == sorted(
        [key, f"in/_index/files/{rel}.json", f"in/_index/month=2024-03/{rel}.json"]
    )


def test_a_file_the_cli_cannot_date_is_uploaded_without_an_index_entry(tmp_path, moto_server, bucket):
    data = b"sensor_id,start,end_time,value\ntemp-hall,2024-03-01T00:00:00Z,2024-03-01T05:59:59Z,19.5\n"
    write(tmp_path, "odd.csv", data, 1_700_000_000)
    result = output(run_cli(moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", bucket))
    assert (result["uploaded"], result["months"]) == (True, None)
    assert keys(moto_server.client("s3"), bucket) == [key_for("odd", data)]  # the job indexes it when it reads it


def test_empty_folder_exits_3(tmp_path, moto_server, bucket):
    result = run_cli(moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", bucket)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == f"sensor_upload: no file matching '*.csv' in {tmp_path}\n"
    assert keys(moto_server.client("s3"), bucket) == []


def test_missing_folder_and_empty_file_exit_3(tmp_path, moto_server, bucket):
    missing = run_cli(moto_server.aws_env(), "--folder", str(tmp_path / "nope"), "--bucket", bucket)
    assert (missing.returncode, missing.stderr) == (
        3,
        f"sensor_upload: folder {tmp_path / 'nope'} does not exist or is not a directory\n",
    )
    empty = write(tmp_path, "sensor.csv", b"", 1_700_000_000)
    result = run_cli(moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", bucket)
    assert (result.returncode, result.stderr) == (3, f"sensor_upload: newest file {empty} is empty\n")


def test_missing_bucket_exits_5(tmp_path, moto_server):
    write(tmp_path, "sensor.csv", CONTENT, 1_700_000_000)
    result = run_cli(moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", "no-such-bucket-here")
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr == (
        f"sensor_upload: upload to s3://no-such-bucket-here/{key_for('sensor', CONTENT)} failed "
        "(NoSuchBucket, HTTP 404): The specified bucket does not exist\n"
    )


def test_unreachable_endpoint_exits_4(tmp_path, moto_server, bucket):
    write(tmp_path, "sensor.csv", CONTENT, 1_700_000_000)
    env = {**moto_server.aws_env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = run_cli(env, "--folder", str(tmp_path), "--bucket", bucket)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        f"sensor_upload: upload to s3://{bucket}/{key_for('sensor', CONTENT)} failed: "
        f'Could not connect to the endpoint URL: "http://127.0.0.1:9/{bucket}/{key_for("sensor", CONTENT)}"\n'
    )


def test_bad_flags_exit_2(tmp_path):
    result = run_cli({}, "--folder", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.endswith("error: the following arguments are required: --bucket\n")


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("SlowDown", 503, 4),
        ("InternalError", 500, 4),
        ("TooManyRequestsException", 429, 4),
        ("RequestTimeout", 400, 4),
        ("AccessDenied", 403, 5),
        ("NoSuchBucket", 404, 5),
        ("InvalidArgument", 400, 5),
    ],
)
def test_client_errors_map_to_transient_or_failed(code, status, exit_code):
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": code, "Message": "details"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )
    classified = sensor_upload.classify(error, "upload to s3://b/k")
    assert classified.exit_code == exit_code
    assert str(classified) == f"upload to s3://b/k failed ({code}, HTTP {status}): details"
