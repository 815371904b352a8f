"""`copy-datasets` as a real subprocess against a real HTTP S3 (the shared moto server), plus its pure planner.

Every test makes its own uniquely named buckets (the moto server is shared and never reset here). The CLI runs
with `AWS_MAX_ATTEMPTS=1` so failures surface at once instead of after botocore's back-off.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from lake_ingest.copy_datasets import (
    Copy,
    Dataset,
    Recorded,
    SourceObject,
    TargetObject,
    classify_aws_error,
    keys_needing_metadata,
    plan_dataset,
    recorded_from_metadata,
    target_key_for,
)

from job_runtime.errors import BadInputError, JobError, TransientError
from tests.jobs.emf import check_run_summary, figures, json_lines

REPO = Path(__file__).resolve().parents[2]
COPY_ENV = ("COPY_SOURCE_BUCKET", "COPY_DATASETS", "COPY_TARGET", "COPY_SOURCE_REGION", "COPY_PART_SIZE_MIB")
METRICS_ENV = ("METRICS_STACK", "METRICS_PIPELINE")

CASES_CSV = b"date,county,cases\n2020-03-01,King,4\n2020-03-02,King,9\n"
PART_0 = b"date,county,cases\n2020-01-22,Cook,1\n"
TESTS_JSON = b'{"date": "2020-03-01", "state": "WA", "positive": 18}\n'


def unique(tag: str) -> str:
    return f"cd-{tag}-{uuid.uuid4().hex[:12]}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag of a single-part object


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class World:
    """A source bucket shaped like the COVID-19 lake and an empty landing bucket, both unique to one test."""

    def __init__(self, moto_server, source_region: str | None = None) -> None:
        self.s3 = moto_server.client("s3")
        self.source = unique("src")
        self.landing = unique("landing")
        source_config = {"CreateBucketConfiguration": {"LocationConstraint": source_region}} if source_region else {}
        self.s3.create_bucket(Bucket=self.source, **source_config)
        self.s3.create_bucket(Bucket=self.landing)
        self.target = f"s3://{self.landing}/covid19/"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in (*COPY_ENV, *METRICS_ENV)}
        self.env = {**base, **moto_server.aws_env(), "AWS_MAX_ATTEMPTS": "1"}

    def seed(self) -> None:
        self.put("enigma-jhu/csv/", b"")  # a console "folder" placeholder
        self.put("enigma-jhu/csv/cases.csv", CASES_CSV)
        self.put("enigma-jhu/csv/2020/01/part-0.csv", PART_0)
        self.put("enigma-jhu/csv-old/cases.csv", b"not part of the dataset\n")  # shares the prefix text, not folder
        self.put("rearc/testing/tests.json", TESTS_JSON)

    def put(self, key: str, body: bytes, bucket: str | None = None, metadata: dict[str, str] | None = None) -> None:
        self.s3.put_object(Bucket=bucket or self.source, Key=key, Body=body, Metadata=metadata or {})

    def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], Any]:
        result = subprocess.run(
            [sys.executable, "-m", "lake_ingest.copy_datasets", *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        # The run summary: the one JSON line, the metrics line (tests/jobs/emf.py) without its varying
        # timestamp and duration. No rows are parsed; Files is the objects copied.
        lines = json_lines(result.stdout)
        if not lines:
            return result, None
        assert len(lines) == 1, result.stdout
        given = {**self.env, **(env or {})}
        document = check_run_summary(
            lines[0],
            stack=given.get("METRICS_STACK", "local"),
            pipeline=given.get("METRICS_PIPELINE", "covid19"),
            job="copy_datasets",
        )
        assert (document["RowsIn"], document["Files"]) == (0, document["copied"])
        return result, figures(document)

    def copy(self, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], Any]:
        return self.run(
            "--source-bucket", self.source,
            "--dataset", "cases=enigma-jhu/csv/",
            "--dataset", "testing=rearc/testing/",
            "--target", self.target,
            *extra,
            env=env,
        )  # fmt: skip

    def landed(self) -> dict[str, bytes]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.landing)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return {key: self.s3.get_object(Bucket=self.landing, Key=key)["Body"].read() for key in keys}

    def metadata(self, key: str) -> dict[str, str]:
        return self.s3.head_object(Bucket=self.landing, Key=key)["Metadata"]

    def record(self, source_key: str, data: bytes) -> dict[str, str]:
        return {
            "source-etag": md5(data),
            "source-size": str(len(data)),
            "source-uri": f"s3://{self.source}/{source_key}",
        }


def stats(listed: int, copied: int, unchanged: int, bytes_copied: int, kept: int = 0) -> dict[str, int]:
    return {"listed": listed, "copied": copied, "unchanged": unchanged, "bytes_copied": bytes_copied,
            "kept_not_in_source": kept}  # fmt: skip


def run_metrics(copied: int, stack: str = "local", pipeline: str = "covid19") -> dict[str, Any]:
    """The dimensions and metrics of a run that copied `copied` objects."""
    return {"Stack": stack, "Pipeline": pipeline, "Job": "copy_datasets", "RowsIn": 0, "RowsLoaded": 0,
            "RowsQuarantined": 0, "Files": copied}  # fmt: skip


def expected_summary(world: World, datasets: dict[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {
        **run_metrics(sum(d["copied"] for d in datasets.values())),
        "source_bucket": world.source,
        "target": world.target,
        "datasets": datasets,
        "copied": sum(d["copied"] for d in datasets.values()),
        "unchanged": sum(d["unchanged"] for d in datasets.values()),
        "bytes_copied": sum(d["bytes_copied"] for d in datasets.values()),
        "kept_not_in_source": sum(d["kept_not_in_source"] for d in datasets.values()),
        "status": "SUCCEEDED",
        "exit_code": 0,
        **top,
    }


@pytest.fixture
def world(moto_server) -> World:
    w = World(moto_server)
    w.seed()
    return w


# --- end to end: the CLI as a subprocess against moto ------------------------------------------------------


def test_first_copy_lands_both_datasets_with_their_source_recorded(world: World) -> None:
    # What the Batch job definition sets (components/compute.py BatchJob): the metrics' dimensions.
    result, summary = world.copy(env={"METRICS_STACK": "dev", "METRICS_PIPELINE": "covid19"})

    assert result.returncode == 0, result.stderr
    assert summary == {
        **expected_summary(
            world,
            {
                "cases": stats(listed=2, copied=2, unchanged=0, bytes_copied=len(CASES_CSV) + len(PART_0)),
                "testing": stats(listed=1, copied=1, unchanged=0, bytes_copied=len(TESTS_JSON)),
            },
        ),
        "Stack": "dev",
    }
    # Exact keys: the placeholder and the look-alike csv-old/ folder are not copied.
    assert world.landed() == {
        "covid19/cases/cases.csv": CASES_CSV,
        "covid19/cases/2020/01/part-0.csv": PART_0,
        "covid19/testing/tests.json": TESTS_JSON,
    }
    assert world.metadata("covid19/cases/cases.csv") == world.record("enigma-jhu/csv/cases.csv", CASES_CSV)
    assert world.metadata("covid19/cases/2020/01/part-0.csv") == world.record(
        "enigma-jhu/csv/2020/01/part-0.csv", PART_0
    )
    assert world.metadata("covid19/testing/tests.json") == world.record("rearc/testing/tests.json", TESTS_JSON)
    assert "cases: listed 2 object(s) under s3://" in result.stderr
    assert f"cases: copied 2, unchanged 0, {len(CASES_CSV) + len(PART_0)} bytes copied into" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_rerun_copies_nothing_and_trusts_the_recorded_source(world: World) -> None:
    first, _ = world.copy()
    assert first.returncode == 0, first.stderr
    # Same size and the same record, different bytes: only a rerun that re-copied would put CASES_CSV back.
    stand_in = b"x" * len(CASES_CSV)
    world.put("covid19/cases/cases.csv", stand_in, bucket=world.landing,
              metadata=world.record("enigma-jhu/csv/cases.csv", CASES_CSV))  # fmt: skip

    result, summary = world.copy()

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(
        world,
        {
            "cases": stats(listed=2, copied=0, unchanged=2, bytes_copied=0),
            "testing": stats(listed=1, copied=0, unchanged=1, bytes_copied=0),
        },
    )
    assert world.landed()["covid19/cases/cases.csv"] == stand_in


def test_changed_source_object_is_copied_again_and_only_it(world: World) -> None:
    world.copy()
    # Same size, new content: only the ETag tells them apart.
    changed = CASES_CSV.replace(b"King,9", b"King,8")
    assert len(changed) == len(CASES_CSV) and changed != CASES_CSV
    world.put("enigma-jhu/csv/cases.csv", changed)

    result, summary = world.copy()

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(
        world,
        {
            "cases": stats(listed=2, copied=1, unchanged=1, bytes_copied=len(changed)),
            "testing": stats(listed=1, copied=0, unchanged=1, bytes_copied=0),
        },
    )
    assert world.landed() == {
        "covid19/cases/cases.csv": changed,
        "covid19/cases/2020/01/part-0.csv": PART_0,
        "covid19/testing/tests.json": TESTS_JSON,
    }
    assert world.metadata("covid19/cases/cases.csv") == world.record("enigma-jhu/csv/cases.csv", changed)


def test_target_without_a_record_is_copied_again(world: World) -> None:
    """A same-size object someone else put in the landing zone is not trusted: it carries no source record."""
    world.put("covid19/testing/tests.json", b"y" * len(TESTS_JSON), bucket=world.landing)

    result, summary = world.copy()

    assert result.returncode == 0, result.stderr
    assert summary["datasets"]["testing"] == stats(listed=1, copied=1, unchanged=0, bytes_copied=len(TESTS_JSON))
    assert world.landed()["covid19/testing/tests.json"] == TESTS_JSON


def test_new_object_is_copied_and_deleted_one_is_kept_and_reported(world: World) -> None:
    world.copy()
    part_1 = b"date,county,cases\n2020-02-01,Cook,2\n"
    world.put("enigma-jhu/csv/2020/02/part-0.csv", part_1)
    world.s3.delete_object(Bucket=world.source, Key="enigma-jhu/csv/cases.csv")

    result, summary = world.copy()

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(
        world,
        {
            "cases": stats(listed=2, copied=1, unchanged=1, bytes_copied=len(part_1), kept=1),
            "testing": stats(listed=1, copied=0, unchanged=1, bytes_copied=0),
        },
    )
    assert world.landed() == {
        "covid19/cases/cases.csv": CASES_CSV,  # gone from the source, kept here
        "covid19/cases/2020/01/part-0.csv": PART_0,
        "covid19/cases/2020/02/part-0.csv": part_1,
        "covid19/testing/tests.json": TESTS_JSON,
    }
    assert f"cases: kept s3://{world.landing}/covid19/cases/cases.csv (not in the source any more)" in result.stderr


def test_environment_variables_configure_the_job(moto_server) -> None:
    """The Batch job definition's form: everything from the environment, the datasets as a JSON object."""
    world = World(moto_server, source_region="us-east-2")
    world.seed()
    env = {
        "COPY_SOURCE_BUCKET": world.source,
        "COPY_DATASETS": json.dumps({"cases": "enigma-jhu/csv/", "testing": "rearc/testing/"}),
        "COPY_TARGET": world.target,
        "COPY_SOURCE_REGION": "us-east-2",
    }

    result, summary = world.run(env=env)

    assert result.returncode == 0, result.stderr
    assert summary == expected_summary(
        world,
        {
            "cases": stats(listed=2, copied=2, unchanged=0, bytes_copied=len(CASES_CSV) + len(PART_0)),
            "testing": stats(listed=1, copied=1, unchanged=0, bytes_copied=len(TESTS_JSON)),
        },
    )
    assert sorted(world.landed()) == [
        "covid19/cases/2020/01/part-0.csv",
        "covid19/cases/cases.csv",
        "covid19/testing/tests.json",
    ]

    # A --dataset flag replaces COPY_DATASETS rather than adding to it.
    result, summary = world.run("--dataset", "testing=rearc/testing/", env=env)
    assert result.returncode == 0, result.stderr
    assert list(summary["datasets"]) == ["testing"]


def test_empty_prefix_is_bad_input_and_the_other_dataset_is_still_copied(world: World) -> None:
    world.put("rearc/empty/", b"")  # only a placeholder: still no objects

    result, summary = world.run(
        "--source-bucket", world.source,
        "--dataset", "typo=rearc/tseting/",
        "--dataset", "cases=enigma-jhu/csv/",
        "--dataset", "empty=rearc/empty/",
        "--target", world.target,
    )  # fmt: skip

    typo = (
        f"dataset 'typo': no objects under s3://{world.source}/rearc/tseting/ (is the prefix 'rearc/tseting/' right?)"
    )
    empty = f"dataset 'empty': no objects under s3://{world.source}/rearc/empty/ (is the prefix 'rearc/empty/' right?)"
    assert result.returncode == 3, result.stderr
    assert summary == expected_summary(
        world,
        {
            "typo": {**stats(listed=0, copied=0, unchanged=0, bytes_copied=0), "error": typo},
            "cases": stats(listed=2, copied=2, unchanged=0, bytes_copied=len(CASES_CSV) + len(PART_0)),
            "empty": {**stats(listed=0, copied=0, unchanged=0, bytes_copied=0), "error": empty},
        },
        status="FAILED",
        exit_code=3,
        errors=[typo, empty],
    )
    assert typo in result.stderr and empty in result.stderr
    assert sorted(world.landed()) == ["covid19/cases/2020/01/part-0.csv", "covid19/cases/cases.csv"]


def test_missing_source_bucket_fails_with_exit_5(world: World) -> None:
    missing = unique("nosuch")

    result, summary = world.run("--source-bucket", missing, "--dataset", "cases=enigma-jhu/csv/",
                                "--target", world.target)  # fmt: skip

    message = f"listing s3://{missing}/enigma-jhu/csv/: bucket '{missing}' does not exist (NoSuchBucket)"
    assert result.returncode == 5, result.stderr
    assert summary["status"] == "FAILED"
    assert summary["exit_code"] == 5
    assert summary["errors"] == [message]
    assert summary["datasets"] == {"cases": {**stats(0, 0, 0, 0), "error": message}}
    assert message in result.stderr
    assert world.landed() == {}


def test_missing_target_bucket_fails_with_exit_5(world: World) -> None:
    missing = unique("nosuch")

    result, summary = world.run("--source-bucket", world.source, "--dataset", "cases=enigma-jhu/csv/",
                                "--target", f"s3://{missing}/covid19/")  # fmt: skip

    assert result.returncode == 5, result.stderr
    assert summary["errors"] == [
        f"listing s3://{missing}/covid19/cases/: bucket '{missing}' does not exist (NoSuchBucket)"
    ]


def test_unreachable_s3_is_transient_exit_4(world: World) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"

    result, summary = world.copy(env={"AWS_ENDPOINT_URL": endpoint})

    assert result.returncode == 4, result.stderr
    assert summary["status"] == "FAILED"
    assert summary["exit_code"] == 4
    assert summary["errors"] == [
        f'listing s3://{world.source}/enigma-jhu/csv/: Could not connect to the endpoint URL: "{endpoint}/'
        f'{world.source}?list-type=2&prefix=enigma-jhu%2Fcsv%2F&encoding-type=url"'
    ]


def test_large_object_is_copied_in_parts_byte_identically(world: World) -> None:
    big = os.urandom(9 * 1024 * 1024 + 17)
    world.put("rearc/big/huge.bin", big)

    result, summary = world.run("--source-bucket", world.source, "--dataset", "big=rearc/big/",
                                "--target", world.target, "--part-size-mib", "5")  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert summary["datasets"] == {"big": stats(listed=1, copied=1, unchanged=0, bytes_copied=len(big))}
    assert world.landed() == {"covid19/big/huge.bin": big}
    head = world.s3.head_object(Bucket=world.landing, Key="covid19/big/huge.bin")
    assert head["ETag"].endswith('-2"')  # a multipart copy: two UploadPartCopy parts of at most 5 MiB
    assert head["Metadata"] == world.record("rearc/big/huge.bin", big)

    rerun, summary = world.run("--source-bucket", world.source, "--dataset", "big=rearc/big/",
                               "--target", world.target, "--part-size-mib", "5")  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert summary["datasets"] == {"big": stats(listed=1, copied=0, unchanged=1, bytes_copied=0)}


GOOD = ["--source-bucket", "covid19-lake", "--dataset", "cases=enigma-jhu/csv/", "--target", "s3://landing/raw/"]


def with_flag(flag: str, value: str) -> list[str]:
    args = list(GOOD)
    args[args.index(flag) + 1] = value
    return args


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            with_flag("--source-bucket", "s3://covid19-lake/"),
            {},
            "--source-bucket 's3://covid19-lake/': not a bucket name (give the name, not a URI)",
        ),
        (with_flag("--dataset", "cases"), {}, "--dataset 'cases': expected NAME=PREFIX, e.g. cases=enigma-jhu/csv/"),
        (with_flag("--dataset", "Cases=enigma-jhu/csv/"), {}, "--dataset: dataset name 'Cases' must match [a-z0-9_]+"),
        (
            with_flag("--dataset", "cases=enigma-jhu/csv"),
            {},
            "--dataset: dataset 'cases' prefix 'enigma-jhu/csv' must be a folder in the source bucket ending in '/', "
            "e.g. enigma-jhu/csv/",
        ),
        (
            [*GOOD, "--dataset", "cases=rearc/testing/"],
            {},
            "--dataset: dataset 'cases' is given more than once",
        ),
        (
            with_flag("--target", "s3://landing/raw"),
            {},
            "--target 's3://landing/raw': the prefix must be a folder ending in '/', e.g. s3://landing/raw/",
        ),
        (
            with_flag("--target", "landing/raw/"),
            {},
            "--target 'landing/raw/': expected s3://bucket/prefix/ (a valid bucket name, then a folder)",
        ),
        (
            with_flag("--target", "s3://covid19-lake/enigma-jhu/csv/"),
            {},
            "--target 's3://covid19-lake/enigma-jhu/csv/': 'enigma-jhu/csv/cases/' overlaps dataset 'cases' prefix "
            "'enigma-jhu/csv/' in the same bucket; copies would be copied again on the next run",
        ),
        (
            [*GOOD, "--source-region", "Ohio"],
            {},
            "--source-region 'Ohio': not an AWS region name, e.g. us-east-2",
        ),
        (
            [*GOOD, "--part-size-mib", "4"],
            {},
            "--part-size-mib '4': must be a whole number from 5 to 5120",
        ),
        (
            ["--source-bucket", "covid19-lake", "--target", "s3://landing/raw/"],
            {"COPY_DATASETS": '["enigma-jhu/csv/"]'},
            "COPY_DATASETS '[\"enigma-jhu/csv/\"]': expected a JSON object of NAME to PREFIX, "
            'e.g. {"cases": "enigma-jhu/csv/"}',
        ),
        (
            ["--source-bucket", "covid19-lake", "--target", "s3://landing/raw/"],
            {"COPY_DATASETS": "cases=enigma-jhu/csv/"},
            "COPY_DATASETS 'cases=enigma-jhu/csv/': not valid JSON (Expecting value)",
        ),
        (
            ["--source-bucket", "covid19-lake", "--target", "s3://landing/raw/"],
            {"COPY_DATASETS": '{"cases": "enigma-jhu/csv"}'},
            "COPY_DATASETS: dataset 'cases' prefix 'enigma-jhu/csv' must be a folder in the source bucket "
            "ending in '/', e.g. enigma-jhu/csv/",
        ),
        (
            ["--source-bucket", "covid19-lake", "--target", "s3://landing/raw/"],
            {"COPY_DATASETS": "{}"},
            "COPY_DATASETS: at least one dataset NAME=PREFIX is required",
        ),
    ],
    ids=[
        "bucket-uri",
        "dataset-no-equals",
        "dataset-name",
        "dataset-prefix",
        "dataset-twice",
        "target-prefix",
        "target-scheme",
        "target-overlaps-source",
        "region",
        "part-size",
        "env-not-object",
        "env-not-json",
        "env-prefix",
        "env-empty",
    ],
)
def test_bad_values_are_bad_input_exit_3(moto_server, args: list[str], env: dict[str, str], message: str) -> None:
    world = World(moto_server)

    result, summary = world.run(*args, env=env)

    assert result.returncode == 3, result.stderr
    assert summary == {
        **run_metrics(0), "source_bucket": None, "target": None, "datasets": {}, "copied": 0, "unchanged": 0,
        "bytes_copied": 0, "kept_not_in_source": 0, "status": "FAILED", "exit_code": 3, "errors": [message],
    }  # fmt: skip
    assert f"copy-datasets failed (exit 3): {message}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (GOOD[2:], "--source-bucket (or COPY_SOURCE_BUCKET) is required"),
        ([*GOOD[:2], *GOOD[4:]], "--dataset NAME=PREFIX (or COPY_DATASETS) is required: at least one dataset"),
        (GOOD[:4], "--target (or COPY_TARGET) is required"),
    ],
    ids=["source-bucket", "dataset", "target"],
)
def test_missing_settings_are_usage_errors_exit_2(moto_server, args: list[str], message: str) -> None:
    result, summary = World(moto_server).run(*args)

    assert result.returncode == 2
    assert summary is None
    assert f"copy-datasets: error: {message}" in result.stderr


# --- the pure planner ----------------------------------------------------------------------------------------

CASES = Dataset("cases", "enigma-jhu/csv/")
LANDING = "covid19/cases/"


def src(key: str, data: bytes) -> SourceObject:
    return SourceObject(f"enigma-jhu/csv/{key}", f'"{md5(data)}"', len(data))


def test_plan_with_an_empty_landing_zone_copies_everything_but_placeholders() -> None:
    empty = f'"{md5(b"")}"'
    sources = [SourceObject("enigma-jhu/csv/", empty, 0), src("a.csv", b"aa"),
               SourceObject("enigma-jhu/csv/2020/", empty, 0), src("2020/b.csv", b"b")]  # fmt: skip

    assert keys_needing_metadata(CASES, LANDING, sources, {}) == []
    plan = plan_dataset(CASES, "covid19-lake", LANDING, sources, {}, {})

    assert plan.listed == 2
    assert plan.copies == (
        Copy("covid19-lake", "enigma-jhu/csv/a.csv", "covid19/cases/a.csv", md5(b"aa"), 2),
        Copy("covid19-lake", "enigma-jhu/csv/2020/b.csv", "covid19/cases/2020/b.csv", md5(b"b"), 1),
    )
    assert plan.unchanged == () and plan.kept_not_in_source == ()
    assert plan.bytes_to_copy == 3


def test_plan_compares_the_recorded_source_and_keeps_what_vanished() -> None:
    same, new_content, resized, unrecorded, new = b"same", b"new!", b"resized", b"unre", b"new"
    sources = [src("same.csv", same), src("changed.csv", new_content), src("resized.csv", resized),
               src("unrecorded.csv", unrecorded), src("new.csv", new)]  # fmt: skip
    targets = {
        key: TargetObject(key, size)
        for key, size in [
            ("covid19/cases/same.csv", 4),
            ("covid19/cases/changed.csv", 4),
            ("covid19/cases/resized.csv", 3),
            ("covid19/cases/unrecorded.csv", 4),
            ("covid19/cases/gone.csv", 10),
            ("covid19/cases/old/", 0),
        ]
    }

    # Only same-size targets need their metadata read; a missing or resized target is copied without asking.
    needed = keys_needing_metadata(CASES, LANDING, sources, targets)
    assert needed == ["covid19/cases/same.csv", "covid19/cases/changed.csv", "covid19/cases/unrecorded.csv"]

    recorded = {
        "covid19/cases/same.csv": Recorded(md5(same), 4),
        "covid19/cases/changed.csv": Recorded(md5(b"old!"), 4),
        "covid19/cases/unrecorded.csv": None,
    }
    plan = plan_dataset(CASES, "covid19-lake", LANDING, sources, targets, recorded)

    assert plan.listed == 5
    assert [c.target_key for c in plan.copies] == [
        "covid19/cases/changed.csv",
        "covid19/cases/resized.csv",
        "covid19/cases/unrecorded.csv",
        "covid19/cases/new.csv",
    ]
    assert plan.unchanged == ("covid19/cases/same.csv",)
    assert plan.kept_not_in_source == ("covid19/cases/gone.csv",)
    assert plan.bytes_to_copy == 4 + 7 + 4 + 3


def test_copy_metadata_is_the_unquoted_etag_size_and_an_ascii_uri() -> None:
    copy = Copy("covid19-lake", "enigma-jhu/csv/Zürich data%.csv", "covid19/cases/Zürich data%.csv", "abc-2", 42)

    assert copy.metadata() == {
        "source-etag": "abc-2",
        "source-size": "42",
        "source-uri": "s3://covid19-lake/enigma-jhu/csv/Z%C3%BCrich data%25.csv",
    }
    assert target_key_for(CASES, LANDING, "enigma-jhu/csv/x/y.csv") == "covid19/cases/x/y.csv"
    with pytest.raises(ValueError, match="is not under"):
        target_key_for(CASES, LANDING, "enigma-jhu/csv-old/y.csv")


def test_recorded_source_is_read_from_user_metadata() -> None:
    assert recorded_from_metadata({"source-etag": "abc", "source-size": "12", "source-uri": "s3://b/k"}) == Recorded(
        "abc", 12
    )
    assert recorded_from_metadata({"Source-Etag": '"abc"', "Source-Size": "12"}) == Recorded("abc", 12)
    assert recorded_from_metadata({}) is None
    assert recorded_from_metadata({"source-etag": "abc"}) is None
    assert recorded_from_metadata({"source-etag": "abc", "source-size": "twelve"}) is None


def client_error(code: str, status: int, **error: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "msg", **error}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "ListObjectsV2")


@pytest.mark.parametrize(
    ("exc", "kind", "exit_code", "message"),
    [
        (client_error("SlowDown", 503), TransientError, 4, "listing: SlowDown: msg (retryable)"),
        (client_error("InternalError", 500), TransientError, 4, "listing: InternalError: msg (retryable)"),
        (client_error("Throttling", 400), TransientError, 4, "listing: Throttling: msg (retryable)"),
        (
            client_error("PreconditionFailed", 412),
            TransientError,
            4,
            "listing: the source object changed while it was being copied; a retry re-lists",
        ),
        (client_error("AccessDenied", 403), JobError, 5, "listing: AccessDenied: msg"),
        (
            client_error("NoSuchBucket", 404, BucketName="covid19-lake"),
            JobError,
            5,
            "listing: bucket 'covid19-lake' does not exist (NoSuchBucket)",
        ),
        (
            EndpointConnectionError(endpoint_url="https://s3.us-east-2.amazonaws.com"),
            TransientError,
            4,
            'listing: Could not connect to the endpoint URL: "https://s3.us-east-2.amazonaws.com"',
        ),
        (RuntimeError("boom"), JobError, 5, "listing: RuntimeError: boom"),
    ],
    ids=["slowdown", "5xx", "throttling", "precondition", "access-denied", "no-such-bucket", "connection", "other"],
)
def test_aws_errors_map_to_exit_codes(exc: Exception, kind: type, exit_code: int, message: str) -> None:
    error = classify_aws_error(exc, "listing")

    assert type(error) is kind
    assert error.exit_code == exit_code
    assert str(error) == message
    assert not isinstance(error, BadInputError)


def test_a_source_changed_after_listing_fails_transient_and_counts_what_was_copied(world: World) -> None:
    """The copy is pinned to the listed ETag: a stale listing never records a version it did not copy."""
    from lake_ingest.copy_datasets import DatasetStats, execute_copies

    def planned(source_key: str, data: bytes, etag: str | None = None) -> Copy:
        target_key = f"covid19/cases/{source_key.rsplit('/', 1)[-1]}"
        return Copy(world.source, source_key, target_key, etag or md5(data), len(data))

    copies = [
        planned("enigma-jhu/csv/cases.csv", CASES_CSV),
        planned("enigma-jhu/csv/2020/01/part-0.csv", PART_0),
        planned("rearc/testing/tests.json", TESTS_JSON, etag=md5(b"what the listing saw before")),
    ]
    counts = DatasetStats(listed=3)

    with pytest.raises(TransientError) as caught:
        execute_copies(world.s3, world.s3, world.landing, copies, 8, counts)

    assert str(caught.value) == (
        f"copying s3://{world.source}/rearc/testing/tests.json to s3://{world.landing}/covid19/cases/tests.json: "
        "the source object changed while it was being copied; a retry re-lists"
    )
    assert (counts.copied, counts.bytes_copied) == (2, len(CASES_CSV) + len(PART_0))
    assert world.landed() == {"covid19/cases/cases.csv": CASES_CSV, "covid19/cases/part-0.csv": PART_0}
