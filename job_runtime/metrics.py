"""Run metrics: every job's run summary as one CloudWatch Embedded Metric Format (EMF) log line.

The namespace, dimension names and metric names below are also what components/monitoring.py alarms
on and graphs, and the argument and environment names what components/compute.py sets.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

# One namespace for every pipeline job's run figures.
NAMESPACE = "DataPlatform/Pipelines"
# Every metric is emitted with exactly this dimension set (CloudWatch Logs' EMF extraction makes one
# metric per dimension set). Stack: the Pulumi stack; Pipeline: the registry name ("render-logs");
# Job: the job's name (JOB in the Glue scripts: "sales_csv_to_parquet"; the Batch console script
# with underscores: "render_summary", "gharchive_ingest", "copy_datasets").
DIMENSIONS = ("Stack", "Pipeline", "Job")

# Metric name -> EMF unit. Every job emits the three row counts and its duration; the others where
# they mean something for the job.
ROWS_IN = "RowsIn"
ROWS_LOADED = "RowsLoaded"
ROWS_QUARANTINED = "RowsQuarantined"
DURATION = "DurationSeconds"
FILES = "Files"  # input files newly processed by this run (GH Archive: new hour files loaded)
DEVICES = "Devices"
EVENTS = "Events"
UNITS = {
    ROWS_IN: "Count",
    ROWS_LOADED: "Count",
    ROWS_QUARANTINED: "Count",
    DURATION: "Seconds",
    FILES: "Count",
    DEVICES: "Count",
    EVENTS: "Count",
}

# Where a run's Stack and Pipeline dimension values come from: on AWS Batch the environment variables
# BatchJob sets, on Glue the default arguments GlueJob sets (components/compute.py).
STACK_ENV = "METRICS_STACK"
PIPELINE_ENV = "METRICS_PIPELINE"
STACK_ARGUMENT = "--metrics_stack"
PIPELINE_ARGUMENT = "--metrics_pipeline"
# The Stack value of a run outside any stack (a laptop, localrun, the tests).
LOCAL_STACK = "local"

# An EMF document is one CloudWatch Logs event: the specification's limit (256 KB; the current page says
# 1 MB) for the whole line, so a summary with long lists still delivers its metrics.
MAX_LINE_BYTES = 256 * 1024

# The run summary's row counts, which become RowsIn/RowsLoaded/RowsQuarantined (not repeated as properties).
ROW_FIELDS = {"rows_in": ROWS_IN, "rows_loaded": ROWS_LOADED, "rows_quarantined": ROWS_QUARANTINED}
# The members of the line CloudWatch reads itself: the metadata, the dimensions and the metrics.
RESERVED = frozenset({"_aws", *DIMENSIONS, *UNITS})


def dimensions(stack: str, pipeline: str, job: str) -> dict[str, str]:
    """The dimension set of a run's metrics, DIMENSIONS in order."""
    return dict(zip(DIMENSIONS, (stack, pipeline, job), strict=True))


def dimensions_from_env(pipeline: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(Stack, Pipeline) of a Batch run: METRICS_STACK and METRICS_PIPELINE, else "local" and `pipeline`."""
    env = os.environ if environ is None else environ
    return (env.get(STACK_ENV) or LOCAL_STACK, env.get(PIPELINE_ENV) or pipeline)


def _number(name: str, value: Any) -> int | float:
    # EMF: a metric target MUST be a numeric value; JSON has no NaN or infinity.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"metric {name} must be a finite number, got {value!r}")
    return value


def run_summary_document(
    summary: Mapping[str, Any],
    *,
    stack: str,
    pipeline: str,
    job: str,
    duration_seconds: float,
    metrics: Mapping[str, int | float] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """A run summary as one EMF document (one CloudWatch metric per name under NAMESPACE and DIMENSIONS).

    `summary` holds rows_in, rows_loaded and rows_quarantined (rows_in = rows_loaded + rows_quarantined);
    they become RowsIn/RowsLoaded/RowsQuarantined, `duration_seconds` DurationSeconds, `metrics` the
    job's others (Files, Devices, Events). The summary's other fields stay plain members of the
    document, which Logs Insights reads as fields. ValueError when a rule above does not hold.
    """
    values: dict[str, int | float] = {}
    for field, name in ROW_FIELDS.items():
        if field not in summary:
            raise ValueError(f"the run summary of {job} has no {field}")
        values[name] = _number(name, summary[field])
    if values[ROWS_IN] != values[ROWS_LOADED] + values[ROWS_QUARANTINED]:
        raise ValueError(f"the run summary of {job} has rows_in != rows_loaded + rows_quarantined: {dict(summary)}")
    values[DURATION] = round(_number(DURATION, duration_seconds), 3)
    for name, value in (metrics or {}).items():
        if name not in UNITS or name in values:
            raise ValueError(f"{name} is not one of the job metrics {sorted(set(UNITS) - set(values))}")
        values[name] = _number(name, value)
    dimension_values = dimensions(stack, pipeline, job)
    for dimension, text in dimension_values.items():
        # EMF: a dimension target MUST be a string; CloudWatch: 1 to 1024 ASCII characters, not all blank.
        if not isinstance(text, str) or not text.strip() or not text.isascii() or len(text) > 1024:
            raise ValueError(
                f"dimension {dimension} must be a non-blank ASCII string of at most 1024 characters: {text!r}"
            )
    properties = {k: v for k, v in summary.items() if k not in ROW_FIELDS and k != "job"}
    clash = sorted(set(properties) & RESERVED)
    if clash:
        raise ValueError(f"the run summary of {job} uses names the metrics line reserves: {clash}")
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(DIMENSIONS)],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                }
            ],
        },
        **dimension_values,
        **values,
        **properties,
    }


def emit_run_summary(
    summary: Mapping[str, Any],
    *,
    stack: str,
    pipeline: str,
    job: str,
    duration_seconds: float,
    metrics: Mapping[str, int | float] | None = None,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Print the run summary's EMF document (run_summary_document) to stdout as one line, and return it.

    Stdout is the job's CloudWatch log stream (Glue's output group, Batch's awslogs driver); a line that
    is exactly one JSON object is what EMF extraction and Logs Insights parse.
    """
    document = run_summary_document(
        summary, stack=stack, pipeline=pipeline, job=job, duration_seconds=duration_seconds, metrics=metrics
    )
    line = json.dumps(document, default=str)
    # Too long for one log event: the largest plain members go first (named under "truncated").
    plain = sorted((k for k in document if k not in RESERVED), key=lambda k: len(json.dumps(document[k], default=str)))
    while len(line.encode()) > MAX_LINE_BYTES and plain:
        name = plain.pop()
        document.pop(name)
        document["truncated"] = sorted([*document.get("truncated", []), name])
        line = json.dumps(document, default=str)
    print(line, file=stream or sys.stdout, flush=True)
    return document
