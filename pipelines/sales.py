"""Seed 001, sales ETL: CSV under the raw bucket's sales input prefix -> EventBridge -> Glue workflow:
crawl input -> `sales_csv_to_parquet` -> crawl Parquet -> `sales_load_warehouse` (MERGE into Redshift).
Every crawler and job announces its success or failure on the topic through EventBridge.

The seed's Lambda only started the workflow; an EventBridge rule now notifies the workflow's EVENT
trigger directly. A workflow started by events sees event IDs, not object keys, so the jobs work
from small state markers in S3 instead: each run converts every new or changed CSV and loads every
converted file not yet loaded. Batched, duplicated or missed events therefore cannot lose or
double-load a file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from components.compute import GlueJob
from components.config import SalesConfig
from components.iam import hadoop_directories, list_buckets, objects, statement
from components.orchestration import (
    GlueStateNotifications,
    GlueStateNotificationsArgs,
    GlueWorkflow,
    GlueWorkflowArgs,
    ObjectCreatedRule,
    ObjectCreatedRuleArgs,
    WatchedStep,
    WorkflowStep,
)
from components.storage import s3_uri
from components.warehouse import Crawler, data_api_statements
from components.warehouse_access import db_roles_tag, loader_role
from pipelines.glue_estate import GlueEstate

# Layout in the processed bucket.
PARQUET_PREFIX = "sales/parquet/"
STATE_PREFIX = "sales/state/"
STAGE_PREFIX = "sales/stage/"
QUARANTINE_PREFIX = "quarantine/sales/"
WAREHOUSE_ROLE = loader_role("sales")


@dataclass(frozen=True, kw_only=True)
class SalesArgs:
    estate: GlueEstate
    settings: SalesConfig
    workgroup_name: pulumi.Input[str]
    workgroup_arn: pulumi.Input[str]
    database: str
    # Redshift's own role, which COPY uses to read the staged Parquet.
    copy_role_arn: pulumi.Input[str]


class SalesPipeline(pulumi.ComponentResource):
    """The sales pipeline end to end (see module docstring)."""

    workflow_name: pulumi.Output[str]
    convert_job_name: pulumi.Output[str]
    load_job_name: pulumi.Output[str]

    def __init__(self, name: str, args: SalesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Sales", name, None, opts)
        s, e, child = args.settings, args.estate, pulumi.ResourceOptions(parent=self)
        input_crawler = Crawler(
            f"{name}-input-crawler",
            e.crawler(e.raw_bucket, e.raw_bucket_arn, s.input_prefix, "sales_"),
            opts=child,
        )
        convert = GlueJob(
            f"{name}-convert",
            e.job(
                "sales_csv_to_parquet.py",
                arguments={
                    "--input_path": s3_uri(e.raw_bucket, s.input_prefix),
                    "--output_path": s3_uri(e.processed_bucket, PARQUET_PREFIX),
                    "--quarantine_path": s3_uri(e.processed_bucket, QUARANTINE_PREFIX),
                    "--state_path": s3_uri(e.processed_bucket, STATE_PREFIX),
                    "--columns": ",".join(s.columns),
                },
                role_statements=[
                    statement(["s3:GetObject"], objects(e.raw_bucket_arn, s.input_prefix)),
                    statement(
                        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                        objects(e.processed_bucket_arn, PARQUET_PREFIX, STATE_PREFIX, QUARANTINE_PREFIX),
                    ),
                    list_buckets(e.raw_bucket_arn, e.processed_bucket_arn),
                    *hadoop_directories(
                        reads=[(e.raw_bucket_arn, s.input_prefix)],
                        writes=[
                            (e.processed_bucket_arn, PARQUET_PREFIX),
                            (e.processed_bucket_arn, STATE_PREFIX),
                            (e.processed_bucket_arn, QUARANTINE_PREFIX),
                        ],
                    ),
                ],
            ),
            opts=child,
        )
        parquet_crawler = Crawler(
            f"{name}-parquet-crawler",
            e.crawler(e.processed_bucket, e.processed_bucket_arn, PARQUET_PREFIX, "sales_"),
            opts=child,
        )
        load = GlueJob(
            f"{name}-load",
            replace(
                e.job(
                    "sales_load_warehouse.py",
                    arguments={
                        "--parquet_path": s3_uri(e.processed_bucket, PARQUET_PREFIX),
                        "--stage_path": s3_uri(e.processed_bucket, STAGE_PREFIX),
                        "--state_path": s3_uri(e.processed_bucket, STATE_PREFIX),
                        "--table": s.table,
                        "--warehouse": "redshift-data",
                        "--workgroup": args.workgroup_name,
                        "--database": args.database,
                        "--iam_role": args.copy_role_arn,
                    },
                    role_statements=[
                        statement(["s3:GetObject"], objects(e.processed_bucket_arn, PARQUET_PREFIX)),
                        statement(
                            ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                            objects(e.processed_bucket_arn, STATE_PREFIX, STAGE_PREFIX),
                        ),
                        list_buckets(e.processed_bucket_arn),
                        *hadoop_directories(
                            reads=[(e.processed_bucket_arn, PARQUET_PREFIX)],
                            writes=[(e.processed_bucket_arn, STATE_PREFIX), (e.processed_bucket_arn, STAGE_PREFIX)],
                        ),
                        *data_api_statements(args.workgroup_arn),
                    ],
                ),
                # Signs in to Redshift with this pipeline's database role (components/warehouse_access.py).
                role_tags=db_roles_tag(WAREHOUSE_ROLE),
            ),
            opts=child,
        )
        steps = (
            WorkflowStep("crawler", input_crawler.crawler_name),
            WorkflowStep("job", convert.job_name),
            WorkflowStep("crawler", parquet_crawler.crawler_name),
            WorkflowStep("job", load.job_name),
        )
        workflow = GlueWorkflow(
            f"{name}-workflow",
            GlueWorkflowArgs(account_id=e.account_id, region=e.region, steps=steps),
            opts=child,
        )
        ObjectCreatedRule(
            f"{name}-trigger",
            ObjectCreatedRuleArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                bucket_name=e.raw_bucket,
                key_prefix=s.input_prefix,
                key_suffixes=(".csv",),
                target_arn=workflow.workflow_arn,
                target_action="glue:notifyEvent",
            ),
            opts=child,
        )
        inputs = s3_uri(e.raw_bucket, s.input_prefix)
        quarantine = s3_uri(e.processed_bucket, QUARANTINE_PREFIX)
        state = s3_uri(e.processed_bucket, STATE_PREFIX)
        GlueStateNotifications(
            f"{name}-notify",
            GlueStateNotificationsArgs(
                pipeline="sales",
                kms_key_arn=e.kms_key_arn,
                topic_arn=e.topic_arn,
                steps=(
                    WatchedStep(
                        "crawler",
                        input_crawler.crawler_name,
                        pulumi.Output.concat("It catalogs the CSVs in ", inputs),
                        log_group=input_crawler.log_group_name,
                    ),
                    WatchedStep(
                        "job",
                        convert.job_name,
                        pulumi.Output.concat(
                            "It converts new CSVs from ",
                            inputs,
                            " (a failure names each rejected file and why); rejected rows with reasons are under ",
                            quarantine,
                            ", per-file results under ",
                            state,
                            "converted/ and rejected/.",
                        ),
                    ),
                    WatchedStep(
                        "crawler",
                        parquet_crawler.crawler_name,
                        pulumi.Output.concat("It catalogs the Parquet in ", s3_uri(e.processed_bucket, PARQUET_PREFIX)),
                        log_group=parquet_crawler.log_group_name,
                    ),
                    WatchedStep(
                        "job",
                        load.job_name,
                        pulumi.Output.concat(
                            "It merges converted files into Redshift table ",
                            args.database,
                            ".public.",
                            s.table,
                            "; loaded files are listed under ",
                            state,
                            "loaded/.",
                        ),
                    ),
                ),
            ),
            opts=child,
        )
        self.workflow_name = workflow.workflow_name
        self.convert_job_name = convert.job_name
        self.load_job_name = load.job_name
        self.register_outputs(
            {
                "workflow_name": self.workflow_name,
                "convert_job_name": self.convert_job_name,
                "load_job_name": self.load_job_name,
            }
        )
