"""Seed 000, render-log telemetry: CSV under the raw bucket's prefix -> EventBridge -> Step Functions
-> Batch (Fargate) `render-summary` -> MERGE into Redshift `performance_summary` -> SNS.

A Step Functions `submitJob.sync` task sits between EventBridge and Batch because it gives what a
direct Batch target cannot: the S3 key passed as a typed job parameter, a wait for the job's real
outcome, and a success or failure notification naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.compute import BatchCompute, BatchJob, BatchJobArgs
from components.config import RenderLogsConfig
from components.iam import list_buckets, objects, statement
from components.orchestration import (
    ObjectCreatedRule,
    ObjectCreatedRuleArgs,
    StateMachine,
    StateMachineArgs,
    batch_job_statements,
    batch_job_step,
    pipeline_definition,
)
from components.storage import s3_uri
from components.warehouse import data_api_statements
from components.warehouse_access import db_roles_tag, loader_role

QUARANTINE_PREFIX = "quarantine/render-logs"
WAREHOUSE_ROLE = loader_role("render-logs")


@dataclass(frozen=True, kw_only=True)
class RenderLogsArgs:
    settings: RenderLogsConfig
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    raw_bucket: pulumi.Input[str]
    raw_bucket_arn: pulumi.Input[str]
    # Rejected rows land in the processed bucket under quarantine/render-logs/.
    processed_bucket: pulumi.Input[str]
    processed_bucket_arn: pulumi.Input[str]
    workgroup_name: pulumi.Input[str]
    workgroup_arn: pulumi.Input[str]
    database: str
    topic_arn: pulumi.Input[str]
    # The estate's shared Batch image, queue and logs.
    batch: BatchCompute
    assign_public_ip: bool
    log_retention_days: int


class RenderLogsPipeline(pulumi.ComponentResource):
    """The render-log pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]
    job_definition_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RenderLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:RenderLogs", name, None, opts)
        s = args.settings
        job = BatchJob(
            f"{name}-job",
            BatchJobArgs(
                account_id=args.account_id,
                region=args.region,
                compute=args.batch,
                command=["render-summary", "--input", "Ref::input"],
                environment={
                    "RENDER_SUMMARY_QUARANTINE": s3_uri(args.processed_bucket, QUARANTINE_PREFIX),
                    "WAREHOUSE_BACKEND": "redshift-data",
                    "REDSHIFT_WORKGROUP": args.workgroup_name,
                    "REDSHIFT_DATABASE": args.database,
                    "SUMMARY_TABLE": s.table,
                },
                job_role_statements=[
                    statement(["s3:GetObject"], objects(args.raw_bucket_arn, s.prefix)),
                    # An input that is gone is NoSuchKey (bad input, no retry) only to a caller that may
                    # list the bucket; without it S3 answers AccessDenied.
                    list_buckets(args.raw_bucket_arn),
                    statement(
                        # The quarantine file is a multipart upload: a failed run aborts it.
                        ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
                        objects(args.processed_bucket_arn, f"{QUARANTINE_PREFIX}/"),
                    ),
                    statement(["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                    *data_api_statements(args.workgroup_arn),
                ],
                # Signs in to Redshift with this pipeline's database role (components/warehouse_access.py).
                role_tags=db_roles_tag(WAREHOUSE_ROLE),
                assign_public_ip=args.assign_public_ip,
                vcpu=s.vcpu,
                memory_mib=s.memory_mib,
                timeout_minutes=s.timeout_minutes,
                retry_attempts=s.retry_attempts,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        definition = pipeline_definition(
            "render-logs",
            [
                # The job retries its own transient failures (Batch retry strategy).
                batch_job_step(
                    "SummarizeRenderLogs",
                    "render-summary",
                    args.batch.job_queue_arn,
                    job.job_definition_arn,
                    {"input.$": "States.Format('s3://{}/{}', $.detail.bucket.name, $.detail.object.key)"},
                )
            ],
            args.topic_arn,
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=args.account_id,
                kms_key_arn=args.kms_key_arn,
                definition=definition,
                topic_arn=args.topic_arn,
                log_retention_days=args.log_retention_days,
                role_statements=batch_job_statements(
                    args.account_id, args.region, args.batch.job_queue_arn, [job.job_definition_name]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        ObjectCreatedRule(
            f"{name}-trigger",
            ObjectCreatedRuleArgs(
                account_id=args.account_id,
                kms_key_arn=args.kms_key_arn,
                bucket_name=args.raw_bucket,
                key_prefix=s.prefix,
                key_suffixes=(".csv",),
                target_arn=machine.state_machine_arn,
                target_kms_key_arn=args.kms_key_arn,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.state_machine_arn = machine.state_machine_arn
        self.job_definition_arn = job.job_definition_arn
        self.register_outputs(
            {"state_machine_arn": self.state_machine_arn, "job_definition_arn": self.job_definition_arn}
        )
