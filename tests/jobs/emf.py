"""Checks of the jobs' run-summary lines against the CloudWatch Embedded Metric Format specification.

Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
(its JSON schema as published in awsdocs/amazon-cloudwatch-user-guide,
doc_source/CloudWatch_Embedded_Metric_Format_Specification.md). What the schema cannot say is checked by
hand, each rule quoted from the page:
- "The LogEvent message MUST be a valid JSON object with no additional data at the beginning or end":
  the whole line is one JSON object.
- "The root node MUST contain all Target members defined by the references in the MetricDirective":
  every Dimensions and Metrics name is a top-level member.
- "A dimension target MUST have a string value"; "A metric target MUST be a numeric value".
- "This array MUST NOT contain more than 100 MetricDefinition objects"; a DimensionSet holds at most 30
  dimension keys (the current page; the archived one said 9, which 3 dimensions also meet).
- Timestamp: "the number of milliseconds after Jan 1, 1970 00:00:00 UTC".
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import jsonschema

from job_runtime import metrics

_NAME = {"type": "string", "pattern": "^(.*)$", "minLength": 1, "maxLength": 255}
# The specification's schema (units from its MetricUnit pattern, the CloudWatch MetricDatum units).
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Root Node",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "title": "Metadata",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "title": "The Timestamp Schema"},
                "CloudWatchMetrics": {
                    "type": "array",
                    "title": "MetricDirectives",
                    "items": {
                        "type": "object",
                        "title": "MetricDirective",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": _NAME,
                            "Dimensions": {
                                "type": "array",
                                "title": "The Dimensions Schema",
                                "minItems": 1,
                                "items": {
                                    "type": "array",
                                    "title": "DimensionSet",
                                    "minItems": 0,
                                    "maxItems": 30,
                                    "items": _NAME,
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "title": "MetricDefinitions",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "title": "MetricDefinition",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": _NAME,
                                        "Unit": {
                                            "type": "string",
                                            "title": "MetricUnit",
                                            "pattern": "^(Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|"
                                            "Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|Gigabits|"
                                            "Terabits|Percent|Count|Bytes\\/Second|Kilobytes\\/Second|"
                                            "Megabytes\\/Second|Gigabytes\\/Second|Terabytes\\/Second|"
                                            "Bits\\/Second|Kilobits\\/Second|Megabits\\/Second|"
                                            "Gigabits\\/Second|Terabits\\/Second|Count\\/Second|None)$",
                                        },
                                        "StorageResolution": {"type": "integer", "enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def check_document(document: dict[str, Any]) -> dict[str, Any]:
    """AssertionError (or jsonschema's ValidationError) unless `document` is a valid EMF document."""
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document.get(name), str), f"dimension {name} is not a string member: {document}"
        for definition in directive["Metrics"]:
            value = document.get(definition["Name"])
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100, f"metric {definition['Name']} has more than 100 values"
            for v in values:
                assert isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v), (
                    f"metric {definition['Name']} is not a number: {value!r}"
                )
    return document


def check_run_summary(document: dict[str, Any], *, stack: str, pipeline: str, job: str) -> dict[str, Any]:
    """A valid EMF document that is exactly this project's run summary: NAMESPACE, the DIMENSIONS with
    these values, the units of job_runtime.metrics, the three row counts adding up, a duration, and a
    timestamp of the last ten minutes."""
    check_document(document)
    directives = document["_aws"]["CloudWatchMetrics"]
    assert len(directives) == 1
    assert directives[0]["Namespace"] == metrics.NAMESPACE
    assert directives[0]["Dimensions"] == [["Stack", "Pipeline", "Job"]]
    names = [d["Name"] for d in directives[0]["Metrics"]]
    assert directives[0]["Metrics"] == [{"Name": n, "Unit": metrics.UNITS[n]} for n in names]
    assert names[:4] == ["RowsIn", "RowsLoaded", "RowsQuarantined", "DurationSeconds"]
    assert (document["Stack"], document["Pipeline"], document["Job"]) == (stack, pipeline, job)
    assert document["RowsIn"] == document["RowsLoaded"] + document["RowsQuarantined"]
    assert 0 <= document["DurationSeconds"] < 3600
    assert 0 <= time.time() * 1000 - document["_aws"]["Timestamp"] < 600_000
    return document


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line that starts with "{", each parsed as one JSON object (the lines that carry data
    are pure JSON: no timestamp or level prefix, nothing after the object)."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            assert isinstance(parsed, dict), line
            found.append(parsed)
    return found


def one_run_summary(stdout: str, *, stack: str = "local", pipeline: str, job: str) -> dict[str, Any]:
    """The run's one EMF line on stdout, checked (check_run_summary); every other "{" line is JSON too."""
    documents = [d for d in json_lines(stdout) if "_aws" in d]
    assert len(documents) == 1, f"expected exactly one EMF run summary on stdout:\n{stdout}"
    return check_run_summary(documents[0], stack=stack, pipeline=pipeline, job=job)


def figures(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what varies from run to run (the metadata's timestamp, the duration)."""
    return {k: v for k, v in document.items() if k not in ("_aws", "DurationSeconds")}


def metric_names(document: dict[str, Any]) -> list[str]:
    return [d["Name"] for d in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
