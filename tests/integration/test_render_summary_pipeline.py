"""The render-summary CLI as a real subprocess against real HTTP S3 (moto server) and real PostgreSQL.

This is the Batch job end to end, minus the container: the same console script, flags and
environment variables the job definition uses. Each test gets a fresh schema in the shared
PostgreSQL and an empty moto (buckets `raw` and `quarantine`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from render_summary import storage

from job_runtime.errors import TransientError
from localrun import sample_data
from tests.jobs.emf import check_run_summary, figures, json_lines, one_run_summary
from tests.jobs.test_render_summary import mixed_file

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "sample_data" / "render_logs" / "render_logs.csv"
WITH_ERRORS = REPO / "sample_data" / "render_logs" / "render_logs_with_errors.csv"
SEED_KEY = "render-logs/2025/10/06/render_logs.csv"
SEED_URI = f"s3://raw/{SEED_KEY}"
QUARANTINE = "s3://quarantine/render-logs"
CONSOLE_SCRIPT = Path(sys.executable).parent / "render-summary"
TABLE = "performance_summary"
BY_FILE = "performance_summary_by_file"
EXPECTED_COLUMNS = {
    TABLE: [
        ("device_id", "character varying(50)", "NO"),
        ("avg_frame_rate", "double precision", "NO"),
        ("avg_gpu_usage", "double precision", "NO"),
        ("max_latency_ms", "integer", "NO"),
        ("log_count", "bigint", "NO"),
    ],
    BY_FILE: [
        ("source_uri", "character varying(1024)", "NO"),
        ("device_id", "character varying(50)", "NO"),
        ("sum_frame_rate", "double precision", "NO"),
        ("sum_gpu_usage", "double precision", "NO"),
        ("max_latency_ms", "integer", "NO"),
        ("log_count", "bigint", "NO"),
    ],
}


def expected_rows(csv_bytes: bytes, source_uri: str) -> dict[str, tuple[Any, ...]]:
    """Per-device expectation computed independently of the job: csv module + math.fsum."""
    by_device: dict[str, list[dict[str, str]]] = {}
    for record in csv.DictReader(io.StringIO(csv_bytes.decode())):
        by_device.setdefault(record["device_id"], []).append(record)
    return {
        device: (
            device,
            math.fsum(float(r["frame_rate"]) for r in records) / len(records),
            math.fsum(float(r["gpu_usage"]) for r in records) / len(records),
            max(int(r["latency_ms"]) for r in records),
            len(records),
            source_uri,
        )
        for device, records in by_device.items()
    }


def assert_rows_match(actual: list[tuple[Any, ...]], expected: dict[str, tuple[Any, ...]]) -> None:
    assert [row[0] for row in actual] == sorted(expected)
    for row in actual:
        want = expected[row[0]]
        assert (row[0], row[3], row[4], row[5]) == (want[0], want[3], want[4], want[5])
        assert row[1] == pytest.approx(want[1], rel=1e-12)
        assert row[2] == pytest.approx(want[2], rel=1e-12)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Job:
    """Runs the console script in a clean environment pointed at moto and the test's schema."""

    def __init__(self, aws_env: dict[str, str], dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POSTGRES_", "REDSHIFT_"))}
        for name in (
            *("WAREHOUSE_BACKEND", "RENDER_SUMMARY_QUARANTINE", "SUMMARY_SCHEMA", "SUMMARY_TABLE"),
            *("METRICS_STACK", "METRICS_PIPELINE"),
        ):
            base.pop(name, None)
        self.env = {**base, **aws_env, "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            command: list[str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:  # fmt: skip
        result = subprocess.run(
            [*(command or [str(CONSOLE_SCRIPT)]), *args],
            env={**self.env, **(env or {})},
            cwd=cwd or REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Every "{" line is pure JSON (tests/jobs/emf.py); a loaded file's summary is the metrics line.
        summaries = json_lines(result.stdout)
        assert len(summaries) == 1, f"expected one JSON run summary on stdout:\n{result.stdout}\n{result.stderr}"
        if "_aws" not in summaries[0]:
            return result, summaries[0]
        given = {**self.env, **(env or {})}
        stack, pipeline = given.get("METRICS_STACK", "local"), given.get("METRICS_PIPELINE", "render-logs")
        return result, figures(check_run_summary(summaries[0], stack=stack, pipeline=pipeline, job="render_summary"))

    def load(self, input_uri: str, *extra: str, dsn: str | None = None, env: dict[str, str] | None = None):
        return self.run("--input", input_uri, "--quarantine", QUARANTINE, "--warehouse", "postgres",
                        "--postgres-dsn", dsn or self.dsn, "--schema", self.schema, *extra, env=env)  # fmt: skip

    def rows(self, source_uri: str | None = None) -> list[tuple[Any, ...]]:
        """Per-file rows as (device_id, avg_frame_rate, avg_gpu_usage, max_latency_ms, log_count, source_uri):
        the averages are the stored sums divided by the count, one IEEE division as the job's own."""
        where, params = ("WHERE source_uri = %s", [source_uri]) if source_uri else ("", [])
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(
                "SELECT device_id, sum_frame_rate / log_count, sum_gpu_usage / log_count, max_latency_ms, "
                f"log_count, source_uri FROM {self.schema}.{BY_FILE} {where} ORDER BY source_uri, device_id",
                params,
            ).fetchall()

    def summary(self, table: str = TABLE) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(f"SELECT * FROM {self.schema}.{table} ORDER BY device_id").fetchall()

    def table_exists(self) -> bool:
        with psycopg.connect(self.dsn) as conn:
            found = [
                conn.execute("SELECT to_regclass(%s)", [f"{self.schema}.{name}"]).fetchone()
                for name in (TABLE, BY_FILE)
            ]
        exists = [row is not None and row[0] is not None for row in found]
        assert exists[0] == exists[1], "the two tables are created together"
        return exists[0]

    def columns(self, table: str = TABLE) -> list[tuple[str, str, str]]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position",
                [self.schema, table],
            ).fetchall()
        return [(name, f"{dtype}({length})" if length else dtype, nullable) for name, dtype, length, nullable in rows]

    def primary_key(self, table: str = TABLE) -> list[str]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT k.column_name FROM information_schema.table_constraints c "
                "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
                "WHERE c.table_schema = %s AND c.table_name = %s AND c.constraint_type = 'PRIMARY KEY' "
                "ORDER BY k.ordinal_position",
                [self.schema, table],
            ).fetchall()
        return [name for (name,) in rows]


@pytest.fixture
def s3(moto_server):
    moto_server.reset()
    client = moto_server.client("s3")
    for bucket in ("raw", "quarantine"):
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def job(postgres_dsn: str, moto_server) -> Iterator[Job]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield Job(moto_server.aws_env(), postgres_dsn, schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def put(s3, key: str, body: bytes, bucket: str = "raw") -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def object_exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey")
        return False
    return True


# --- happy path and idempotency -----------------------------------------------------------------------


def test_seed_from_s3_is_loaded_exactly(s3, job: Job) -> None:
    put(s3, SEED_KEY, SEED.read_bytes())

    # What the Batch job definition sets (components/compute.py BatchJob): the metrics' Stack and Pipeline.
    result, summary = job.load(SEED_URI, env={"METRICS_STACK": "dev", "METRICS_PIPELINE": "render-logs"})

    assert result.returncode == 0, result.stderr
    assert summary == {
        "Stack": "dev", "Pipeline": "render-logs", "Job": "render_summary", "RowsIn": 13, "RowsLoaded": 13,
        "RowsQuarantined": 0, "Files": 1, "Devices": 4,
        "event": "run_summary", "input": SEED_URI, "devices": 4, "quarantine": None, "table": f"{job.schema}.{TABLE}",
        "status": "succeeded",
    }  # fmt: skip
    assert job.columns(TABLE) == EXPECTED_COLUMNS[TABLE]
    assert job.columns(BY_FILE) == EXPECTED_COLUMNS[BY_FILE]
    assert job.primary_key(TABLE) == ["device_id"]
    assert job.primary_key(BY_FILE) == ["source_uri", "device_id"]

    rows = job.rows()
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == [
        ("iac-vx1", 24, 5, SEED_URI),
        ("iac-vx2", 20, 2, SEED_URI),
        ("iac-vx3", 21, 1, SEED_URI),
        ("iac-vx4", 25, 5, SEED_URI),
    ]
    assert_rows_match(rows, expected_rows(SEED.read_bytes(), SEED_URI))
    assert job.summary() == [row[:5] for row in rows]  # one file: the totals are its rows
    # No quarantine object for a clean file.
    assert s3.list_objects_v2(Bucket="quarantine").get("KeyCount") == 0


def test_rerun_is_idempotent_and_a_corrected_file_replaces_its_rows(s3, job: Job) -> None:
    seed = SEED.read_bytes()
    other_uri = put(s3, "render-logs/2025/10/07/render_logs.csv", seed)
    put(s3, SEED_KEY, seed)
    assert job.load(other_uri)[0].returncode == 0
    assert job.load(SEED_URI)[0].returncode == 0
    first = job.rows()
    assert len(first) == 8
    totals = job.summary()
    # Two copies of the seed: each device's count doubles, its averages and max stay.
    assert [(r[0], r[3], r[4]) for r in totals] == [("iac-vx1", 24, 10), ("iac-vx2", 20, 4), ("iac-vx3", 21, 2),
                                                    ("iac-vx4", 25, 10)]  # fmt: skip
    assert_rows_match(
        [(*r, SEED_URI) for r in totals],
        {d: (d, a, g, m, 2 * n, SEED_URI) for d, a, g, m, n, _ in expected_rows(seed, SEED_URI).values()},
    )

    result, summary = job.load(SEED_URI)
    assert result.returncode == 0, result.stderr
    assert summary["RowsLoaded"] == 13
    assert job.rows() == first  # exactly the same rows, values bit for bit
    assert job.summary() == totals

    corrected = b"".join(line for line in seed.splitlines(keepends=True) if b",iac-vx3," not in line)
    put(s3, SEED_KEY, corrected)
    result, summary = job.load(SEED_URI)
    assert result.returncode == 0, result.stderr
    assert (summary["RowsIn"], summary["RowsLoaded"], summary["devices"]) == (12, 12, 3)

    assert [r[0] for r in job.rows(SEED_URI)] == ["iac-vx1", "iac-vx2", "iac-vx4"]
    assert_rows_match(job.rows(SEED_URI), expected_rows(corrected, SEED_URI))
    assert job.rows(other_uri) == [r for r in first if r[5] == other_uri]  # other source untouched
    # The totals: iac-vx3 now only from the other file; the rest from both, the corrected one included.
    after = {r[0]: r for r in job.summary()}
    assert [(d, r[3], r[4]) for d, r in after.items()] == [("iac-vx1", 24, 10), ("iac-vx2", 20, 4),
                                                           ("iac-vx3", 21, 1), ("iac-vx4", 25, 10)]  # fmt: skip
    assert after["iac-vx3"][:5] == next(r[:5] for r in job.rows(other_uri) if r[0] == "iac-vx3")


def test_local_file_is_keyed_by_absolute_uri_from_any_directory(job: Job, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "logs.csv").write_bytes(SEED.read_bytes())
    quarantine = ["--quarantine", str(tmp_path / "q")]
    common = ["--warehouse", "postgres", "--postgres-dsn", job.dsn, "--schema", job.schema, *quarantine]

    assert job.run("--input", "data/logs.csv", *common, cwd=tmp_path)[0].returncode == 0
    first = job.rows()
    assert job.run("--input", "logs.csv", *common, cwd=data_dir)[0].returncode == 0
    assert job.rows() == first
    assert {r[5] for r in first} == {(data_dir / "logs.csv").resolve().as_uri()}


def test_configuration_from_environment_only(s3, job: Job) -> None:
    """The Batch job definition passes only --input; everything else comes from the environment."""
    put(s3, SEED_KEY, SEED.read_bytes())
    env = {
        "WAREHOUSE_BACKEND": "postgres",
        "POSTGRES_DSN": job.dsn,
        "RENDER_SUMMARY_QUARANTINE": QUARANTINE,
        "SUMMARY_SCHEMA": job.schema,
        "SUMMARY_TABLE": "perf_env",
    }
    result, summary = job.run("--input", SEED_URI, env=env)
    assert result.returncode == 0, result.stderr
    assert summary["table"] == f"{job.schema}.perf_env"
    with psycopg.connect(job.dsn) as conn:
        count = conn.execute(f"SELECT count(*), sum(log_count) FROM {job.schema}.perf_env").fetchone()
        by_file = conn.execute(f"SELECT count(*), sum(log_count) FROM {job.schema}.perf_env_by_file").fetchone()
    assert count == by_file == (4, 13)


# --- bad rows: quarantine ------------------------------------------------------------------------------


def test_bad_rows_are_quarantined_in_s3_and_cleared_after_a_fix(s3, job: Job) -> None:
    key = "render-logs/2025/10/06/with_errors.csv"
    uri = put(s3, key, WITH_ERRORS.read_bytes())
    quarantine_key = f"render-logs/raw/{key}.quarantine.csv"

    result, summary = job.load(uri)

    assert result.returncode == 0, result.stderr
    assert summary == {
        "Stack": "local", "Pipeline": "render-logs", "Job": "render_summary", "RowsIn": 8, "RowsLoaded": 2,
        "RowsQuarantined": 6, "Files": 1, "Devices": 2,
        "event": "run_summary", "input": uri, "devices": 2, "quarantine": f"s3://quarantine/{quarantine_key}",
        "table": f"{job.schema}.{TABLE}", "status": "succeeded",
    }  # fmt: skip
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="quarantine")["Contents"]] == [quarantine_key]
    body = s3.get_object(Bucket="quarantine", Key=quarantine_key)["Body"].read().decode("utf-8")
    assert list(csv.reader(io.StringIO(body))) == [
        ["line_number", "reason", "raw_line"],
        ["3", "empty device_id", "2025-10-06T12:00:10,,59.0,80.0,18"],
        ["4", "non-numeric frame_rate", "2025-10-06T12:00:20,iac-vx2,fast,80.0,18"],
        ["5", "unparsable timestamp", "not-a-time,iac-vx2,59.5,81.0,19"],
        ["6", "expected 5 fields, found 4", "2025-10-06T12:00:40,iac-vx2,59.5,81.0"],
        ["7", "gpu_usage outside 0..100", "2025-10-06T12:00:50,iac-vx3,58.0,101.5,22"],
        ["9", "invalid UTF-8 (invalid start byte at byte 26)", "2025-10-06T12:01:10,iac-vx\\xff3,58.5,70.0,31"],
    ]
    assert job.rows() == [
        ("iac-vx1", 60.0, 90.0, 20, 1, uri),
        ("iac-vx3", 58.5, 70.0, 30, 1, uri),
    ]

    # A rerun with the same bad file rewrites the same object (no second quarantine file).
    assert job.load(uri)[0].returncode == 0
    assert s3.list_objects_v2(Bucket="quarantine")["KeyCount"] == 1

    # The producer fixes the file: the stale quarantine object goes, the rows are replaced.
    put(s3, key, SEED.read_bytes())
    result, summary = job.load(uri)
    assert result.returncode == 0, result.stderr
    assert (summary["RowsIn"], summary["RowsQuarantined"], summary["quarantine"]) == (13, 0, None)
    assert not object_exists(s3, "quarantine", quarantine_key)
    assert s3.list_objects_v2(Bucket="quarantine")["KeyCount"] == 0
    assert_rows_match(job.rows(), expected_rows(SEED.read_bytes(), uri))


def test_s3_stream_gives_exactly_what_the_local_file_gives(s3, job: Job, tmp_path: Path) -> None:
    """The same bytes streamed from S3 and read from disk, in many small blocks, on the job's threads."""
    data, quarantine, values = mixed_file(150)
    key = "render-logs/2025/10/06/mixed.csv"
    uri = put(s3, key, data)
    local = tmp_path / "mixed.csv"
    local.write_bytes(data)

    from_s3, s3_summary = job.load(uri, "--batch-bytes", "4096")
    from_disk, disk_summary = job.load(str(local), "--batch-bytes", "4096", "--quarantine", str(tmp_path / "q"))

    assert (from_s3.returncode, from_disk.returncode) == (0, 0), from_s3.stderr + from_disk.stderr
    rows_in = sum(1 for line in data.split(b"\n")[2:] if line.strip())
    for summary in (s3_summary, disk_summary):
        assert (summary["RowsIn"], summary["RowsLoaded"], summary["RowsQuarantined"], summary["devices"]) == (
            rows_in, rows_in - len(quarantine), len(quarantine), len(values),
        )  # fmt: skip
    # Bit for bit: the blocks depend on the bytes and --batch-bytes only, not on how they were read.
    assert [r[:5] for r in job.rows(uri)] == [r[:5] for r in job.rows(local.resolve().as_uri())]
    quarantine_key = f"render-logs/raw/{key}.quarantine.csv"
    assert s3_summary["quarantine"] == f"s3://quarantine/{quarantine_key}"
    streamed = s3.get_object(Bucket="quarantine", Key=quarantine_key)["Body"].read()
    assert streamed == Path(disk_summary["quarantine"]).read_bytes()
    rows = list(csv.reader(io.StringIO(streamed.decode("utf-8"), newline="")))
    assert [(int(n), reason, raw) for n, reason, raw in rows[1:]] == quarantine
    for device, avg_frame, avg_gpu, max_latency, count, _ in job.rows(uri):
        expected = values[device]
        assert (count, max_latency) == (len(expected), max(v[2] for v in expected))
        assert avg_frame == pytest.approx(math.fsum(v[0] for v in expected) / len(expected), rel=1e-12)
        assert avg_gpu == pytest.approx(math.fsum(v[1] for v in expected) / len(expected), rel=1e-12)


@pytest.fixture
def in_moto(moto_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's boto3 clients (the job's storage module in-process) talk to the moto server."""
    for name, value in moto_server.aws_env().items():
        monkeypatch.setenv(name, value)


def test_a_large_quarantine_is_uploaded_in_parts(s3, in_moto) -> None:
    """Rows go up as 5 MiB parts while they arrive; the object appears whole, and only on commit."""
    rows = [(n, "non-numeric frame_rate", f"2025-10-06T12:00:00,iac-vx{n},fast,{'x' * 80},{n}") for n in range(120_000)]
    uri = "s3://quarantine/render-logs/raw/big.csv.quarantine.csv"
    with storage.QuarantineWriter(uri, part_bytes=5 * 1024 * 1024) as writer:
        for start in range(0, len(rows), 1000):
            writer.write(rows[start : start + 1000])
        uploads = s3.list_multipart_uploads(Bucket="quarantine").get("Uploads", [])
        assert [u["Key"] for u in uploads] == ["render-logs/raw/big.csv.quarantine.csv"]
        assert not object_exists(s3, "quarantine", "render-logs/raw/big.csv.quarantine.csv")
        writer.commit()

    body = s3.get_object(Bucket="quarantine", Key="render-logs/raw/big.csv.quarantine.csv")["Body"].read().decode()
    first = s3.head_object(Bucket="quarantine", Key="render-logs/raw/big.csv.quarantine.csv", PartNumber=1)
    # Each part: 5 MiB and at most one write (1000 rows) more; the last one takes the rest.
    assert 5 * 1024 * 1024 <= first["ContentLength"] < 5 * 1024 * 1024 + 200_000
    assert first["PartsCount"] == len(body) // first["ContentLength"] + 1 == 4
    assert list(csv.reader(io.StringIO(body, newline=""))) == [
        ["line_number", "reason", "raw_line"],
        *([str(n), reason, raw] for n, reason, raw in rows),
    ]
    assert s3.list_multipart_uploads(Bucket="quarantine").get("Uploads", []) == []


def test_an_interrupted_quarantine_upload_is_aborted_and_the_old_object_kept(s3, in_moto) -> None:
    key = "render-logs/raw/old.csv.quarantine.csv"
    put(s3, key, b'line_number,reason,raw_line\n2,empty device_id,"x,,1,2,3"\n', bucket="quarantine")
    rows = [(n, "empty device_id", "x" * 100) for n in range(60_000)]
    with pytest.raises(TransientError), storage.QuarantineWriter(f"s3://quarantine/{key}", 5 * 1024 * 1024) as writer:
        writer.write(rows)  # 6.6 MB: one part uploaded
        assert len(s3.list_multipart_uploads(Bucket="quarantine")["Uploads"]) == 1
        raise TransientError("reading the input: connection reset")
    assert s3.list_multipart_uploads(Bucket="quarantine").get("Uploads", []) == []
    assert s3.get_object(Bucket="quarantine", Key=key)["Body"].read().startswith(b"line_number,reason,raw_line\n2,")


# --- whole-file failures and exit codes ----------------------------------------------------------------


def test_missing_required_column_is_exit_3_and_table_untouched(s3, job: Job) -> None:
    put(s3, SEED_KEY, SEED.read_bytes())
    assert job.load(SEED_URI)[0].returncode == 0
    before = job.rows()
    no_latency = b"".join(line.rsplit(b",", 1)[0] + b"\n" for line in SEED.read_bytes().splitlines())
    put(s3, SEED_KEY, no_latency)

    result, summary = job.load(SEED_URI)

    assert result.returncode == 3
    assert summary["status"] == "failed" and summary["exit_code"] == 3
    assert summary["error"].startswith("missing required column(s): latency_ms; ")
    assert "missing required column(s): latency_ms" in result.stderr
    assert job.rows() == before
    assert s3.list_objects_v2(Bucket="quarantine")["KeyCount"] == 0


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("s3://raw/render-logs/nope.csv", "reading s3://raw/render-logs/nope.csv: does not exist (NoSuchKey)"),
        ("s3://no-such-bucket/x.csv", "reading s3://no-such-bucket/x.csv: does not exist (NoSuchBucket)"),
    ],
)
def test_missing_s3_object_is_exit_3(s3, job: Job, uri: str, error: str) -> None:
    result, summary = job.load(uri)
    assert result.returncode == 3, result.stderr
    # A run that loaded nothing prints a plain JSON line (no metrics), named like the metrics line.
    assert summary == {
        "event": "run_summary", "Stack": "local", "Pipeline": "render-logs", "Job": "render_summary", "input": uri,
        "status": "failed", "exit_code": 3, "error": error,
    }  # fmt: skip
    assert not job.table_exists()


def test_empty_file_is_a_successful_no_op(s3, job: Job) -> None:
    uri = put(s3, "render-logs/2025/10/06/empty.csv", b"")

    result, summary = job.load(uri)
    assert result.returncode == 0, result.stderr
    assert (summary["RowsIn"], summary["RowsLoaded"], summary["RowsQuarantined"], summary["devices"]) == (0, 0, 0, 0)
    assert job.table_exists()  # created, with nothing from this file
    assert job.rows() == job.summary() == []

    put(s3, SEED_KEY, SEED.read_bytes())
    assert job.load(SEED_URI)[0].returncode == 0
    before = job.rows()
    assert job.load(uri)[0].returncode == 0
    assert job.rows() == before


def test_a_file_corrected_to_no_valid_row_removes_its_contribution(s3, job: Job) -> None:
    put(s3, SEED_KEY, SEED.read_bytes())
    assert job.load(SEED_URI)[0].returncode == 0
    put(s3, SEED_KEY, b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n")
    result, summary = job.load(SEED_URI)
    assert result.returncode == 0, result.stderr
    assert summary["RowsIn"] == 0
    assert job.rows() == job.summary() == []


def test_unreachable_s3_is_transient_exit_4(job: Job) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result, summary = job.run("--input", SEED_URI, "--quarantine", QUARANTINE, "--warehouse", "none",
                              env={"AWS_ENDPOINT_URL": endpoint})  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert summary["exit_code"] == 4
    assert summary["error"].startswith(f'reading {SEED_URI}: Could not connect to the endpoint URL: "{endpoint}/')


def test_unreachable_postgres_is_transient_exit_4(job: Job, tmp_path: Path) -> None:
    dsn = f"host={tmp_path / 'no-server'} port=5432 user=postgres dbname=postgres"
    result, summary = job.run("--input", str(SEED), "--quarantine", str(tmp_path / "q"),
                              "--warehouse", "postgres", "--postgres-dsn", dsn)  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert summary["exit_code"] == 4
    assert summary["error"].startswith("PostgreSQL unavailable: ")
    assert str(tmp_path / "no-server") in summary["error"]


def test_usage_error_is_exit_2(job: Job) -> None:
    result = subprocess.run([str(CONSOLE_SCRIPT), "--input", str(SEED)], env=job.env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "--quarantine (or RENDER_SUMMARY_QUARANTINE) is required" in result.stderr
    assert result.stdout == ""


# --- no warehouse: print the summary ------------------------------------------------------------------


@pytest.mark.parametrize("command", [[str(CONSOLE_SCRIPT)], [sys.executable, "-m", "render_summary"]])
def test_warehouse_none_prints_the_summary_table(job: Job, tmp_path: Path, command: list[str]) -> None:
    result, summary = job.run("--input", str(SEED), "--quarantine", str(tmp_path / "q"), "--warehouse", "none",
                              command=command)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (summary["RowsIn"], summary["RowsLoaded"], summary["devices"]) == (13, 13, 4)

    lines = result.stdout.splitlines()
    assert lines[0].startswith("{")
    assert lines[1].split() == ["device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count"]
    expected = expected_rows(SEED.read_bytes(), "")
    table = [line.split() for line in lines[2:]]
    assert [row[0] for row in table] == ["iac-vx1", "iac-vx2", "iac-vx3", "iac-vx4"]
    for device, avg_frame, avg_gpu, max_latency, count in table:
        want = expected[device]
        assert float(avg_frame) == pytest.approx(want[1], abs=5e-7)  # printed with 6 decimals
        assert float(avg_gpu) == pytest.approx(want[2], abs=5e-7)
        assert (int(max_latency), int(count)) == (want[3], want[4])
    assert not (tmp_path / "q").exists()


# --- a million devices: no cap, memory bounded ----------------------------------------------------------

MILLION = 1_000_000
# Peak RSS of the job on a file of 1,000,000 distinct devices, loaded into PostgreSQL. Measured ~545 MiB
# (the per-file aggregate and its merges are Arrow tables, ~100 bytes a device; Python objects exist one
# stage batch at a time); the job's default memory is 2048 MiB (renderLogsMemoryMib).
MILLION_DEVICES_PEAK_RSS = 768 * 1024 * 1024
PEAK_RSS_OF_CHILD = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'returncode': done.returncode, 'stdout': done.stdout, 'stderr': done.stderr[-4000:],\n"
    "                  'peak_rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n"
)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Run `command` as the only child of a fresh interpreter; (its JSON run summary, its peak RSS in bytes)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_OF_CHILD, *command], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child["returncode"] == 0, child["stderr"]
    return one_run_summary(child["stdout"], pipeline="render-logs", job="render_summary"), child["peak_rss"]


def test_a_million_distinct_devices_load_with_bounded_memory(job: Job, tmp_path: Path) -> None:
    path = tmp_path / "million.csv"
    sample_data.write_devices(path, MILLION)
    command = [
        *(str(CONSOLE_SCRIPT), "--input", str(path), "--quarantine", str(tmp_path / "q")),
        *("--warehouse", "postgres", "--postgres-dsn", job.dsn, "--schema", job.schema),
        *("--stage", str(tmp_path / "stage")),
    ]

    summary, peak = run_measured(command, job.env)

    assert (summary["RowsIn"], summary["RowsLoaded"], summary["devices"]) == (MILLION, MILLION, MILLION)
    assert peak < MILLION_DEVICES_PEAK_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
    with psycopg.connect(job.dsn) as conn:
        for table in (TABLE, BY_FILE):
            counts = conn.execute(
                f"SELECT count(*), sum(log_count), max(max_latency_ms), min(device_id), max(device_id) "
                f"FROM {job.schema}.{table}"
            ).fetchone()
            assert counts == (MILLION, MILLION, 999, "dev-0000000", "dev-0999999"), table
        sample = conn.execute(
            f"SELECT * FROM {job.schema}.{TABLE} WHERE device_id IN ('dev-0000123', 'dev-0999999') ORDER BY 1"
        ).fetchall()
    assert sample == [
        ("dev-0000123", 50 + 23 / 8, 123 % 97 + 0.5, 123, 1),
        ("dev-0999999", 50 + 99 / 8, 999999 % 97 + 0.5, 999, 1),
    ]
    assert not list((tmp_path / "stage").iterdir())
