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
    assert first == {"file": str(newest), "key": key, "uploaded": True, "bytes": len(CONTENT)}
    assert keys(s3, bucket) == [key]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == CONTENT

    second = output(run_cli(env, *args))
    assert second == {**first, "uploaded": False}
    assert keys(s3, bucket) == [key]

    changed = CONTENT + b"temp-hall,2024-03-01T06:00:00Z,2024-03-01T11:59:59Z,19.75,72\n"
    write(tmp_path, "sensor_2024_03.csv", changed, 1_700_000_200)
    third = output(run_cli(env, *args))
    new_key = key_for("sensor_2024_03", changed)
    assert third == {"file": str(newest), "key": new_key, "uploaded": True, "bytes": len(changed)}
    assert sorted(keys(s3, bucket)) == sorted([key, new_key])


def test_prefix_and_pattern_flags(tmp_path, moto_server, bucket):
    write(tmp_path, "sensor.csv", b"csv\n", 1_700_000_900)
    chosen = write(tmp_path, "export.txt", CONTENT, 1_700_000_000)
    result = output(
        run_cli(
            moto_server.aws_env(), "--folder", str(tmp_path), "--bucket", bucket, "--prefix", "in", "--pattern", "*.txt"
        )
    )
    assert result == {
        "file": str(chosen),
        "key": key_for("export", CONTENT, "in/"),
        "uploaded": True,
        "bytes": len(CONTENT),
    }
    assert keys(moto_server.client("s3"), bucket) == [key_for("export", CONTENT, "in/")]


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
