"""What the smoke tests share: a clock that only moves when the run sleeps, the AWS clients (S3 and
DynamoDB in moto; Step Functions, Glue, Athena and the Data API behind botocore Stubbers, because moto
runs no `.sync` state, no Glue workflow and no SQL), stack outputs shaped like the program's, and the
canned responses those services give."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from smoke.cli import main

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "pr-12"
START = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)
RUN_NAME = "smoke-20261203T090000Z"
RAW, PROCESSED = "dataplatform-pr-12-raw-0a1b", "dataplatform-pr-12-processed-0a1b"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-pr-12-"
WORKGROUP, DATABASE = "dataplatform-pr-12-warehouse", "analytics"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:redshift!dataplatform-pr-12-admin-AbCdEf"
GLUE_DB, ATHENA_WG = "dataplatform_pr_12_catalog", "dataplatform-pr-12-queries"
JOBS_TABLE = "dataplatform-pr-12-gharchive-jobs-0001"
WORKFLOW = "dataplatform-pr-12-sales-workflow"
CONVERT, LOAD = "dataplatform-pr-12-sales-convert", "dataplatform-pr-12-sales-load"
INPUT_CRAWLER = "dataplatform-pr-12-sales-input-crawler"

OUTPUTS: dict[str, Any] = {
    "buckets": {"raw": RAW, "processed": PROCESSED, "curated": "dataplatform-pr-12-curated-0a1b"},
    "region": REGION,
    "redshift_workgroup": WORKGROUP,
    "redshift_database": DATABASE,
    "redshift_admin_secret_arn": SECRET,
    "glue_database": GLUE_DB,
    "athena_workgroup": ATHENA_WG,
    "render_logs_upload_to": f"s3://{RAW}/render-logs/",
    "render_logs_state_machine_arn": f"{MACHINE}render-logs-flow",
    "render_logs_table": "performance_summary",
    "sales_upload_to": f"s3://{RAW}/sales/input/",
    "sales_workflow": WORKFLOW,
    "sales_table": "sales_data_table",
    "sales_parquet_table": "sales_orders",
    "sensor_upload_to": f"s3://{RAW}/sensor/raw/",
    "sensor_state_machine_arn": f"{MACHINE}sensor-flow",
    "sensor_timeseries_table": "sensor_timeseries",
    "gharchive_state_machine_arn": f"{MACHINE}gharchive-flow",
    "gharchive_jobs_table": JOBS_TABLE,
    "gharchive_events_table": "gharchive_events",
    "covid_state_machine_arn": f"{MACHINE}covid-flow",
    "covid_warehouse_schema": "covid",
}


class FakeClock:
    """Monotonic seconds from 0 and a wall clock from START; only `sleep` moves them."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class Aws:
    """Clients for one smoke run; the stubbed ones are checked for unused responses at the end."""

    endpoint_url: str
    stubbed: dict[str, tuple[Any, Stubber]] = field(default_factory=dict)
    real: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service in ("stepfunctions", "glue", "athena", "redshift-data"):
            if service not in self.stubbed:
                client = boto3.client(
                    service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
                )
                stubber = Stubber(client)
                stubber.activate()
                self.stubbed[service] = (client, stubber)
            return self.stubbed[service][0]
        if service not in self.real:
            self.real[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self.real[service]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.stubbed[service][1]

    def assert_all_used(self) -> None:
        for _, stubber in self.stubbed.values():
            stubber.assert_no_pending_responses()


@dataclass
class Outcome:
    code: int
    lines: list[str]
    summary: str


def run(aws: Aws, tmp_path: Path, *args: str, outputs: dict[str, Any] | None = None) -> Outcome:
    """`python -m smoke --stack pr-12 --outputs-file ... --summary-file ... <args>` with the fake clock."""
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(OUTPUTS if outputs is None else outputs))
    summary_file = tmp_path / "summary.md"
    out = io.StringIO()
    argv = ["--stack", f"acme/{STACK}", "--outputs-file", str(outputs_file), "--summary-file", str(summary_file)]
    code = main([*argv, *args], clients=aws.client, clock=FakeClock(), out=out)
    summary = summary_file.read_text() if summary_file.exists() else ""
    return Outcome(code, out.getvalue().splitlines(), summary)


# --- canned responses -------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def execution_arn(machine: str, name: str) -> str:
    return machine.replace(":stateMachine:", ":execution:") + f":{name}"


def s3_event(bucket: str, key: str) -> str:
    """The input EventBridge hands the render-log state machine for an upload."""
    return json.dumps(
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
        }
    )


def listed(machine: str, *names: str, started: float = 5) -> dict[str, Any]:
    return {
        "executions": [
            {
                "executionArn": execution_arn(machine, n),
                "stateMachineArn": machine,
                "name": n,
                "status": "RUNNING",
                "startDate": at(started),
            }
            for n in names
        ]
    }


def described(machine: str, name: str, status: str, payload: str = "{}", **extra: Any) -> dict[str, Any]:
    return {
        "executionArn": execution_arn(machine, name),
        "stateMachineArn": machine,
        "name": name,
        "status": status,
        "startDate": at(5),
        "input": payload,
        **extra,
    }


def history(*states: tuple[str, str]) -> dict[str, Any]:
    """Execution history events: one StateEntered per (state, input), ids in order."""
    return {
        "events": [
            {
                "timestamp": at(10 + i),
                "type": "TaskStateEntered",
                "id": i + 2,
                "previousEventId": i + 1,
                "stateEnteredEventDetails": {"name": name, "input": payload},
            }
            for i, (name, payload) in enumerate(states)
        ]
    }


def node(name: str, kind: str, state: str | None, error: str = "") -> dict[str, Any]:
    """A Glue workflow graph node whose last job run or crawl is in `state` (None: never started)."""
    if kind == "JOB":
        runs = [{"Id": f"jr_{name}", "JobRunState": state, "StartedOn": at(100), "ErrorMessage": error}]
        return {"Type": "JOB", "Name": name, "UniqueId": name, "JobDetails": {"JobRuns": runs if state else []}}
    crawls = [{"State": state, "StartedOn": at(100), "ErrorMessage": error}]
    return {"Type": "CRAWLER", "Name": name, "UniqueId": name, "CrawlerDetails": {"Crawls": crawls if state else []}}


def workflow_run(status: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "Run": {
            "Name": WORKFLOW,
            "WorkflowRunId": "wr_0001",
            "StartedOn": at(300),
            "Status": status,
            "Graph": {"Nodes": [{"Type": "TRIGGER", "Name": "start", "UniqueId": "t1"}, *nodes]},
        }
    }


def stub_statement(aws: Aws, statement_id: str, sql: str, records: list[list[dict[str, Any]]], **params: str) -> None:
    """One Data API statement with the admin secret: execute, FINISHED, its rows."""
    stub = aws.stub("redshift-data")
    request: dict[str, Any] = {"WorkgroupName": WORKGROUP, "Database": DATABASE, "SecretArn": SECRET, "Sql": sql}
    if params:
        request["Parameters"] = [{"name": k, "value": v} for k, v in params.items()]
    stub.add_response("execute_statement", {"Id": statement_id}, request)
    stub.add_response(
        "describe_statement", {"Id": statement_id, "Status": "FINISHED", "HasResultSet": True}, {"Id": statement_id}
    )
    stub.add_response("get_statement_result", {"Records": records}, {"Id": statement_id})


def stub_athena(aws: Aws, query_id: str, sql: str, rows: list[list[str]] | None, kind: str = "DML") -> None:
    """One Athena query in the estate workgroup: start, SUCCEEDED, its rows (header row first)."""
    stub = aws.stub("athena")
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": query_id},
        {"QueryString": sql, "QueryExecutionContext": {"Database": GLUE_DB}, "WorkGroup": ATHENA_WG},
    )
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"QueryExecutionId": query_id, "StatementType": kind, "Status": {"State": "SUCCEEDED"}}},
        {"QueryExecutionId": query_id},
    )
    if rows is not None:
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]}},
            {"QueryExecutionId": query_id},
        )


def put(s3: Any, bucket: str, key: str, body: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def keys(s3: Any, bucket: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield item["Key"]
