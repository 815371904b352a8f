"""Seed 003, GH Archive ELT. Every hour EventBridge Scheduler starts a Step Functions state machine:

  1. `gharchive-ingest` (Batch, the estate's jobs image) downloads every published hour after the
     bookmark in DynamoDB `jobs` to s3://<raw>/gharchive/raw/date=YYYY-MM-DD/, unchanged, logging the
     run in `job_run_details` (conditional writes: two runs never ingest the same hour);
  2. the Glue job `gharchive_events` flattens, de-duplicates and drops columns of every new hour
     file into Snappy Parquet (≤ 10,000 records per file) at s3://<processed>/gharchive/events/
     date=YYYY-MM-DD/hour=H/, replacing that hour on a rerun;
  3. a crawler catalogs the events table, which Athena named queries in the estate workgroup use.
Success and failure are announced on the topic.

Why Batch and not a Glue Python shell job: Python shell is Python 3.9 only and AWS now recommends
migrating off it; the jobs image already runs Python 3.11 on Fargate with exit-code-aware retries,
and the same CLI runs here as a real process in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.compute import BatchCompute, BatchJob, BatchJobArgs, GlueJob
from components.config import GharchiveConfig
from components.iam import hadoop_directories, list_buckets, objects, statement
from components.orchestration import (
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    batch_job_statements,
    batch_job_step,
    crawl_step,
    glue_job_statements,
    glue_job_step,
    pipeline_definition,
)
from components.storage import StateTable, StateTableArgs, s3_uri
from components.warehouse import Crawler
from pipelines.gharchive_queries import named_queries
from pipelines.glue_estate import GlueEstate

RAW_PREFIX = "gharchive/raw/"
EVENTS_PREFIX = "gharchive/events/"
STATE_PREFIX = "gharchive/state/"
QUARANTINE_PREFIX = "quarantine/gharchive/"
TABLE_PREFIX = "gharchive_"
EVENTS_TABLE = "gharchive_events"  # the crawler names the table after the folder: prefix + "events"


@dataclass(frozen=True, kw_only=True)
class GharchiveArgs:
    estate: GlueEstate
    # The estate's shared Batch image, queue and logs.
    batch: BatchCompute
    settings: GharchiveConfig
    athena_workgroup: pulumi.Input[str]
    assign_public_ip: bool
    log_retention_days: int
    remove_data_on_destroy: bool


class GharchivePipeline(pulumi.ComponentResource):
    """The GH Archive pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]
    jobs_table_name: pulumi.Output[str]
    runs_table_name: pulumi.Output[str]

    def __init__(self, name: str, args: GharchiveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Gharchive", name, None, opts)
        s, e, child = args.settings, args.estate, pulumi.ResourceOptions(parent=self)
        jobs_table = StateTable(
            f"{name}-jobs",
            StateTableArgs(
                kms_key_arn=e.kms_key_arn,
                hash_key="job_name",
                attributes={"job_name": "S"},
                remove_data_on_destroy=args.remove_data_on_destroy,
            ),
            opts=child,
        )
        runs_table = StateTable(
            f"{name}-job-run-details",
            StateTableArgs(
                kms_key_arn=e.kms_key_arn,
                hash_key="job_name",
                range_key="run_id",
                attributes={"job_name": "S", "run_id": "S"},
                remove_data_on_destroy=args.remove_data_on_destroy,
            ),
            opts=child,
        )
        ingest = BatchJob(
            f"{name}-ingest",
            BatchJobArgs(
                account_id=e.account_id,
                region=e.region,
                compute=args.batch,
                command=["gharchive-ingest"],
                environment={
                    "GHARCHIVE_BASE_URL": s.base_url,
                    "GHARCHIVE_BASELINE_DAY": s.baseline_day,
                    "GHARCHIVE_MAX_HOURS": str(s.max_hours_per_run),
                    "GHARCHIVE_OUTPUT": s3_uri(e.raw_bucket, RAW_PREFIX),
                    "GHARCHIVE_JOBS_TABLE": jobs_table.table_name,
                    "GHARCHIVE_RUNS_TABLE": runs_table.table_name,
                },
                job_role_statements=[
                    statement(["s3:AbortMultipartUpload", "s3:PutObject"], objects(e.raw_bucket_arn, RAW_PREFIX)),
                    statement(
                        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                        [jobs_table.table_arn, runs_table.table_arn],
                    ),
                    statement(["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"], [e.kms_key_arn]),
                ],
                assign_public_ip=args.assign_public_ip,
                # Streams each file from HTTP to S3: a quarter vCPU and the smallest memory suffice.
                vcpu=0.25,
                memory_mib=1024,
                timeout_minutes=60,
            ),
            opts=child,
        )
        transform = GlueJob(
            f"{name}-events",
            e.job(
                "gharchive_events.py",
                arguments={
                    "--input_path": s3_uri(e.raw_bucket, RAW_PREFIX),
                    "--output_path": s3_uri(e.processed_bucket, EVENTS_PREFIX),
                    "--quarantine_path": s3_uri(e.processed_bucket, QUARANTINE_PREFIX),
                    "--state_path": s3_uri(e.processed_bucket, STATE_PREFIX),
                },
                role_statements=[
                    statement(["s3:GetObject"], objects(e.raw_bucket_arn, RAW_PREFIX)),
                    statement(
                        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                        objects(e.processed_bucket_arn, EVENTS_PREFIX, QUARANTINE_PREFIX, STATE_PREFIX),
                    ),
                    list_buckets(e.raw_bucket_arn, e.processed_bucket_arn),
                    *hadoop_directories(
                        reads=[(e.raw_bucket_arn, RAW_PREFIX)],
                        writes=[
                            (e.processed_bucket_arn, EVENTS_PREFIX),
                            (e.processed_bucket_arn, QUARANTINE_PREFIX),
                            (e.processed_bucket_arn, STATE_PREFIX),
                        ],
                    ),
                ],
            ),
            opts=child,
        )
        crawler = Crawler(
            f"{name}-crawler",
            e.crawler(e.processed_bucket, e.processed_bucket_arn, EVENTS_PREFIX, TABLE_PREFIX),
            opts=child,
        )
        for query_name, query in named_queries(EVENTS_TABLE).items():
            aws.athena.NamedQuery(
                f"{name}-query-{query_name}",
                name=f"gharchive-{query_name}",
                description=query.description,
                database=e.catalog_database,
                workgroup=args.athena_workgroup,
                query=query.sql,
                opts=child,
            )
        definition = pipeline_definition(
            "gharchive",
            [
                batch_job_step("IngestHours", "gharchive-ingest", args.batch.job_queue_arn, ingest.job_definition_arn),
                glue_job_step("FlattenEvents", transform.job_name),
                crawl_step("CatalogEvents", crawler.crawler_name),
            ],
            e.topic_arn,
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                definition=definition,
                topic_arn=e.topic_arn,
                log_retention_days=args.log_retention_days,
                role_statements=[
                    *batch_job_statements(
                        e.account_id, e.region, args.batch.job_queue_arn, [ingest.job_definition_name]
                    ),
                    *glue_job_statements([transform.job_arn]),
                    statement(["glue:GetCrawler", "glue:StartCrawler"], [crawler.crawler_arn]),
                ],
            ),
            opts=child,
        )
        Schedule(
            f"{name}-schedule",
            ScheduleArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                expression=s.schedule,
                timezone="UTC",
                state_machine_arn=machine.state_machine_arn,
                state_machine_kms_key_arn=e.kms_key_arn,
                input=json.dumps({}),
            ),
            opts=child,
        )
        self.state_machine_arn = machine.state_machine_arn
        self.jobs_table_name = jobs_table.table_name
        self.runs_table_name = runs_table.table_name
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "jobs_table_name": self.jobs_table_name,
                "runs_table_name": self.runs_table_name,
            }
        )
