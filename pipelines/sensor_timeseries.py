"""Seed 002, sensor time series: the ingestion CLI (ingestion/sensor_upload.py) uploads measurement
CSVs to the raw bucket; on the 1st of each month EventBridge Scheduler starts a Step Functions state
machine that runs the Glue job `sensor_timeseries` for the previous month (or the month given in the
execution input, for backfills) and announces success or failure on the topic.

The job rebuilds one month's partition from all raw intervals, so a rerun replaces that month and
never duplicates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi

from components.compute import GlueJob
from components.config import SensorConfig
from components.iam import hadoop_directories, list_buckets, objects, statement
from components.orchestration import (
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    glue_job_statements,
    glue_job_step,
    pipeline_definition,
)
from components.storage import s3_uri
from pipelines.glue_estate import GlueEstate

OUTPUT_PREFIX = "sensor/timeseries/"
QUARANTINE_PREFIX = "quarantine/sensor/"


@dataclass(frozen=True, kw_only=True)
class SensorTimeseriesArgs:
    estate: GlueEstate
    settings: SensorConfig
    log_retention_days: int


class SensorTimeseriesPipeline(pulumi.ComponentResource):
    """The sensor time-series pipeline end to end (see module docstring)."""

    job_name: pulumi.Output[str]
    state_machine_arn: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SensorTimeseriesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:SensorTimeseries", name, None, opts)
        s, e, child = args.settings, args.estate, pulumi.ResourceOptions(parent=self)
        job = GlueJob(
            f"{name}-job",
            e.job(
                "sensor_timeseries.py",
                arguments={
                    "--input_path": s3_uri(e.raw_bucket, s.input_prefix),
                    "--output_path": s3_uri(e.processed_bucket, OUTPUT_PREFIX),
                    "--quarantine_path": s3_uri(e.processed_bucket, QUARANTINE_PREFIX),
                    "--frequency": s.frequency,
                    "--month": "previous",
                },
                role_statements=[
                    statement(["s3:GetObject"], objects(e.raw_bucket_arn, s.input_prefix)),
                    statement(
                        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                        objects(e.processed_bucket_arn, OUTPUT_PREFIX, QUARANTINE_PREFIX),
                    ),
                    list_buckets(e.raw_bucket_arn, e.processed_bucket_arn),
                    *hadoop_directories(
                        reads=[(e.raw_bucket_arn, s.input_prefix)],
                        writes=[(e.processed_bucket_arn, OUTPUT_PREFIX), (e.processed_bucket_arn, QUARANTINE_PREFIX)],
                    ),
                ],
            ),
            opts=child,
        )
        definition = pipeline_definition(
            "sensor-timeseries",
            [
                glue_job_step("BuildMonthlyTimeSeries", job.job_name, {"--month.$": "$.month"}),
            ],
            e.topic_arn,
            input_defaults={"month": "previous"},
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                definition=definition,
                topic_arn=e.topic_arn,
                log_retention_days=args.log_retention_days,
                role_statements=glue_job_statements([job.job_arn]),
            ),
            opts=child,
        )
        schedule = Schedule(
            f"{name}-schedule",
            ScheduleArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                expression=s.schedule,
                timezone=s.schedule_timezone,
                state_machine_arn=machine.state_machine_arn,
                state_machine_kms_key_arn=e.kms_key_arn,
                input=json.dumps({"month": "previous"}),
            ),
            opts=child,
        )
        self.job_name = job.job_name
        self.state_machine_arn = machine.state_machine_arn
        self.schedule_arn = schedule.schedule_arn
        self.register_outputs(
            {
                "job_name": self.job_name,
                "state_machine_arn": self.state_machine_arn,
                "schedule_arn": self.schedule_arn,
            }
        )
