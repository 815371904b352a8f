"""Seed 000, render-log telemetry: CSV under the raw bucket's prefix -> EventBridge -> Step Functions
-> Batch (Fargate) `render-summary` -> MERGE into Redshift `performance_summary` -> SNS.

A Step Functions `submitJob.sync` task sits between EventBridge and Batch because it gives what a
direct Batch target cannot: the S3 key passed as a typed job parameter, a wait for the job's real
outcome, and a success or failure notification naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components.compute import BatchCompute, BatchComputeArgs
from components.config import RenderLogsConfig
from components.iam import objects, statement
from components.orchestration import (
    ObjectCreatedRule,
    ObjectCreatedRuleArgs,
    StateMachine,
    StateMachineArgs,
    TaskStep,
    pipeline_definition,
)
from components.storage import s3_uri
from components.warehouse import data_api_statements

BATCH_IMAGE = Path(__file__).resolve().parent.parent / "batch_image"
QUARANTINE_PREFIX = "quarantine/render-logs"


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
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    assign_public_ip: bool
    max_vcpus: int
    use_spot: bool
    log_retention_days: int
    remove_data_on_destroy: bool


class RenderLogsPipeline(pulumi.ComponentResource):
    """The render-log pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]
    job_queue_arn: pulumi.Output[str]
    job_definition_arn: pulumi.Output[str]
    image_uri: pulumi.Output[str]

    def __init__(self, name: str, args: RenderLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:RenderLogs", name, None, opts)
        s = args.settings
        account, region = pulumi.Output.from_input(args.account_id), pulumi.Output.from_input(args.region)
        batch = BatchCompute(
            f"{name}-batch",
            BatchComputeArgs(
                account_id=args.account_id,
                region=args.region,
                kms_key_arn=args.kms_key_arn,
                image_context=str(BATCH_IMAGE),
                command=["--input", "Ref::input"],
                environment={
                    "RENDER_SUMMARY_QUARANTINE": s3_uri(args.processed_bucket, QUARANTINE_PREFIX),
                    "WAREHOUSE_BACKEND": "redshift-data",
                    "REDSHIFT_WORKGROUP": args.workgroup_name,
                    "REDSHIFT_DATABASE": args.database,
                    "SUMMARY_TABLE": s.table,
                },
                job_role_statements=[
                    statement(["s3:GetObject"], objects(args.raw_bucket_arn, s.prefix)),
                    statement(
                        ["s3:DeleteObject", "s3:PutObject"],
                        objects(args.processed_bucket_arn, f"{QUARANTINE_PREFIX}/"),
                    ),
                    statement(["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                    *data_api_statements(args.workgroup_arn),
                ],
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
                assign_public_ip=args.assign_public_ip,
                vcpu=s.vcpu,
                memory_mib=s.memory_mib,
                timeout_minutes=s.timeout_minutes,
                retry_attempts=s.retry_attempts,
                max_vcpus=args.max_vcpus,
                use_spot=args.use_spot,
                log_retention_days=args.log_retention_days,
                remove_data_on_destroy=args.remove_data_on_destroy,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        jobs = pulumi.Output.concat("arn:aws:batch:", region, ":", account, ":job/*")
        job_definition_prefix = pulumi.Output.concat(
            "arn:aws:batch:", region, ":", account, ":job-definition/", batch.job_definition_name
        )
        definition = pipeline_definition(
            "render-logs",
            [
                TaskStep(
                    name="SummarizeRenderLogs",
                    resource="arn:aws:states:::batch:submitJob.sync",
                    parameters={
                        "JobName": "render-summary",
                        "JobQueue": batch.job_queue_arn,
                        "JobDefinition": batch.job_definition_arn,
                        "Parameters": {
                            "input.$": "States.Format('s3://{}/{}', $.detail.bucket.name, $.detail.object.key)"
                        },
                        "PropagateTags": True,
                    },
                    # The job retries its own transient failures (Batch retry strategy); here only
                    # Batch API throttling and service errors are retried.
                    retry_on=("Batch.AWSBatchException", "Batch.TooManyRequestsException", "Batch.ServerException"),
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
                role_statements=[
                    # SubmitJob is authorised on the queue, the definition (any revision) and the new job.
                    statement(
                        ["batch:SubmitJob"],
                        [batch.job_queue_arn, pulumi.Output.concat(job_definition_prefix, ":*"), jobs],
                    ),
                    statement(["batch:TagResource", "batch:TerminateJob"], [jobs]),
                    statement(["batch:DescribeJobs"], ["*"]),
                    # submitJob.sync waits through this managed rule.
                    statement(
                        ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
                        [
                            pulumi.Output.concat(
                                "arn:aws:events:", region, ":", account, ":rule/StepFunctionsGetEventsForBatchJobsRule"
                            )
                        ],
                    ),
                ],
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
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.state_machine_arn = machine.state_machine_arn
        self.job_queue_arn = batch.job_queue_arn
        self.job_definition_arn = batch.job_definition_arn
        self.image_uri = batch.image_uri
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "job_queue_arn": self.job_queue_arn,
                "job_definition_arn": self.job_definition_arn,
                "image_uri": self.image_uri,
            }
        )
