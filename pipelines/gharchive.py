"""GH Archive ELT. Every hour EventBridge Scheduler starts a Step Functions state machine:

  1. `gharchive-ingest` (Batch, the estate's jobs image) downloads every published hour after the
     bookmark in DynamoDB `jobs` to s3://<raw>/gharchive/raw/date=YYYY-MM-DD/, unchanged, logging the
     run in `job_run_details` (conditional writes: two runs never ingest the same hour);
  2. the Glue job `gharchive_events` flattens, de-duplicates and drops columns of every new hour
     file into Snappy Parquet (≤ 10,000 records per file) at s3://<processed>/gharchive/events/
     date=YYYY-MM-DD/hour=H/, replacing that hour on a rerun; an event id an earlier run loaded into
     the same date is quarantined, not loaded again; each run is a row in `job_run_details`
     (job_name `gharchive_events`) like the ingest's;
  3. nothing: the events table `gharchive_events` is defined by the stack (CatalogTable, its columns the
     job's contract, job_runtime.contracts.GHARCHIVE_EVENT_COLUMNS) with partition projection on
     date=YYYY-MM-DD/hour=H, so Athena (and the named queries in the estate workgroup) sees an hour
     as soon as the job has written it, without a crawl.
Failures are announced on the alerts topic, successes on the notifications topic (when the stack has one).

Why Batch and not a Glue Python shell job: Python shell is Python 3.9 only and AWS now recommends
migrating off it; the jobs image already runs Python 3.11 on Fargate with exit-code-aware retries,
and the same CLI runs here as a real process in the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws_limits import schedule_expression_problem
from components.compute import BatchJob, BatchJobArgs, GlueJob
from components.config import (
    Check,
    ConfigSection,
    Setting,
    check_quarantine_ratio,
    check_run_timeout,
    quarantine_ratio_setting,
    ratio,
    run_timeout_seconds,
    run_timeout_setting,
)
from components.iam import hadoop_directories, list_buckets, statement
from components.monitoring import FRESHNESS_HOURS_RANGE, DeadLetterQueue, Freshness, PipelineWatch
from components.orchestration import (
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    batch_job_statements,
    batch_job_step,
    glue_job_statements,
    glue_job_step,
    pipeline_definition,
)
from components.storage import StateTable, StateTableArgs
from components.warehouse import CatalogTable, CatalogTableArgs, date_projection, integer_projection
from job_runtime.contracts import GHARCHIVE_EVENT_COLUMNS, GHARCHIVE_EVENT_PARTITIONS
from job_runtime.metrics import FILES
from pipelines.gharchive_queries import named_queries
from pipelines.platform import Pipeline, Platform, batch_run_minutes, glue_run_minutes

RAW_PREFIX = "gharchive/raw/"
EVENTS_PREFIX = "gharchive/events/"
STATE_PREFIX = "gharchive/state/"
QUARANTINE_PREFIX = "quarantine/gharchive/"
EVENTS_TABLE = "gharchive_events"
# GH Archive's first hour file is of this day: the projected dates start here.
FIRST_DAY = "2011-02-12"
# The freshness alarm sums the transform's new hour files per hour over the last N hours; CloudWatch
# evaluates at most seven days (components.monitoring.FRESHNESS_HOURS_RANGE).
FEWEST_FRESHNESS_HOURS, MOST_FRESHNESS_HOURS = FRESHNESS_HOURS_RANGE


@dataclass(frozen=True)
class GharchiveConfig:
    base_url: str
    # YYYY-MM-DD, or "" for three days before the first run; only seeds the jobs item's baseline_day
    # (the item is where operators read and edit it).
    baseline_day: str
    max_hours_per_run: int
    schedule: str
    # Alarm when no new hour file was loaded in this many hours.
    freshness_hours: int
    # The state machine's TimeoutSeconds setting in minutes (0: derived from the jobs' timeouts).
    run_timeout_minutes: int
    quarantine_alarm_ratio: float


SETTINGS = (
    Setting(
        "gharchiveBaseUrl",
        "string",
        "https://data.gharchive.org",
        "Where the hourly GH Archive files are downloaded from (<url>/YYYY-MM-DD-H.json.gz)",
    ),
    Setting(
        "gharchiveBaselineDay",
        "string",
        "",
        "Seeds baseline_day (first day ingested, YYYY-MM-DD) in the jobs item when the item has none; empty = "
        "three days before the first run. Operators re-baseline by editing the item",
    ),
    Setting(
        "gharchiveMaxHoursPerRun",
        "integer",
        24,
        "Hours one download run may fetch (catch-up runs are spread over several schedules)",
    ),
    Setting(
        "gharchiveSchedule",
        "string",
        "cron(15 * * * ? *)",
        "EventBridge Scheduler expression (UTC) of the GH Archive run (ingest, transform)",
    ),
    Setting(
        "gharchiveFreshnessHours",
        "integer",
        3,
        "Alarm when no new GH Archive hour has been loaded for this many hours "
        f"({FEWEST_FRESHNESS_HOURS} to {MOST_FRESHNESS_HOURS})",
    ),
    run_timeout_setting("gharchive", "gharchive"),
    quarantine_ratio_setting("gharchive", "gharchive"),
)


def _is_date(text: str) -> bool:
    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None and bool(date.fromisoformat(text))
    except ValueError:
        return False


def validate(values: Mapping[str, Any], check: Check) -> None:
    problem = schedule_expression_problem(values["gharchiveSchedule"])
    check(problem is None, "gharchiveSchedule", problem or "")
    check(
        re.fullmatch(r"https://[a-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?", values["gharchiveBaseUrl"]) is not None
        and not values["gharchiveBaseUrl"].endswith("/"),
        "gharchiveBaseUrl",
        "must be an https:// URL without a trailing slash, e.g. https://data.gharchive.org",
    )
    check(
        values["gharchiveBaselineDay"] == "" or _is_date(values["gharchiveBaselineDay"]),
        "gharchiveBaselineDay",
        "must be a date YYYY-MM-DD, or empty for three days before the first run",
    )
    check(1 <= values["gharchiveMaxHoursPerRun"] <= 744, "gharchiveMaxHoursPerRun", "must be 1 to 744 (a month)")
    check(
        FEWEST_FRESHNESS_HOURS <= values["gharchiveFreshnessHours"] <= MOST_FRESHNESS_HOURS,
        "gharchiveFreshnessHours",
        f"must be {FEWEST_FRESHNESS_HOURS} to {MOST_FRESHNESS_HOURS} hours (a CloudWatch alarm with hourly "
        "periods evaluates at most seven days: PutMetricAlarm's Period x EvaluationPeriods <= 604,800 s)",
    )
    check_run_timeout(values, check, "gharchiveRunTimeoutMinutes")
    check_quarantine_ratio(values, check, "gharchiveQuarantineAlarmRatio")


def parse(values: Mapping[str, Any]) -> GharchiveConfig:
    return GharchiveConfig(
        base_url=values["gharchiveBaseUrl"],
        baseline_day=values["gharchiveBaselineDay"],
        max_hours_per_run=values["gharchiveMaxHoursPerRun"],
        schedule=values["gharchiveSchedule"],
        freshness_hours=values["gharchiveFreshnessHours"],
        run_timeout_minutes=values["gharchiveRunTimeoutMinutes"],
        quarantine_alarm_ratio=ratio(values["gharchiveQuarantineAlarmRatio"]),
    )


@dataclass(frozen=True, kw_only=True)
class GharchiveArgs:
    settings: GharchiveConfig
    # Hours land in the raw zone, events in the processed zone; the ingest job runs on the shared Batch
    # compute and the named queries in the Athena workgroup.
    platform: Platform


def events_table(database: pulumi.Input[str], location: pulumi.Input[str]) -> CatalogTableArgs:
    """The Glue table over the job's output at `location`: the contract's columns, and partition projection
    on date=YYYY-MM-DD (GH Archive's first day to today, UTC) / hour=H (0..23, no leading zero)."""
    return CatalogTableArgs(
        database=database,
        name=EVENTS_TABLE,
        location=location,
        columns=GHARCHIVE_EVENT_COLUMNS,
        partition_keys=GHARCHIVE_EVENT_PARTITIONS,
        projection=(
            ("date", date_projection("yyyy-MM-dd", f"{FIRST_DAY},NOW", 1, "DAYS")),
            ("hour", integer_projection(0, 23)),
        ),
        description="GH Archive events, flattened and de-duplicated by the gharchive_events Glue job",
    )


class GharchivePipeline(pulumi.ComponentResource):
    """The GH Archive pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]
    jobs_table_name: pulumi.Output[str]
    runs_table_name: pulumi.Output[str]
    events_table_name: pulumi.Output[str]
    ingest_job_definition_name: pulumi.Output[str]
    transform_job_name: pulumi.Output[str]
    # The schedule's dead-letter queue: hourly starts that did not start a run.
    schedule_dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: GharchiveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Gharchive", name, None, opts)
        s, p, child = args.settings, args.platform, pulumi.ResourceOptions(parent=self)
        raw, processed, key = p.lake.raw, p.lake.processed, p.lake.key_arn
        jobs_table = StateTable(
            f"{name}-jobs",
            StateTableArgs(
                kms_key_arn=key,
                hash_key="job_name",
                attributes={"job_name": "S"},
                remove_data_on_destroy=p.remove_data_on_destroy,
            ),
            opts=child,
        )
        runs_table = StateTable(
            f"{name}-job-run-details",
            StateTableArgs(
                kms_key_arn=key,
                hash_key="job_name",
                range_key="run_id",
                attributes={"job_name": "S", "run_id": "S"},
                remove_data_on_destroy=p.remove_data_on_destroy,
            ),
            opts=child,
        )
        ingest_args = BatchJobArgs(
            pipeline="gharchive",
            account_id=p.account_id,
            region=p.region,
            compute=p.jobs.job_environment,
            command=["gharchive-ingest"],
            environment={
                "GHARCHIVE_BASE_URL": s.base_url,
                "GHARCHIVE_BASELINE_DAY": s.baseline_day,
                "GHARCHIVE_MAX_HOURS": str(s.max_hours_per_run),
                "GHARCHIVE_OUTPUT": raw.uri(RAW_PREFIX),
                "GHARCHIVE_JOBS_TABLE": jobs_table.table_name,
                "GHARCHIVE_RUNS_TABLE": runs_table.table_name,
            },
            job_role_statements=[
                raw.grant(["s3:AbortMultipartUpload", "s3:PutObject"], RAW_PREFIX),
                statement(
                    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    [jobs_table.table_arn, runs_table.table_arn],
                ),
                statement(["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"], [key]),
            ],
            assign_public_ip=p.assign_public_ip,
            # Streams each file from HTTP to S3: a quarter vCPU and the smallest memory suffice.
            vcpu=0.25,
            memory_mib=1024,
            timeout_minutes=60,
        )
        ingest = BatchJob(f"{name}-ingest", ingest_args, opts=child)
        transform_args = p.glue.job(
            "gharchive_events.py",
            pipeline="gharchive",
            arguments={
                "--input_path": raw.uri(RAW_PREFIX),
                "--output_path": processed.uri(EVENTS_PREFIX),
                "--quarantine_path": processed.uri(QUARANTINE_PREFIX),
                "--state_path": processed.uri(STATE_PREFIX),
                # The job records each run (RUNNING, then SUCCEEDED/FAILED with counts) where the ingest does.
                "--runs_table": runs_table.table_name,
            },
            role_statements=[
                # PutItem only: one row per run, its start then its outcome. The table's key (the
                # estate key) is already the Glue role's.
                statement(["dynamodb:PutItem"], [runs_table.table_arn]),
                raw.read(RAW_PREFIX),
                processed.write(EVENTS_PREFIX, QUARANTINE_PREFIX, STATE_PREFIX),
                list_buckets(raw.arn, processed.arn),
                *hadoop_directories(
                    reads=[(raw.arn, RAW_PREFIX)],
                    writes=[
                        (processed.arn, EVENTS_PREFIX),
                        (processed.arn, QUARANTINE_PREFIX),
                        (processed.arn, STATE_PREFIX),
                    ],
                ),
            ],
        )
        transform = GlueJob(f"{name}-events", transform_args, opts=child)
        events = CatalogTable(
            f"{name}-events-catalog", events_table(p.catalog.database_name, processed.uri(EVENTS_PREFIX)), opts=child
        )
        for query_name, query in named_queries(EVENTS_TABLE).items():
            aws.athena.NamedQuery(
                f"{name}-query-{query_name}",
                name=f"gharchive-{query_name}",
                description=query.description,
                # The table's database output: each query is created after the table it reads.
                database=events.database_name,
                workgroup=p.catalog.workgroup_name,
                query=query.sql,
                opts=child,
            )
        definition = pipeline_definition(
            "gharchive",
            [
                batch_job_step("IngestHours", "gharchive-ingest", p.jobs.job_queue_arn, ingest.job_definition_arn),
                glue_job_step("FlattenEvents", transform.job_name),
            ],
            alerts_topic_arn=p.alerts_topic_arn,
            notifications_topic_arn=p.notifications_topic_arn,
            timeout_seconds=run_timeout_seconds(
                s.run_timeout_minutes, batch_run_minutes(ingest_args) + glue_run_minutes(transform_args)
            ),
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=p.account_id,
                kms_key_arn=key,
                definition=definition,
                log_retention_days=p.log_retention_days,
                role_statements=[
                    *batch_job_statements(p.account_id, p.region, p.jobs.job_queue_arn, [ingest.job_definition_name]),
                    *glue_job_statements([transform.job_arn]),
                ],
            ),
            opts=child,
        )
        schedule = Schedule(
            f"{name}-schedule",
            ScheduleArgs(
                account_id=p.account_id,
                kms_key_arn=key,
                expression=s.schedule,
                timezone="UTC",
                state_machine_arn=machine.state_machine_arn,
                state_machine_kms_key_arn=key,
                input=json.dumps({}),
            ),
            opts=child,
        )
        self.state_machine_arn = machine.state_machine_arn
        self.jobs_table_name = jobs_table.table_name
        self.runs_table_name = runs_table.table_name
        self.events_table_name = events.table_name
        self.ingest_job_definition_name = ingest.job_definition_name
        self.transform_job_name = transform.job_name
        self.schedule_dead_letter_queue_name = schedule.dead_letter_queue_name
        self.register_outputs(
            {
                "ingest_job_definition_name": self.ingest_job_definition_name,
                "transform_job_name": self.transform_job_name,
                "schedule_dead_letter_queue_name": self.schedule_dead_letter_queue_name,
                "state_machine_arn": self.state_machine_arn,
                "jobs_table_name": self.jobs_table_name,
                "runs_table_name": self.runs_table_name,
                "events_table_name": self.events_table_name,
            }
        )


def watch(component: GharchivePipeline, settings: GharchiveConfig) -> PipelineWatch:
    """The state machine, the schedule's dead-letter queue, both jobs, the transform's quarantine, and
    freshness: the transform's Files (new hour files loaded) summed per hour."""
    return PipelineWatch(
        pipeline="gharchive",
        state_machine_arns=(component.state_machine_arn,),
        dead_letter_queues=(DeadLetterQueue.of_schedule(component.schedule_dead_letter_queue_name, "gharchive"),),
        glue_job_names=(component.transform_job_name,),
        batch_job_definition_names=(component.ingest_job_definition_name,),
        quarantine_jobs=("gharchive_events",),
        quarantine_ratio_threshold=settings.quarantine_alarm_ratio,
        freshness=Freshness(job="gharchive_events", metric=FILES, hours=settings.freshness_hours),
    )


PIPELINE: Pipeline[GharchiveConfig, GharchivePipeline] = Pipeline(
    name="gharchive",
    config=ConfigSection(settings=SETTINGS, validate=validate, parse=parse),
    component=lambda s, p, opts: GharchivePipeline("gharchive", GharchiveArgs(settings=s, platform=p), opts),
    outputs=lambda c, s, p: {
        "gharchive_raw": p.lake.raw.uri(RAW_PREFIX),
        "gharchive_state_machine_arn": c.state_machine_arn,
        "gharchive_jobs_table": c.jobs_table_name,
        "gharchive_runs_table": c.runs_table_name,
        "gharchive_events_table": c.events_table_name,  # in glue_database, for Athena
    },
    watch=watch,
    needs_batch=True,
)
