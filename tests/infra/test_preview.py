"""Preview without noise: `pulumi preview` on an unchanged program shows nothing, and a change shows
only the resources it really changes. Nothing in resource inputs may depend on time, randomness or
the machine (checkout path, user, host); assets are content-addressed."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.infra.harness import ROOT, Estate, build_estate


def snapshot(estate: Estate) -> dict[tuple[str, str], str]:
    """Every resource's inputs, keyed by (type, logical name): what the engine diffs on preview."""
    return {(r.type, r.name): json.dumps(r.inputs, sort_keys=True) for r in estate.resources}


def changed(before: Estate, after: Estate) -> set[tuple[str, str]]:
    old, new = snapshot(before), snapshot(after)
    assert old.keys() == new.keys(), "a change to a file must not add or remove resources"
    return {key for key in old if old[key] != new[key]}


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The program ships a copy of job_runtime/ to Glue that a test may edit."""
    copy = tmp_path / "job_runtime"
    shutil.copytree(ROOT / "job_runtime", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    monkeypatch.setattr("pipelines.glue_estate.JOB_RUNTIME", copy)
    return copy


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The program builds from a copy of glue_scripts/ that a test may edit."""
    copy = tmp_path / "glue_scripts"
    shutil.copytree(ROOT / "glue_scripts", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr("pipelines.glue_estate.GLUE_SCRIPTS", copy)
    return copy


def test_building_twice_gives_identical_inputs() -> None:
    first, second = build_estate("dev", "Pulumi.dev.yaml"), build_estate("dev", "Pulumi.dev.yaml")
    assert len(first.resources) > 250
    assert snapshot(second) == snapshot(first)
    assert second.options == first.options


def test_no_input_depends_on_the_machine_or_the_day() -> None:
    text = json.dumps([r.inputs for r in build_estate("dev", "Pulumi.dev.yaml").resources])
    today = datetime.now(UTC).date()
    for machine_specific in (str(ROOT), str(Path.home()), socket.gethostname(), f"/{getpass.getuser()}/"):
        assert machine_specific not in text
    for date in (today.isoformat(), today.strftime("%Y%m%d"), today.strftime("%Y/%m/%d")):
        assert date not in text
    # Uploaded files and the image build are named relative to the project directory.
    assert '"file": "glue_scripts/sales_csv_to_parquet.py"' in text
    assert '"context": "."' in text and '"dockerfile": "batch_image/Dockerfile"' in text
    assert '"file": "build/glue-py-files/job_runtime-' in text


def test_editing_one_glue_script_changes_only_its_object_and_its_job(scripts: Path) -> None:
    before = build_estate("dev", "Pulumi.dev.yaml")
    script = scripts / "sales_csv_to_parquet.py"
    script.write_text(script.read_text() + "\n# a reviewed change\n")
    after = build_estate("dev", "Pulumi.dev.yaml")
    assert changed(before, after) == {
        ("aws:s3/bucketObjectv2:BucketObjectv2", "sales-convert-script"),
        ("aws:glue/job:Job", "sales-convert-job"),
    }
    old_key, new_key = (e.named("sales-convert-script").inputs["key"] for e in (before, after))
    assert old_key != new_key and new_key.startswith("glue/sales_csv_to_parquet/")
    assert after.named("sales-convert-job").inputs["command"]["scriptLocation"].endswith(new_key)


def test_editing_the_shared_module_changes_each_jobs_copy_and_the_jobs_only(scripts: Path) -> None:
    before = build_estate("dev", "Pulumi.dev.yaml")
    common = scripts / "glue_common.py"
    common.write_text(common.read_text() + "\n# a reviewed change\n")
    after = build_estate("dev", "Pulumi.dev.yaml")
    jobs = ("sales-convert", "sales-load", "sensor-job", "gharchive-events", "covid-clean")
    assert {r.name for r in after.of_type("aws:glue/job:Job")} == {f"{job}-job" for job in jobs}
    assert changed(before, after) == {("aws:glue/job:Job", f"{job}-job") for job in jobs} | {
        ("aws:s3/bucketObjectv2:BucketObjectv2", f"{job}-lib-glue-common") for job in jobs
    }


GLUE_JOBS = ("sales-convert", "sales-load", "sensor-job", "gharchive-events", "covid-clean")


def test_editing_the_job_runtime_changes_each_jobs_zip_and_the_jobs_only(runtime: Path) -> None:
    before = build_estate("dev", "Pulumi.dev.yaml")
    sql = runtime / "sql.py"
    sql.write_text(sql.read_text() + "\n# a reviewed change\n")
    after = build_estate("dev", "Pulumi.dev.yaml")
    assert changed(before, after) == {("aws:glue/job:Job", f"{job}-job") for job in GLUE_JOBS} | {
        ("aws:s3/bucketObjectv2:BucketObjectv2", f"{job}-lib-job-runtime") for job in GLUE_JOBS
    }


def test_caches_and_build_output_in_the_job_runtime_change_nothing(runtime: Path) -> None:
    before = build_estate("dev", "Pulumi.dev.yaml")
    for leftover in (
        "__pycache__/sql.cpython-311.pyc",
        "build/lib/job_runtime/sql.py",
        "job_runtime.egg-info/PKG-INFO",
    ):
        (runtime / leftover).parent.mkdir(parents=True, exist_ok=True)
        (runtime / leftover).write_bytes(b"left over by python, pip or setuptools")
    after = build_estate("dev", "Pulumi.dev.yaml")
    assert changed(before, after) == set()
