"""Render-log telemetry: CSV under the raw bucket's prefix -> EventBridge -> Step Functions
-> Batch (Fargate) `render-summary` -> Parquet stage in the processed zone -> COPY + MERGE into Redshift
`performance_summary_by_file` and `performance_summary` -> SNS.

A Step Functions `submitJob.sync` task sits between EventBridge and Batch because it gives what a
direct Batch target cannot: the S3 key passed as a typed job parameter, a wait for the job's real
outcome, and a success or failure notification naming the file. The machine also takes
`{"input": "s3://bucket/key"}`, so an operator reprocesses a file with one `start-execution`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.aws_limits import BATCH_RETRY_ATTEMPTS, FARGATE_MEMORY_MIB
from components.compute import BatchJob, BatchJobArgs
from components.config import (
    SQL_IDENTIFIER,
    Check,
    ConfigSection,
    Setting,
    check_quarantine_ratio,
    check_run_timeout,
    check_upload_prefix,
    quarantine_ratio_setting,
    ratio,
    run_timeout_seconds,
    run_timeout_setting,
)
from components.iam import list_buckets, statement
from components.monitoring import DeadLetterQueue, PipelineWatch
from components.orchestration import (
    ObjectCreatedRule,
    ObjectCreatedRuleArgs,
    StateMachine,
    StateMachineArgs,
    batch_job_statements,
    batch_job_step,
    pipeline_definition,
)
from components.warehouse import data_api_statements
from components.warehouse_access import Loader, db_roles_tag, loader_role
from pipelines.platform import Pipeline, Platform, batch_run_minutes

QUARANTINE_PREFIX = "quarantine/render-logs"
# The job's Parquet stage for Redshift's COPY (deleted after each load); the copy role reads the processed zone.
STAGE_PREFIX = "stage/render-logs"
# `<table>_by_file_stage` must fit Redshift's 127-byte identifiers (render_summary.warehouse.MAX_TABLE_BYTES).
MAX_TABLE_BYTES = 127 - len("_by_file") - len("_stage")
WAREHOUSE_ROLE = loader_role("render-logs")


@dataclass(frozen=True)
class RenderLogsConfig:
    prefix: str
    vcpu: float
    memory_mib: int
    timeout_minutes: int
    retry_attempts: int
    table: str
    # The state machine's TimeoutSeconds setting in minutes (0: derived from the job's attempts).
    run_timeout_minutes: int
    quarantine_alarm_ratio: float


SETTINGS = (
    Setting(
        "renderLogsPrefix",
        "string",
        "render-logs/",
        "Key prefix in the raw bucket whose new CSV objects start the render-log pipeline",
    ),
    Setting("renderLogsVcpu", "string", "1", "vCPUs of the render-log job (Fargate - 0.25, 0.5, 1, 2, 4, 8, 16)"),
    Setting(
        "renderLogsMemoryMib",
        "integer",
        2048,
        "Memory of the render-log job in MiB (a value Fargate allows for the vCPU setting)",
    ),
    Setting("renderLogsTimeoutMinutes", "integer", 60, "Attempt timeout of the render-log job"),
    Setting(
        "renderLogsRetryAttempts",
        "integer",
        3,
        "Batch attempts for transient failures (exit code 4, Spot interruption); bad input is never retried",
    ),
    Setting(
        "renderLogsTable",
        "string",
        "performance_summary",
        "Warehouse table of per-device totals over every file loaded (schema public); each file's own rows "
        "are in <table>_by_file",
    ),
    run_timeout_setting("renderLogs", "render-logs"),
    quarantine_ratio_setting("renderLogs", "render-logs"),
)


def _vcpu(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


def _fmt(vcpu: float) -> str:
    return f"{vcpu:g}"


def validate(values: Mapping[str, Any], check: Check) -> None:
    check_upload_prefix(values, check, "renderLogsPrefix", "render-logs/")
    vcpu = _vcpu(values["renderLogsVcpu"])
    check(vcpu in FARGATE_MEMORY_MIB, "renderLogsVcpu", f"Fargate allows {', '.join(map(_fmt, FARGATE_MEMORY_MIB))}")
    if vcpu in FARGATE_MEMORY_MIB:
        allowed = FARGATE_MEMORY_MIB[vcpu]
        check(
            values["renderLogsMemoryMib"] in allowed,
            "renderLogsMemoryMib",
            f"with {_fmt(vcpu)} vCPU Fargate allows {allowed[0]} to {allowed[-1]} MiB in the steps "
            f"{', '.join(map(str, allowed))}",
        )
    check(1 <= values["renderLogsTimeoutMinutes"] <= 1440, "renderLogsTimeoutMinutes", "must be 1 to 1440")
    fewest, most = BATCH_RETRY_ATTEMPTS
    check(
        fewest <= values["renderLogsRetryAttempts"] <= most,
        "renderLogsRetryAttempts",
        f"Batch allows {fewest} to {most} attempts",
    )
    check(
        SQL_IDENTIFIER.fullmatch(values["renderLogsTable"]) is not None,
        "renderLogsTable",
        "must be a lower-case SQL identifier",
    )
    check(
        len(values["renderLogsTable"]) <= MAX_TABLE_BYTES,
        "renderLogsTable",
        f"must be at most {MAX_TABLE_BYTES} characters (<table>_by_file_stage must fit Redshift's 127)",
    )
    check_run_timeout(values, check, "renderLogsRunTimeoutMinutes")
    check_quarantine_ratio(values, check, "renderLogsQuarantineAlarmRatio")


def parse(values: Mapping[str, Any]) -> RenderLogsConfig:
    return RenderLogsConfig(
        prefix=values["renderLogsPrefix"],
        vcpu=_vcpu(values["renderLogsVcpu"]),
        memory_mib=values["renderLogsMemoryMib"],
        timeout_minutes=values["renderLogsTimeoutMinutes"],
        retry_attempts=values["renderLogsRetryAttempts"],
        table=values["renderLogsTable"],
        run_timeout_minutes=values["renderLogsRunTimeoutMinutes"],
        quarantine_alarm_ratio=ratio(values["renderLogsQuarantineAlarmRatio"]),
    )


@dataclass(frozen=True, kw_only=True)
class RenderLogsArgs:
    settings: RenderLogsConfig
    # Reads uploads from the raw zone; rejected rows land in the processed zone under quarantine/render-logs/.
    platform: Platform


class RenderLogsPipeline(pulumi.ComponentResource):
    """The render-log pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]
    job_definition_arn: pulumi.Output[str]
    job_definition_name: pulumi.Output[str]
    # The trigger's dead-letter queue: S3 events that did not start a run.
    trigger_dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: RenderLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:RenderLogs", name, None, opts)
        s, p = args.settings, args.platform
        raw, processed = p.lake.raw, p.lake.processed
        job_args = BatchJobArgs(
            pipeline="render-logs",
            account_id=p.account_id,
            region=p.region,
            compute=p.jobs.job_environment,
            command=["render-summary", "--input", "Ref::input"],
            environment={
                "RENDER_SUMMARY_QUARANTINE": processed.uri(QUARANTINE_PREFIX),
                "WAREHOUSE_BACKEND": "redshift-data",
                "REDSHIFT_WORKGROUP": p.warehouse.workgroup_name,
                "REDSHIFT_DATABASE": p.warehouse.database,
                "SUMMARY_TABLE": s.table,
                "RENDER_SUMMARY_STAGE": processed.uri(STAGE_PREFIX),
                "REDSHIFT_COPY_ROLE_ARN": p.warehouse.copy_role_arn,
            },
            job_role_statements=[
                raw.read(s.prefix),
                # An input that is gone is NoSuchKey (bad input, no retry) only to a caller that may
                # list the bucket; without it S3 answers AccessDenied.
                list_buckets(raw.arn),
                # The quarantine file and the Parquet stage are multipart uploads: a failed run aborts them;
                # the stage is deleted after its COPY.
                processed.grant(
                    ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
                    f"{QUARANTINE_PREFIX}/",
                    f"{STAGE_PREFIX}/",
                ),
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [p.lake.key_arn]),
                *data_api_statements(p.warehouse.workgroup_arn),
            ],
            # Signs in to Redshift with this pipeline's database role (components/warehouse_access.py).
            role_tags=db_roles_tag(WAREHOUSE_ROLE),
            assign_public_ip=p.assign_public_ip,
            vcpu=s.vcpu,
            memory_mib=s.memory_mib,
            timeout_minutes=s.timeout_minutes,
            retry_attempts=s.retry_attempts,
        )
        job = BatchJob(f"{name}-job", job_args, opts=pulumi.ResourceOptions(parent=self))
        definition = with_input_choice(
            pipeline_definition(
                "render-logs",
                [
                    # The job retries its own transient failures (Batch retry strategy).
                    batch_job_step(
                        "SummarizeRenderLogs",
                        "render-summary",
                        p.jobs.job_queue_arn,
                        job.job_definition_arn,
                        {"input.$": "$.source.input"},
                    )
                ],
                alerts_topic_arn=p.alerts_topic_arn,
                notifications_topic_arn=p.notifications_topic_arn,
                # The job retries its own transient failures: every attempt may run its full timeout.
                timeout_seconds=run_timeout_seconds(s.run_timeout_minutes, batch_run_minutes(job_args)),
            )
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                definition=definition,
                log_retention_days=p.log_retention_days,
                role_statements=batch_job_statements(
                    p.account_id, p.region, p.jobs.job_queue_arn, [job.job_definition_name]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        trigger = ObjectCreatedRule(
            f"{name}-trigger",
            ObjectCreatedRuleArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                bucket_name=raw.name,
                key_prefix=s.prefix,
                key_suffixes=(".csv",),
                target_arn=machine.state_machine_arn,
                target_kms_key_arn=p.lake.key_arn,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.state_machine_arn = machine.state_machine_arn
        self.job_definition_arn = job.job_definition_arn
        self.job_definition_name = job.job_definition_name
        self.trigger_dead_letter_queue_name = trigger.dead_letter_queue_name
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "job_definition_arn": self.job_definition_arn,
                "job_definition_name": self.job_definition_name,
                "trigger_dead_letter_queue_name": self.trigger_dead_letter_queue_name,
            }
        )


def with_input_choice(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition starting with a Choice on the execution input's shape, which puts the file's URI at
    `$.source.input`: `{"input": "s3://bucket/key"}` (a reprocessing request) or an EventBridge S3
    "Object Created" event. A Choice on a path that may be missing raises States.Runtime, which no Catch
    handles, so the first Choice tests only IsPresent and the second compares the path the first found;
    anything else fails the execution as BadInput."""
    first = definition["StartAt"]
    states = {
        # Only IsPresent tests here; values are compared once a rule has established their path exists.
        "ChooseInput": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.input", "IsPresent": True, "Next": "CheckInputUri"},
                {
                    "And": [
                        {"Variable": "$.detail.bucket.name", "IsPresent": True},
                        {"Variable": "$.detail.object.key", "IsPresent": True},
                    ],
                    "Next": "FromS3Event",
                },
            ],
            "Default": "UnknownInput",
        },
        "CheckInputUri": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.input", "IsString": True},
                        {"Variable": "$.input", "StringMatches": "s3://*/*"},
                    ],
                    "Next": "FromInput",
                }
            ],
            "Default": "UnknownInput",
        },
        "FromInput": {
            "Type": "Pass",
            "Parameters": {"input.$": "$.input"},
            "ResultPath": "$.source",
            "Next": first,
        },
        "FromS3Event": {
            "Type": "Pass",
            "Parameters": {"input.$": "States.Format('s3://{}/{}', $.detail.bucket.name, $.detail.object.key)"},
            "ResultPath": "$.source",
            "Next": first,
        },
        "UnknownInput": {
            "Type": "Fail",
            "Error": "BadInput",
            "Cause": 'expected {"input": "s3://bucket/key"} or an S3 Object Created event',
        },
    }
    return {**definition, "StartAt": "ChooseInput", "States": {**states, **definition["States"]}}


def watch(component: RenderLogsPipeline, settings: RenderLogsConfig) -> PipelineWatch:
    """The state machine, the trigger's dead-letter queue, the job definition and render_summary's quarantine."""
    return PipelineWatch(
        pipeline="render-logs",
        state_machine_arns=(component.state_machine_arn,),
        dead_letter_queues=(
            DeadLetterQueue(
                name=component.trigger_dead_letter_queue_name,
                holds=f"S3 upload events under {settings.prefix} that did not start a render-logs run",
            ),
        ),
        batch_job_definition_names=(component.job_definition_name,),
        quarantine_jobs=("render_summary",),
        quarantine_ratio_threshold=settings.quarantine_alarm_ratio,
    )


PIPELINE: Pipeline[RenderLogsConfig, RenderLogsPipeline] = Pipeline(
    name="render-logs",
    config=ConfigSection(settings=SETTINGS, validate=validate, parse=parse, upload_prefix_key="renderLogsPrefix"),
    component=lambda s, p, opts: RenderLogsPipeline("render-logs", RenderLogsArgs(settings=s, platform=p), opts),
    outputs=lambda c, s, p: {
        "render_logs_upload_to": p.lake.raw.uri(s.prefix),
        "render_logs_state_machine_arn": c.state_machine_arn,
        "render_logs_table": s.table,  # schema public
    },
    watch=watch,
    needs_batch=True,
    warehouse_loader=lambda s: Loader(WAREHOUSE_ROLE, "public"),
)
