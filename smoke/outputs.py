"""The deployed stack's outputs the smoke run needs (`pulumi stack output --json`, or a saved copy)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Pipeline names as in the `pipelines` stack setting, and the outputs each needs beyond the shared ones.
PIPELINE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "render-logs": ("render_logs_upload_to", "render_logs_state_machine_arn", "render_logs_table"),
    "sales": ("sales_upload_to", "sales_workflow", "sales_table", "sales_parquet_table"),
    "sensor-timeseries": ("sensor_upload_to", "sensor_state_machine_arn", "sensor_timeseries_table"),
    "gharchive": ("gharchive_state_machine_arn", "gharchive_jobs_table", "gharchive_events_table"),
    "covid19": ("covid_state_machine_arn", "covid_warehouse_schema"),
}
# Which pipelines query what: the warehouse (Data API) or the catalog (Athena).
WAREHOUSE_OUTPUTS = ("redshift_workgroup", "redshift_database", "redshift_admin_secret_arn")
CATALOG_OUTPUTS = ("glue_database", "athena_workgroup")
NEEDS = {
    "render-logs": WAREHOUSE_OUTPUTS,
    "sales": WAREHOUSE_OUTPUTS + CATALOG_OUTPUTS,
    "sensor-timeseries": CATALOG_OUTPUTS,
    "gharchive": CATALOG_OUTPUTS,
    "covid19": WAREHOUSE_OUTPUTS,
}


class OutputsError(Exception):
    """The outputs cannot be read, or lack what a pipeline's smoke run needs."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix)."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or not uri[5:].split("/", 1)[0]:
        raise OutputsError(f"not an s3://bucket/prefix URI: {uri!r}")
    bucket, prefix = uri[5:].split("/", 1)
    return bucket, prefix


@dataclass(frozen=True)
class StackOutputs:
    values: Mapping[str, Any]

    def get(self, key: str) -> Any:
        if key not in self.values:
            raise OutputsError(f"the stack has no output {key!r}")
        return self.values[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value:
            raise OutputsError(f"output {key!r} is not a non-empty string: {value!r}")
        return value

    def bucket(self, zone: str) -> str:
        buckets = self.get("buckets")
        if not isinstance(buckets, dict) or not isinstance(buckets.get(zone), str):
            raise OutputsError(f"output 'buckets' has no {zone!r} bucket")
        return buckets[zone]

    @property
    def region(self) -> str | None:
        region = self.values.get("region")
        return region if isinstance(region, str) and region else None

    def deployed_pipelines(self) -> list[str]:
        """The pipelines this stack built, known by their state machine or workflow output."""
        return [name for name, keys in PIPELINE_OUTPUTS.items() if keys[1] in self.values]

    def missing(self, pipeline: str) -> list[str]:
        """The outputs `pipeline`'s smoke run needs that the stack does not export."""
        wanted = ("buckets", *PIPELINE_OUTPUTS[pipeline], *NEEDS[pipeline])
        return [key for key in wanted if key not in self.values]


def parse_outputs(text: str) -> StackOutputs:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputsError(f"stack outputs are not JSON: {error}") from error
    if not isinstance(values, dict):
        raise OutputsError("stack outputs are not a JSON object")
    return StackOutputs(values)


def read_outputs(stack: str, outputs_file: Path | None = None) -> StackOutputs:
    """From `outputs_file` if given, else from `pulumi stack output --json --stack <stack>`."""
    if outputs_file is not None:
        try:
            return parse_outputs(outputs_file.read_text())
        except OSError as error:
            raise OutputsError(f"cannot read {outputs_file}: {error.strerror}") from error
    try:
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except FileNotFoundError as error:
        raise OutputsError("the pulumi CLI is not on PATH (or pass --outputs-file)") from error
    if result.returncode != 0:
        raise OutputsError(f"pulumi stack output --stack {stack} failed: {result.stderr.strip()}")
    return parse_outputs(result.stdout)
