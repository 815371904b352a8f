"""The smoke run: upload the samples, start what is started by hand, wait for every run (bounded, with
progress lines), then check the results where users see them. One `Result` per pipeline.

What is waited for is a `Run`: a Step Functions execution (started here, or found by the S3 object
it was started for) or a Glue workflow run (found by its start time: EventBridge starts it). Each
pipeline's `check` raises `SmokeFailure(step, message)` at the first result that is not what the
samples must give; any AWS error is reported the same way, naming the step it happened in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ingestion.sensor_upload import index_entries, object_key, write_index
from job_runtime.contracts import GHARCHIVE_JOBS_ITEM
from pipelines import render_logs, sales, sensor_timeseries
from smoke import samples
from smoke.outputs import OutputsError, StackOutputs, split_s3_uri
from smoke.queries import Athena, Clock, QueryError, Warehouse

# EventBridge-started runs are matched by start time; AWS's clock and ours may differ a little.
CLOCK_SKEW = timedelta(minutes=2)
GHARCHIVE_JOB = GHARCHIVE_JOBS_ITEM  # the download's item in the jobs table
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,126}")
FAILED_JOB_STATES = {"FAILED", "TIMEOUT", "ERROR", "STOPPED", "EXPIRED"}
FAILED_CRAWL_STATES = {"FAILED", "ERROR", "CANCELLED"}
CAUSE_CHARS = 400


class SmokeFailure(Exception):
    """A pipeline failed at `step` (an upload, a start, a state or job, a check)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


@contextmanager
def step(name: str) -> Iterator[None]:
    """AWS and query errors inside the block fail the pipeline at step `name`."""
    try:
        yield
    except (ClientError, BotoCoreError, QueryError, OutputsError, OSError) as error:
        raise SmokeFailure(name, one_line(str(error))) from error


def one_line(text: str, limit: int = CAUSE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def elapsed_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


@dataclass(frozen=True)
class Status:
    state: str  # WAITING (not started yet), RUNNING, SUCCEEDED or FAILED
    step: str  # the state, job or crawler it is at (or failed at); "trigger" while WAITING, "end" once SUCCEEDED
    detail: str = ""


class Run(Protocol):
    label: str

    def poll(self) -> Status: ...


@dataclass
class Context:
    outputs: StackOutputs
    client: Callable[[str], Any]
    clock: Clock
    say: Callable[[str], None]
    run_name: str  # names executions and scratch tables: unique per smoke run
    started: float = 0.0

    def elapsed(self) -> str:
        return elapsed_text(self.clock.now() - self.started)

    def warehouse(self) -> Warehouse:
        o = self.outputs
        return Warehouse(
            self.client("redshift-data"),
            self.clock,
            o.text("redshift_workgroup"),
            o.text("redshift_database"),
            o.text("redshift_admin_secret_arn"),
        )

    def athena(self) -> Athena:
        return Athena(
            self.client("athena"), self.clock, self.outputs.text("athena_workgroup"), self.outputs.text("glue_database")
        )


# --- runs ---------------------------------------------------------------------------------------------


def _history(sfn: Any, arn: str, reverse: bool, limit: int) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"executionArn": arn, "reverseOrder": reverse, "maxResults": limit}
    while True:
        page = sfn.get_execution_history(**request)
        yield from page["events"]
        if not page.get("nextToken"):
            return
        request["nextToken"] = page["nextToken"]


@dataclass
class Execution:
    """A Step Functions execution of a pipeline definition (components/orchestration.pipeline_definition):
    a failed step is routed to NotifyFailure with the error in `$.failure`."""

    sfn: Any
    arn: str
    label: str

    def poll(self) -> Status:
        described = self.sfn.describe_execution(executionArn=self.arn)
        status = described["status"]
        if status == "SUCCEEDED":
            return Status("SUCCEEDED", "end")  # NotifySuccess, or Succeeded without the notifications topic
        if status in ("RUNNING", "PENDING_REDRIVE"):
            return Status("RUNNING", self._current_state())
        failed_at, error = self._failure(described)
        return Status("FAILED", failed_at, f"execution {self.arn.rsplit(':', 1)[-1]} {status}: {error}")

    def _current_state(self) -> str:
        for event in _history(self.sfn, self.arn, reverse=True, limit=25):
            if "stateEnteredEventDetails" in event:
                return str(event["stateEnteredEventDetails"]["name"])
        return "starting"

    def _failure(self, described: dict[str, Any]) -> tuple[str, str]:
        entered: list[dict[str, Any]] = [
            e["stateEnteredEventDetails"]
            for e in _history(self.sfn, self.arn, reverse=False, limit=1000)
            if "stateEnteredEventDetails" in e
        ]
        names = [e["name"] for e in entered]
        if "NotifyFailure" in names:
            at = names.index("NotifyFailure")
            failed_at = names[at - 1] if at > 0 else "NotifyFailure"
            try:
                failure = json.loads(entered[at].get("input") or "{}").get("failure", {})
            except json.JSONDecodeError:
                failure = {}
            if failure:
                return failed_at, one_line(f"{failure.get('Error', '?')}: {failure.get('Cause', '')}")
            return failed_at, "see the failure notification"
        failed_at = names[-1] if names else "start"
        error, cause = described.get("error", "no error given"), described.get("cause", "")
        return failed_at, one_line(f"{error}: {cause}" if cause else error)


@dataclass
class EventExecution:
    """The execution EventBridge starts for one uploaded object, found by its input (the S3 event)."""

    sfn: Any
    machine_arn: str
    bucket: str
    key: str
    not_before: datetime
    label: str
    found: Execution | None = None
    seen: set[str] = field(default_factory=set)

    def poll(self) -> Status:
        if self.found is None:
            self.found = self._find()
        if self.found is None:
            return Status("WAITING", "trigger", f"no execution started for s3://{self.bucket}/{self.key}")
        return self.found.poll()

    def _find(self) -> Execution | None:
        listed = self.sfn.list_executions(stateMachineArn=self.machine_arn, maxResults=100)["executions"]
        for item in listed:  # newest first
            if item["startDate"] < self.not_before - CLOCK_SKEW:
                break
            if item["executionArn"] in self.seen:
                continue
            self.seen.add(item["executionArn"])
            described = self.sfn.describe_execution(executionArn=item["executionArn"])
            try:
                detail = json.loads(described.get("input") or "{}").get("detail", {})
            except json.JSONDecodeError:
                continue
            if detail.get("bucket", {}).get("name") == self.bucket and detail.get("object", {}).get("key") == self.key:
                return Execution(self.sfn, item["executionArn"], self.label)
        return None


def _latest(items: list[dict[str, Any]]) -> dict[str, Any]:
    return max(items, key=lambda i: i.get("StartedOn") or i.get("StartTime") or datetime.min) if items else {}


@dataclass
class WorkflowRun:
    """The Glue workflow run EventBridge starts after the upload (event batching may wait minutes)."""

    glue: Any
    workflow: str
    not_before: datetime
    label: str = "workflow run"
    run_id: str | None = None

    def poll(self) -> Status:
        if self.run_id is None:
            runs = self.glue.get_workflow_runs(Name=self.workflow, IncludeGraph=False, MaxResults=50).get("Runs", [])
            started = [r for r in runs if r["StartedOn"] >= self.not_before - CLOCK_SKEW]
            if not started:
                return Status("WAITING", "trigger", f"no run of Glue workflow {self.workflow} started")
            self.run_id = min(started, key=lambda r: r["StartedOn"])["WorkflowRunId"]
        run = self.glue.get_workflow_run(Name=self.workflow, RunId=self.run_id, IncludeGraph=True)["Run"]
        nodes = [n for n in run.get("Graph", {}).get("Nodes", []) if n["Type"] in ("JOB", "CRAWLER")]
        states = [(n["Name"], *self._node_state(n)) for n in nodes]
        if run["Status"] == "RUNNING":
            running = [name for name, state, _ in states if state in ("STARTING", "RUNNING", "WAITING")]
            return Status("RUNNING", running[0] if running else "between steps")
        bad = FAILED_JOB_STATES | FAILED_CRAWL_STATES
        failed = [(name, state, error) for name, state, error in states if state in bad]
        if failed:
            name, state, error = failed[0]
            return Status("FAILED", name, one_line(f"workflow run {self.run_id}: {name} {state}: {error}"))
        unfinished = [name for name, state, _ in states if state != "SUCCEEDED"]
        if run["Status"] != "COMPLETED" or unfinished or not nodes:
            at = unfinished[0] if unfinished else "workflow"
            reason = run.get("ErrorMessage") or f"{at} did not run"
            return Status("FAILED", at, one_line(f"workflow run {self.run_id} {run['Status']}: {reason}"))
        return Status("SUCCEEDED", nodes[-1]["Name"])

    @staticmethod
    def _node_state(node: dict[str, Any]) -> tuple[str, str]:
        if node["Type"] == "JOB":
            job_run = _latest(node.get("JobDetails", {}).get("JobRuns", []))
            return job_run.get("JobRunState", "NOT_STARTED"), job_run.get("ErrorMessage", "")
        crawl = _latest(node.get("CrawlerDetails", {}).get("Crawls", []))
        return crawl.get("State", "NOT_STARTED"), crawl.get("ErrorMessage", "")


# --- helpers for the checks ---------------------------------------------------------------------------


def identifier(value: str, what: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise SmokeFailure("outputs", f"{what} {value!r} is not a lower-case SQL identifier")
    return value


def csv_rows(s3: Any, bucket: str, key: str) -> int:
    """Data rows of one CSV object with a header line."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    return max(len(rows) - 1, 0)


def csv_rows_under(s3: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(objects, data rows) of the CSV part files under a prefix (Spark's _SUCCESS and dot files skipped)."""
    objects = rows = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if name.startswith(("_", ".")) or item["Size"] == 0:
                continue
            objects += 1
            rows += csv_rows(s3, bucket, item["Key"])
    return objects, rows


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def expect_quarantine(s3: Any, bucket: str, prefix: str, expected: int) -> str:
    with step("check quarantine"):
        objects, rows = csv_rows_under(s3, bucket, prefix)
    if rows != expected:
        raise SmokeFailure(
            "check quarantine",
            f"expected {expected} quarantined row(s) under s3://{bucket}/{prefix}, found {rows} in {objects} object(s)",
        )
    return f"{expected} quarantined row(s) under s3://{bucket}/{prefix}"


def start_execution(ctx: Context, machine_arn: str, payload: dict[str, Any], label: str) -> Execution:
    sfn = ctx.client("stepfunctions")
    with step("start"):
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=ctx.run_name, input=json.dumps(payload))[
            "executionArn"
        ]
    ctx.say(f"[{ctx.elapsed()}] {label}: started execution {ctx.run_name} with input {json.dumps(payload)}")
    return Execution(sfn, arn, "execution")


# --- the pipelines ------------------------------------------------------------------------------------


class Pipeline:
    name = ""

    def start(self, ctx: Context) -> list[Run]:
        raise NotImplementedError

    def check(self, ctx: Context) -> list[str]:
        """The checks passed (descriptions); raises SmokeFailure at the first one that fails."""
        raise NotImplementedError


def upload(ctx: Context, pipeline: str, path: Any, bucket: str, key: str) -> None:
    with step("upload"):
        ctx.client("s3").upload_file(str(path), bucket, key)
    ctx.say(f"[{ctx.elapsed()}] {pipeline}: uploaded {path.name} to s3://{bucket}/{key}")


class RenderLogs(Pipeline):
    """Both render-log samples under `<prefix>smoke/`: each upload starts one execution (S3 event)."""

    name = "render-logs"

    def keys(self, ctx: Context) -> dict[str, tuple[str, str]]:
        bucket, prefix = split_s3_uri(ctx.outputs.text("render_logs_upload_to"))
        return {f: (bucket, f"{prefix}smoke/{f}") for f in samples.RENDER_LOGS_FILES}

    def start(self, ctx: Context) -> list[Run]:
        with step("outputs"):
            keys, machine = self.keys(ctx), ctx.outputs.text("render_logs_state_machine_arn")
        not_before = ctx.clock.wall()
        runs: list[Run] = []
        for name, (bucket, key) in keys.items():
            upload(ctx, self.name, samples.sample("render_logs", name), bucket, key)
            runs.append(EventExecution(ctx.client("stepfunctions"), machine, bucket, key, not_before, name))
        return runs

    def check(self, ctx: Context) -> list[str]:
        with step("outputs"):
            table = identifier(ctx.outputs.text("render_logs_table"), "render_logs_table")
            processed = ctx.outputs.bucket("processed")
        warehouse, s3, passed = ctx.warehouse(), ctx.client("s3"), []
        for name, (bucket, key) in self.keys(ctx).items():
            uri = f"s3://{bucket}/{key}"
            with step("check warehouse"):
                rows = warehouse.query(
                    "SELECT device_id, log_count, max_latency_ms, sum_frame_rate / log_count, "
                    f"sum_gpu_usage / log_count FROM public.{table}_by_file WHERE source_uri = :source_uri "
                    "ORDER BY device_id",
                    {"source_uri": uri},
                )
            expected = samples.RENDER_LOGS_SUMMARY[name]
            if not _summary_matches(rows, expected):
                raise SmokeFailure(
                    "check warehouse",
                    f"public.{table}_by_file rows for {uri}: expected {_devices(expected)}; "
                    f"found {_found_devices(rows)}",
                )
            passed.append(f"public.{table}_by_file: {len(expected)} device row(s) for {name}")
            quarantine_key = f"{render_logs.QUARANTINE_PREFIX}/{bucket}/{key}.quarantine.csv"
            wanted = samples.RENDER_LOGS_QUARANTINED[name]
            with step("check quarantine"):
                found = csv_rows(s3, processed, quarantine_key) if object_exists(s3, processed, quarantine_key) else 0
            if found != wanted:
                raise SmokeFailure(
                    "check quarantine",
                    f"expected {wanted} quarantined row(s) in s3://{processed}/{quarantine_key}, found {found}",
                )
            passed.append(f"{wanted} quarantined row(s) for {name}")
        passed.append(self.check_totals(warehouse, table))
        return passed

    def check_totals(self, warehouse: Any, table: str) -> str:
        """The five-column table holds, for each device the samples have, the totals of its per-file rows
        (other uploads may have added to them: the comparison is with every file's rows, not the samples')."""
        devices = sorted({d.device_id for rows in samples.RENDER_LOGS_SUMMARY.values() for d in rows})
        with step("check warehouse"):
            rows = warehouse.query(
                "SELECT t.device_id, t.log_count, t.max_latency_ms, t.avg_frame_rate, t.avg_gpu_usage, "
                "f.log_count, f.max_latency_ms, f.avg_frame_rate, f.avg_gpu_usage "
                f"FROM public.{table} t JOIN (SELECT device_id, SUM(log_count) AS log_count, "
                "MAX(max_latency_ms) AS max_latency_ms, SUM(sum_frame_rate) / SUM(log_count) AS avg_frame_rate, "
                f"SUM(sum_gpu_usage) / SUM(log_count) AS avg_gpu_usage FROM public.{table}_by_file "
                "GROUP BY device_id) f ON f.device_id = t.device_id "
                f"WHERE t.device_id IN ({', '.join(repr(d) for d in devices)}) ORDER BY t.device_id"
            )
        tolerance = samples.AVERAGE_TOLERANCE
        found = [row[0] for row in rows]
        wrong = [
            row[0]
            for row in rows
            if row[1:3] != row[5:7] or any(abs(a - b) > tolerance for a, b in zip(row[3:5], row[7:9], strict=True))
        ]
        if found != devices or wrong:
            raise SmokeFailure(
                "check warehouse",
                f"public.{table}: expected one row per device ({', '.join(devices)}) equal to the totals of "
                f"public.{table}_by_file; found {', '.join(found) or 'none'}"
                + (f", not equal for {', '.join(wrong)}" if wrong else ""),
            )
        return f"public.{table}: {len(devices)} device(s), each the total of its rows in public.{table}_by_file"


def _summary_matches(rows: list[tuple[Any, ...]], expected: tuple[samples.DeviceSummary, ...]) -> bool:
    if len(rows) != len(expected):
        return False
    tolerance = samples.AVERAGE_TOLERANCE
    for row, want in zip(rows, expected, strict=True):
        device, logs, latency, fps, gpu = row
        if (device, logs, latency) != (want.device_id, want.log_count, want.max_latency_ms):
            return False
        if fps is None or gpu is None:
            return False
        if abs(fps - want.avg_frame_rate) > tolerance or abs(gpu - want.avg_gpu_usage) > tolerance:
            return False
    return True


def _devices(expected: tuple[samples.DeviceSummary, ...]) -> str:
    return ", ".join(
        f"{d.device_id} {d.log_count} log(s) max {d.max_latency_ms} ms {d.avg_frame_rate:.6f} fps "
        f"{d.avg_gpu_usage:.6f} GPU"
        for d in expected
    )


def _found_devices(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "no rows"
    return ", ".join(
        f"{device} {logs} log(s) max {latency} ms "
        + (f"{fps:.6f} fps {gpu:.6f} GPU" if fps is not None and gpu is not None else f"{fps} fps {gpu} GPU")
        for device, logs, latency, fps, gpu in rows
    )


class Sales(Pipeline):
    """The sales sample at the input prefix: EventBridge notifies the Glue workflow, which runs after
    its event batching window. Its orders are checked in the warehouse table and, through Athena, in
    the converted Parquet's catalog table (partitions the convert job registered, no crawl)."""

    name = "sales"

    def location(self, ctx: Context) -> tuple[str, str]:
        bucket, prefix = split_s3_uri(ctx.outputs.text("sales_upload_to"))
        return bucket, f"{prefix}{samples.SALES_FILE}"

    def start(self, ctx: Context) -> list[Run]:
        with step("outputs"):
            (bucket, key), workflow = self.location(ctx), ctx.outputs.text("sales_workflow")
        not_before = ctx.clock.wall()
        upload(ctx, self.name, samples.sample("sales", samples.SALES_FILE), bucket, key)
        return [WorkflowRun(ctx.client("glue"), workflow, not_before)]

    def check(self, ctx: Context) -> list[str]:
        with step("outputs"):
            table = identifier(ctx.outputs.text("sales_table"), "sales_table")
            parquet_table = identifier(ctx.outputs.text("sales_parquet_table"), "sales_parquet_table")
            processed = ctx.outputs.bucket("processed")
        s3, file = ctx.client("s3"), samples.SALES_FILE
        marker_key = f"{sales.STATE_PREFIX}converted/{file}.json"
        with step("check conversion"):
            marker = json.loads(s3.get_object(Bucket=processed, Key=marker_key)["Body"].read())
        counts = (marker.get("rows_in"), marker.get("rows_loaded"), marker.get("rows_quarantined"))
        wanted = (samples.SALES_ROWS_IN, samples.SALES_ROWS_LOADED, samples.SALES_ROWS_QUARANTINED)
        if counts != wanted:
            raise SmokeFailure(
                "check conversion",
                f"s3://{processed}/{marker_key}: expected rows in/loaded/quarantined {wanted}, found {counts}",
            )
        passed = [f"{file}: {wanted[0]} row(s) in, {wanted[1]} converted, {wanted[2]} quarantined"]
        passed.append(expect_quarantine(s3, processed, f"{sales.QUARANTINE_PREFIX}source_file={file}/", wanted[2]))
        ids = ", ".join(f"'{order_id}'" for order_id in samples.SALES_ORDER_IDS)
        with step("check warehouse"):
            rows = ctx.warehouse().query(
                f"SELECT count(*), sum(quantity) FROM public.{table} WHERE order_id IN ({ids})"
            )
        # sum() of an integer column may come back as a long or, for DECIMAL, as a string.
        found = tuple(None if v is None else int(v) for v in rows[0]) if rows else None
        if found != (samples.SALES_ROWS_LOADED, samples.SALES_UNITS):
            raise SmokeFailure(
                "check warehouse",
                f"public.{table}: expected {samples.SALES_ROWS_LOADED} of the sample's orders with "
                f"{samples.SALES_UNITS} units, found {found[0] if found else 0} orders with "
                f"{found[1] if found else None} units",
            )
        passed.append(f"public.{table}: {samples.SALES_ROWS_LOADED} orders, {samples.SALES_UNITS} units")
        with step("check athena"):
            lake = ctx.athena().query(
                f"SELECT count(*), sum(quantity) FROM {parquet_table} WHERE source_file = '{file}'"
            )
        in_lake = tuple(None if v is None else int(v) for v in lake[0]) if lake else None
        if in_lake != (samples.SALES_ROWS_LOADED, samples.SALES_UNITS):
            raise SmokeFailure(
                "check athena",
                f"{parquet_table}: expected {samples.SALES_ROWS_LOADED} orders of {file} with {samples.SALES_UNITS} "
                f"units, found {in_lake[0] if in_lake else 0} orders with {in_lake[1] if in_lake else None} units",
            )
        passed.append(f"Athena {parquet_table}: {samples.SALES_ROWS_LOADED} orders, {samples.SALES_UNITS} units")
        return passed


class SensorTimeseries(Pipeline):
    """The sensor sample under its content-addressed key (as ingestion/sensor_upload.py names it), then
    the monthly state machine for the sample's month."""

    name = "sensor-timeseries"

    def start(self, ctx: Context) -> list[Run]:
        with step("outputs"):
            bucket, prefix = split_s3_uri(ctx.outputs.text("sensor_upload_to"))
            machine = ctx.outputs.text("sensor_state_machine_arn")
        path = samples.sample("sensor", samples.SENSOR_FILE)
        key = object_key(prefix, path, hashlib.sha256(path.read_bytes()).hexdigest())
        upload(ctx, self.name, path, bucket, key)
        with step("upload"):  # and its month index, as the upload CLI writes it after the file
            write_index(ctx.client("s3"), bucket, index_entries(prefix, key, path.read_bytes()))
        return [start_execution(ctx, machine, {"month": samples.SENSOR_MONTH}, self.name)]

    def check(self, ctx: Context) -> list[str]:
        with step("outputs"):
            processed = ctx.outputs.bucket("processed")
        month = f"month={samples.SENSOR_MONTH}/"
        passed = [
            expect_quarantine(
                ctx.client("s3"),
                processed,
                f"{sensor_timeseries.QUARANTINE_PREFIX}{month}",
                samples.SENSOR_ROWS_QUARANTINED,
            )
        ]
        # The stack's catalog table, as its ML users query it: the month is there as soon as the run ends
        # (partition projection), with no crawl and no table of the smoke run's own.
        with step("outputs"):
            table = identifier(ctx.outputs.text("sensor_timeseries_table"), "sensor_timeseries_table")
        where = f"{table} month {samples.SENSOR_MONTH}"
        with step("check athena"):
            rows = ctx.athena().query(
                f'SELECT sensor_id, count(*), count_if(is_gap) FROM "{table}" '
                f"WHERE month = '{samples.SENSOR_MONTH}' GROUP BY sensor_id ORDER BY sensor_id"
            )
        found = {sensor: (int(points or 0), int(gaps or 0)) for sensor, points, gaps in rows}
        if found != samples.SENSOR_POINTS:
            raise SmokeFailure(
                "check athena",
                f"{where}: expected (points, gaps) per sensor {samples.SENSOR_POINTS}, found {found}",
            )
        passed.append(f"{where}: {sum(p for p, _ in found.values())} points for {len(found)} sensors")
        return passed


class Gharchive(Pipeline):
    """One run of the hourly state machine: ingest (from GH Archive), flatten; then the stack's table."""

    name = "gharchive"

    def start(self, ctx: Context) -> list[Run]:
        with step("outputs"):
            machine = ctx.outputs.text("gharchive_state_machine_arn")
        return [start_execution(ctx, machine, {}, self.name)]

    def check(self, ctx: Context) -> list[str]:
        with step("outputs"):
            jobs_table = ctx.outputs.text("gharchive_jobs_table")
            events = identifier(ctx.outputs.text("gharchive_events_table"), "gharchive_events_table")
        with step("check bookmark"):
            item = ctx.client("dynamodb").get_item(
                TableName=jobs_table, Key={"job_name": {"S": GHARCHIVE_JOB}}, ConsistentRead=True
            )
        bookmark = item.get("Item", {}).get("bookmark", {}).get("S", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", bookmark):
            raise SmokeFailure(
                "check bookmark", f"no hour ingested: table {jobs_table} has no bookmark for {GHARCHIVE_JOB}"
            )
        day = bookmark[:10]
        with step("check athena"):
            rows = ctx.athena().query(
                # "date" is the table's string partition key: compared as is, Athena projects that day only.
                f'SELECT count(*), count(DISTINCT event_id) FROM "{events}" WHERE "date" = \'{day}\''
            )
        total, distinct = (int(v or 0) for v in rows[0]) if rows else (0, 0)
        if total == 0 or total != distinct:
            raise SmokeFailure(
                "check athena",
                f"{events} for date {day} (bookmark {bookmark}): expected events with unique ids, "
                f"found {total} events with {distinct} distinct ids",
            )
        return [f"bookmark {bookmark}", f"{events}: {total} events on {day}, ids unique"]


class Covid(Pipeline):
    """One run of the COVID-19 state machine: copy, crawl, stage, clean, load the star schema."""

    name = "covid19"
    tables = ("dim_date", "dim_location", "fact_cases", "fact_testing")

    def start(self, ctx: Context) -> list[Run]:
        with step("outputs"):
            machine = ctx.outputs.text("covid_state_machine_arn")
        return [start_execution(ctx, machine, {}, self.name)]

    def check(self, ctx: Context) -> list[str]:
        with step("outputs"):
            schema = identifier(ctx.outputs.text("covid_warehouse_schema"), "covid_warehouse_schema")
        counts = ", ".join(f"(SELECT count(*) FROM {schema}.{t})" for t in self.tables)
        orphans = ", ".join(
            f"(SELECT count(*) FROM {schema}.{fact} f WHERE NOT EXISTS "
            f"(SELECT 1 FROM {schema}.dim_date d WHERE d.date_key = f.date_key) OR NOT EXISTS "
            f"(SELECT 1 FROM {schema}.dim_location l WHERE l.location_key = f.location_key))"
            for fact in ("fact_cases", "fact_testing")
        )
        with step("check warehouse"):
            rows = ctx.warehouse().query(f"SELECT {counts}, {orphans}")
        values = rows[0] if rows else (0,) * 6
        sizes = dict(zip(self.tables, values[:4], strict=True))
        empty = [t for t, n in sizes.items() if not n]
        if empty:
            raise SmokeFailure("check warehouse", f"empty star schema table(s) in {schema}: {', '.join(empty)}")
        if any(values[4:]):
            raise SmokeFailure(
                "check warehouse",
                f"facts without their dimension rows in {schema}: fact_cases {values[4]}, fact_testing {values[5]}",
            )
        return [f"{schema}: " + ", ".join(f"{t} {n}" for t, n in sizes.items()), "every fact has its dimensions"]


PIPELINES: dict[str, type[Pipeline]] = {p.name: p for p in (RenderLogs, Sales, SensorTimeseries, Gharchive, Covid)}


# --- the whole run ------------------------------------------------------------------------------------


@dataclass
class Result:
    pipeline: str
    passed: bool
    step: str = ""
    message: str = ""
    checks: list[str] = field(default_factory=list)
    runs: int = 0

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.pipeline}: {self.runs} run(s) succeeded, {len(self.checks)} check(s) passed"
        return f"FAIL {self.pipeline} at {self.step}: {self.message}"


def run_smoke(
    pipelines: list[Pipeline],
    ctx: Context,
    timeout_seconds: float,
    poll_seconds: float = 15,
    progress_seconds: float = 30,
) -> list[Result]:
    """Start every pipeline, wait for all their runs together, then check each one that succeeded."""
    ctx.started = ctx.clock.now()
    results: dict[str, Result] = {}
    pending: list[tuple[Pipeline, Run]] = []
    run_counts: dict[str, int] = {}
    for pipeline in pipelines:
        try:
            runs = pipeline.start(ctx)
        except SmokeFailure as failure:
            results[pipeline.name] = Result(pipeline.name, False, failure.step, failure.message)
            continue
        run_counts[pipeline.name] = len(runs)
        pending.extend((pipeline, run) for run in runs)

    deadline = ctx.started + timeout_seconds
    last_progress = ctx.started
    latest: dict[int, Status] = {}
    while pending:
        for pipeline, run in list(pending):
            try:
                status = run.poll()
            except (ClientError, BotoCoreError) as error:
                status = Status("FAILED", latest.get(id(run), Status("", "wait")).step, one_line(str(error)))
            latest[id(run)] = status
            if status.state in ("SUCCEEDED", "FAILED"):
                pending.remove((pipeline, run))
                suffix = f" at {status.step}: {status.detail}" if status.state == "FAILED" else ""
                ctx.say(f"[{ctx.elapsed()}] {pipeline.name} {run.label}: {status.state}{suffix}")
                if status.state == "FAILED" and pipeline.name not in results:
                    results[pipeline.name] = Result(pipeline.name, False, status.step, status.detail)
        if not pending:
            break
        now = ctx.clock.now()
        if now >= deadline:
            minutes = timeout_seconds / 60
            for pipeline, run in pending:
                status = latest[id(run)]
                message = (
                    f"{run.label}: {status.detail} within {minutes:g} min"
                    if status.state == "WAITING"
                    else f"{run.label}: still {status.state} at {status.step} after {minutes:g} min"
                )
                ctx.say(f"[{ctx.elapsed()}] {pipeline.name} {run.label}: TIMED OUT at {status.step}")
                results.setdefault(pipeline.name, Result(pipeline.name, False, status.step, message))
            break
        if now - last_progress >= progress_seconds:
            last_progress = now
            for pipeline, run in pending:
                status = latest[id(run)]
                ctx.say(f"[{ctx.elapsed()}] {pipeline.name} {run.label}: {status.step} {status.state}")
        ctx.clock.sleep(poll_seconds)

    for pipeline in pipelines:
        if pipeline.name in results:
            continue
        try:
            checks = pipeline.check(ctx)
        except SmokeFailure as failure:
            results[pipeline.name] = Result(pipeline.name, False, failure.step, failure.message)
            continue
        results[pipeline.name] = Result(pipeline.name, True, checks=checks, runs=run_counts[pipeline.name])
    return [results[p.name] for p in pipelines]


def markdown_summary(stack: str, results: list[Result], elapsed: str, timeout_minutes: float) -> str:
    """The run as Markdown, for the PR comment and the job summary."""
    failed = [r for r in results if not r.passed]
    verdict = "FAILED" if failed else "passed"
    lines = [
        f"### Smoke run on `{stack}`: {verdict}",
        "",
        "| Pipeline | Result | Step | Details |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        details = "; ".join(r.checks) if r.passed else r.message
        result = "passed" if r.passed else "**FAILED**"
        lines.append(f"| {r.pipeline} | {result} | {_cell(r.step)} | {_cell(details)} |")
    passed = len(results) - len(failed)
    lines += ["", f"{passed} of {len(results)} pipeline(s) passed in {elapsed} (timeout {timeout_minutes:g} min)."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
