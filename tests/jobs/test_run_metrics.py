"""job_runtime.metrics: a run summary as one CloudWatch Embedded Metric Format line, checked against the
specification (tests/jobs/emf.py cites it); and how jobs learn their Stack and Pipeline dimensions."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import glue_common
import jsonschema
import pytest

from job_runtime import metrics
from tests.jobs.emf import EMF_SCHEMA, check_document, check_run_summary, json_lines, one_run_summary

SUMMARY = {"job": "sales_csv_to_parquet", "files": 2, "rows_in": 10, "rows_loaded": 7, "rows_quarantined": 3}


def document(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        stack="dev", pipeline="sales", job="sales_csv_to_parquet", duration_seconds=12.34567, timestamp_ms=1_700_000
    )
    args.update(changes)
    summary = args.pop("summary", SUMMARY)
    return metrics.run_summary_document(summary, **args)


def test_the_document_is_the_summary_with_metrics_dimensions_and_the_rest_as_plain_members() -> None:
    assert document(metrics={metrics.FILES: 2}) == {
        "_aws": {
            "Timestamp": 1_700_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "DataPlatform/Pipelines",
                    "Dimensions": [["Stack", "Pipeline", "Job"]],
                    "Metrics": [
                        {"Name": "RowsIn", "Unit": "Count"},
                        {"Name": "RowsLoaded", "Unit": "Count"},
                        {"Name": "RowsQuarantined", "Unit": "Count"},
                        {"Name": "DurationSeconds", "Unit": "Seconds"},
                        {"Name": "Files", "Unit": "Count"},
                    ],
                }
            ],
        },
        "Stack": "dev",
        "Pipeline": "sales",
        "Job": "sales_csv_to_parquet",
        "RowsIn": 10,
        "RowsLoaded": 7,
        "RowsQuarantined": 3,
        "DurationSeconds": 12.346,
        "Files": 2,
        # Logs Insights reads every other field of the summary as it is.
        "files": 2,
    }


def test_the_document_meets_the_specification() -> None:
    every = {metrics.FILES: 1, metrics.DEVICES: 2, metrics.EVENTS: 3}
    found = check_document(document(metrics=every, timestamp_ms=None))
    check_run_summary(found, stack="dev", pipeline="sales", job="sales_csv_to_parquet")


def test_the_metric_names_and_units_meet_the_specification() -> None:
    """Metric names and the namespace 1-255 characters, units from the specification's MetricUnit set,
    and the three dimensions within a DimensionSet's limit (the schema in tests/jobs/emf.py)."""
    directive = EMF_SCHEMA["properties"]["_aws"]["properties"]["CloudWatchMetrics"]["items"]["properties"]
    unit = re.compile(directive["Metrics"]["items"]["properties"]["Unit"]["pattern"])
    assert all(unit.fullmatch(u) for u in metrics.UNITS.values())
    assert all(1 <= len(name) <= 255 for name in [metrics.NAMESPACE, *metrics.UNITS, *metrics.DIMENSIONS])
    assert len(metrics.DIMENSIONS) <= directive["Dimensions"]["items"]["maxItems"]
    assert metrics.DIMENSIONS == ("Stack", "Pipeline", "Job")


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (lambda d: d["_aws"].pop("Timestamp"), "'Timestamp' is a required property"),
        (lambda d: d["_aws"].update(Timestamp=1.5), "1.5 is not of type 'integer'"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Rows"), "'Rows' does not match"),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[[f"D{i}" for i in range(31)]]),
            "is too long",
        ),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Metrics=[{"Name": f"M{i}"} for i in range(101)]),
            "is too long",
        ),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Namespace=""), "should be non-empty"),
    ],
)
def test_the_schema_rejects_what_the_specification_forbids(broken, complaint: str) -> None:
    bad = document()
    broken(bad)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(complaint)):
        check_document(bad)


def test_the_hand_checks_reject_missing_or_mistyped_targets() -> None:
    missing = document()
    del missing["RowsLoaded"]
    with pytest.raises(AssertionError, match="metric RowsLoaded is not a number"):
        check_document(missing)
    text = document()
    text["Stack"] = 7
    with pytest.raises(AssertionError, match="dimension Stack is not a string member"):
        check_document(text)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"summary": {**SUMMARY, "rows_in": 11}},
            "the run summary of sales_csv_to_parquet has rows_in != rows_loaded + rows_quarantined",
        ),
        (
            {"summary": {"rows_in": 0, "rows_loaded": 0}},
            "the run summary of sales_csv_to_parquet has no rows_quarantined",
        ),
        ({"summary": {**SUMMARY, "rows_loaded": True}}, "metric RowsLoaded must be a finite number, got True"),
        ({"duration_seconds": float("nan")}, "metric DurationSeconds must be a finite number, got nan"),
        ({"metrics": {"Bytes": 1}}, "Bytes is not one of the job metrics ['Devices', 'Events', 'Files']"),
        ({"metrics": {metrics.ROWS_IN: 1}}, "RowsIn is not one of the job metrics"),
        ({"stack": " "}, "dimension Stack must be a non-blank ASCII string of at most 1024 characters: ' '"),
        ({"pipeline": "sälj"}, "dimension Pipeline must be a non-blank ASCII string"),
        ({"summary": {**SUMMARY, "Files": 3}}, "uses names the metrics line reserves: ['Files']"),
    ],
)
def test_a_summary_that_breaks_a_rule_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        document(**changes)


def test_emit_prints_one_pure_json_line_and_returns_the_document() -> None:
    """The line is the whole log event: CloudWatch Logs extracts EMF from an event that is exactly one JSON
    object ("no additional data at the beginning or end", the specification), and the
    `x-amzn-logs-format: json/emf` header is optional for PutLogEvents ("it's not required",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html),
    so what Glue and Batch's awslogs driver write from stdout is extracted as it is."""
    out = io.StringIO()
    emitted = metrics.emit_run_summary(
        {**SUMMARY, "source_files": ["a.csv"]},
        stack="prod",
        pipeline="sales",
        job="sales_csv_to_parquet",
        duration_seconds=1,
        stream=out,
    )
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("}\n")
    assert json.loads(out.getvalue()) == emitted
    assert one_run_summary(out.getvalue(), stack="prod", pipeline="sales", job="sales_csv_to_parquet") == emitted
    assert emitted["source_files"] == ["a.csv"]


def test_json_lines_fails_on_a_prefixed_or_trailing_line() -> None:
    assert json_lines('log line\n{"a": 1}\n') == [{"a": 1}]
    with pytest.raises(json.JSONDecodeError):
        json_lines('{"a": 1} trailing\n')


def test_batch_jobs_read_their_dimensions_from_the_environment() -> None:
    assert metrics.dimensions_from_env("gharchive", {}) == ("local", "gharchive")
    assert metrics.dimensions_from_env("gharchive", {"METRICS_STACK": "dev", "METRICS_PIPELINE": "gh"}) == (
        "dev",
        "gh",
    )
    assert metrics.dimensions_from_env("gharchive", {"METRICS_STACK": "", "METRICS_PIPELINE": ""}) == (
        "local",
        "gharchive",
    )


def test_glue_jobs_read_their_dimensions_from_the_job_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    run = glue_common.start_run(["script.py", "--x", "1", "--metrics_stack", "dev", "--metrics_pipeline", "sales"])
    assert (run.stack, run.pipeline) == ("dev", "sales")
    summary = glue_common.log_summary("sales_load_warehouse", "other", rows_in=1, rows_loaded=1, rows_quarantined=0)
    assert summary == {"job": "sales_load_warehouse", "rows_in": 1, "rows_loaded": 1, "rows_quarantined": 0}
    one_run_summary(capsys.readouterr().out, stack="dev", pipeline="sales", job="sales_load_warehouse")

    run = glue_common.start_run(["script.py", "--x", "1"])
    assert (run.stack, run.pipeline) == ("local", "")
    glue_common.log_summary("sales_load_warehouse", "sales", rows_in=0, rows_loaded=0, rows_quarantined=0)
    one_run_summary(capsys.readouterr().out, stack="local", pipeline="sales", job="sales_load_warehouse")


def test_a_line_too_long_for_one_log_event_drops_its_largest_plain_members_first() -> None:
    """An EMF document is limited to one log event's size (the specification: 256 KB on the archived page)."""
    out = io.StringIO()
    long = {**SUMMARY, "source_files": [f"file-{i:06d}.csv" for i in range(20_000)], "rejected": ["x"] * 10}
    emitted = metrics.emit_run_summary(
        long, stack="dev", pipeline="sales", job="sales_csv_to_parquet", duration_seconds=1, stream=out
    )
    assert len(out.getvalue().encode()) <= metrics.MAX_LINE_BYTES < len(json.dumps(long).encode())
    assert emitted["truncated"] == ["source_files"]
    assert (emitted["rejected"], emitted["RowsIn"], emitted["files"]) == (["x"] * 10, 10, 2)
    assert json.loads(out.getvalue()) == emitted
