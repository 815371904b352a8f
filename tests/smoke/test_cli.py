"""`python -m smoke`: reading the stack's outputs, choosing pipelines, refusing to begin (exit 2) when the
outputs cannot drive a run, and the stack exports the program gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smoke.outputs import PIPELINE_OUTPUTS, OutputsError, parse_outputs, read_outputs, split_s3_uri
from tests.smoke.support import OUTPUTS, Aws, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws(moto_server) -> Aws:
    moto_server.reset()
    return Aws(moto_server.endpoint_url)


def test_every_pipeline_of_the_outputs_is_deployed_and_needs_nothing_more() -> None:
    outputs = parse_outputs(json.dumps(OUTPUTS))
    assert outputs.deployed_pipelines() == ["render-logs", "sales", "sensor-timeseries", "gharchive", "covid19"]
    assert all(outputs.missing(name) == [] for name in PIPELINE_OUTPUTS)
    assert outputs.region == "us-east-1"
    assert split_s3_uri("s3://raw-bucket/render-logs/") == ("raw-bucket", "render-logs/")


@pytest.mark.parametrize(
    ("argv", "outputs", "message"),
    [
        (
            ["--only", "render-logs,billing"],
            OUTPUTS,
            "smoke: unknown pipeline(s) billing (known: render-logs, sales, sensor-timeseries, gharchive, covid19)",
        ),
        (
            ["--only", "covid19"],
            {k: v for k, v in OUTPUTS.items() if not k.startswith("covid_")},
            "smoke: stack pr-12 does not build covid19 (it builds: render-logs, sales, sensor-timeseries, gharchive)",
        ),
        (
            [],
            {k: v for k, v in OUTPUTS.items() if k not in ("render_logs_table", "redshift_admin_secret_arn")},
            "smoke: missing stack outputs: render-logs: render_logs_table, redshift_admin_secret_arn; "
            "sales: redshift_admin_secret_arn; covid19: redshift_admin_secret_arn",
        ),
        (
            [],
            {"buckets": OUTPUTS["buckets"]},
            "smoke: stack pr-12 builds no pipeline",
        ),
    ],
    ids=["unknown pipeline", "not built", "missing outputs", "no pipeline"],
)
def test_a_run_that_cannot_begin_exits_2_and_says_why(
    aws: Aws, tmp_path: Path, argv: list[str], outputs: dict, message: str
) -> None:
    outcome = run(aws, tmp_path, *argv, outputs=outputs)
    assert (outcome.code, outcome.lines, outcome.summary) == (2, [message], "")


def test_unreadable_outputs_exit_2(aws: Aws, tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text("Error: no stack named 'pr-12' found")
    with pytest.raises(OutputsError, match="stack outputs are not JSON: Expecting value: line 1 column 1"):
        read_outputs("pr-12", tmp_path / "outputs.json")
    with pytest.raises(OutputsError, match=r"^stack outputs are not a JSON object$"):
        parse_outputs("[]")
    result = subprocess.run(
        [sys.executable, "-m", "smoke", "--stack", "pr-12", "--outputs-file", str(tmp_path / "absent.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (
        2,
        f"smoke: cannot read {tmp_path / 'absent.json'}: No such file or directory\n",
    )


def fake_pulumi(tmp_path: Path, stdout: str, code: int = 0) -> Path:
    """A `pulumi` on PATH that records its arguments and prints `stdout`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/argv"\ncat <<\'EOF\'\n{stdout}\nEOF\n'
        + (f'echo "error: no stack named pr-12" >&2\nexit {code}\n' if code else "")
    )
    script.chmod(0o755)
    return bin_dir


def test_outputs_come_from_pulumi_stack_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_pulumi(tmp_path, json.dumps(OUTPUTS))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert read_outputs("acme/pr-12").values == OUTPUTS
    assert (tmp_path / "argv").read_text().split() == ["stack", "output", "--json", "--stack", "acme/pr-12"]


def test_a_failing_pulumi_names_the_stack_and_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_pulumi(tmp_path, "", code=255)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(OutputsError) as raised:
        read_outputs("acme/pr-12")
    assert str(raised.value) == "pulumi stack output --stack acme/pr-12 failed: error: no stack named pr-12"


def test_no_pulumi_cli_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OutputsError) as raised:
        read_outputs("acme/pr-12")
    assert str(raised.value) == "the pulumi CLI is not on PATH (or pass --outputs-file)"


def test_the_program_exports_what_the_smoke_run_needs() -> None:
    """The dev stack built under mocks: every pipeline's outputs are there, with the tables and schema the
    pipelines write (performance_summary and sales in public, the star schema in covid)."""
    from smoke.outputs import StackOutputs
    from tests.infra.test_ci_role import build

    exports = build("dev", "Pulumi.dev.yaml").exports
    outputs = StackOutputs(exports)
    assert outputs.deployed_pipelines() == list(PIPELINE_OUTPUTS)
    assert {name: outputs.missing(name) for name in PIPELINE_OUTPUTS} == {key: [] for key in PIPELINE_OUTPUTS}
    assert {
        key: exports[key]
        for key in ("region", "render_logs_table", "sales_table", "gharchive_events_table", "covid_warehouse_schema")
    } == {
        "region": "eu-west-1",
        "render_logs_table": "performance_summary",
        "sales_table": "sales_data_table",
        "gharchive_events_table": "gharchive_events",
        "covid_warehouse_schema": "covid",
    }
    raw = exports["buckets"]["raw"]
    assert exports["render_logs_upload_to"] == f"s3://{raw}/render-logs/"
    assert exports["sales_upload_to"] == f"s3://{raw}/sales/input/"
    assert exports["sensor_upload_to"] == f"s3://{raw}/sensor/raw/"
