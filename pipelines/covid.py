"""Seed 004, COVID-19 star schema. On its schedule a Step Functions state machine runs, in order:

  1. `copy-datasets` (Batch, the estate's jobs image): the configured datasets of the source bucket
     (the public COVID-19 data lake by default) into s3://<raw>/covid/landing/<dataset>/, copying
     only objects whose source ETag or size changed;
  2. a crawler catalogs each landing dataset as table `covid_landing_<dataset>` (CSV with header);
  3. Athena stages each dataset: `UNLOAD (SELECT ...) TO s3://<processed>/scratch/covid/staging/
     <execution>/<dataset>/` as Parquet (pipelines/covid_staging.py; a fresh folder per execution,
     because UNLOAD needs an empty location; the lake expires scratch/ after a week);
  4. the Glue job `covid_clean` types, de-duplicates and keys the staged data into the star schema's
     tables at s3://<curated>/covid/curated/<table>/ (Parquet), quarantining bad rows with reasons;
  5. a crawler catalogs the curated tables (`covid_<table>`) for Athena;
  6. one Redshift Data API transaction (pipelines/covid_star_schema.py) creates the star schema's tables
     if missing (in the schema the stack created) and, per table, COPYs the curated Parquet into a temp
     stage and MERGEs it: reruns leave the same tables.
Success and failure are announced on the topic. The SQL of steps 3 and 6 is generated here, so a
change to it shows in `pulumi preview`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import pulumi

from components.compute import BatchCompute, BatchJob, BatchJobArgs, GlueJob
from components.config import CovidConfig
from components.iam import hadoop_directories, list_buckets, objects, statement
from components.orchestration import (
    PollStep,
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    TaskStep,
    batch_job_statements,
    batch_job_step,
    crawl_step,
    glue_job_statements,
    glue_job_step,
    pipeline_definition,
)
from components.storage import SCRATCH_PREFIX, s3_uri
from components.warehouse import Crawler, data_api_statements
from components.warehouse_access import db_roles_tag, loader_role
from pipelines import covid_staging, covid_star_schema
from pipelines.glue_estate import GlueEstate

LANDING_PREFIX = "covid/landing/"
# Athena's staging output is read once by the clean job: the lake's scratch area expires it.
STAGING_PREFIX = f"{SCRATCH_PREFIX}covid/staging/"
CURATED_PREFIX = "covid/curated/"
QUARANTINE_PREFIX = "quarantine/covid/"
EXECUTION = "EXECUTIONNAME"  # stands for $$.Execution.Name in generated SQL, replaced by a States.Format slot
ATHENA_API_ERRORS = ("Athena.TooManyRequestsException", "Athena.InternalServerException")
WAREHOUSE_ROLE = loader_role("covid19")
DATA_API_ERRORS = ("RedshiftData.ActiveStatementsExceededException", "RedshiftData.InternalServerException")


def format_template(text: str) -> str:
    """`text` as a States.Format template: intrinsic-function specials escaped, EXECUTION as the `{}` slot."""
    for special in "\\'{}":
        text = text.replace(special, "\\" + special)
    return text.replace(EXECUTION, "{}")


def staging_uri(processed_bucket: str, dataset: str | None = None) -> str:
    """The staging folder of one execution (with the EXECUTION placeholder), or of one of its datasets."""
    return f"s3://{processed_bucket}/{STAGING_PREFIX}{EXECUTION}/" + (f"{dataset}/" if dataset else "")


def execution_format(text: str) -> str:
    """A States.Format expression giving `text` with EXECUTION replaced by the execution's name."""
    return f"States.Format('{format_template(text)}', $$.Execution.Name)"


def stage_query(processed_bucket: str, dataset: str) -> str:
    """The Athena UNLOAD staging one dataset into this execution's staging folder."""
    return execution_format(covid_staging.unload_statement(dataset, staging_uri(processed_bucket, dataset)))


def load_sqls(schema: str, curated_bucket: str, iam_role: str) -> list[str]:
    """The warehouse transaction: the star schema's create/COPY/MERGE statements. The schema itself is the
    stack's (components/warehouse_access.py): the loading role may create tables in it, not schemas."""
    return covid_star_schema.redshift_load_statements(schema, f"s3://{curated_bucket}/{CURATED_PREFIX}", iam_role)


@dataclass(frozen=True, kw_only=True)
class CovidArgs:
    estate: GlueEstate
    # The estate's shared Batch image, queue and logs.
    batch: BatchCompute
    settings: CovidConfig
    curated_bucket: pulumi.Input[str]
    curated_bucket_arn: pulumi.Input[str]
    # Athena writes query metadata and results to the workgroup's result bucket.
    query_results_bucket_arn: pulumi.Input[str]
    athena_workgroup: pulumi.Input[str]
    workgroup_name: pulumi.Input[str]
    workgroup_arn: pulumi.Input[str]
    database: str
    copy_role_arn: pulumi.Input[str]
    assign_public_ip: bool
    log_retention_days: int


class CovidPipeline(pulumi.ComponentResource):
    """The COVID-19 pipeline end to end (see module docstring)."""

    state_machine_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CovidArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Covid", name, None, opts)
        s, e, child = args.settings, args.estate, pulumi.ResourceOptions(parent=self)
        account, region = pulumi.Output.from_input(e.account_id), pulumi.Output.from_input(e.region)
        source_arn = f"arn:aws:s3:::{s.source_bucket}"
        copy = BatchJob(
            f"{name}-copy",
            BatchJobArgs(
                account_id=e.account_id,
                region=e.region,
                compute=args.batch,
                command=["copy-datasets"],
                environment={
                    "COPY_SOURCE_BUCKET": s.source_bucket,
                    "COPY_SOURCE_REGION": s.source_region,
                    "COPY_DATASETS": json.dumps(s.datasets, sort_keys=True),
                    "COPY_TARGET": s3_uri(e.raw_bucket, LANDING_PREFIX),
                },
                job_role_statements=[
                    statement(["s3:ListBucket"], [source_arn]),
                    statement(["s3:GetObject"], [f"{source_arn}/{p}*" for p in sorted(set(s.datasets.values()))]),
                    statement(
                        ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                        objects(e.raw_bucket_arn, LANDING_PREFIX),
                    ),
                    list_buckets(e.raw_bucket_arn),
                    statement(["kms:Decrypt", "kms:GenerateDataKey"], [e.kms_key_arn]),
                ],
                assign_public_ip=args.assign_public_ip,
                # Server-side copies: the container only lists and calls CopyObject.
                vcpu=0.25,
                memory_mib=1024,
                timeout_minutes=120,
            ),
            opts=child,
        )
        landing_crawler = Crawler(
            f"{name}-landing-crawler",
            e.crawler(
                e.raw_bucket,
                e.raw_bucket_arn,
                LANDING_PREFIX,
                covid_staging.RAW_TABLE_PREFIX,
                table_per_folder=True,
                csv_with_header=True,
            ),
            opts=child,
        )
        clean = GlueJob(
            f"{name}-clean",
            e.job(
                "covid_clean.py",
                arguments={
                    "--curated_path": s3_uri(args.curated_bucket, CURATED_PREFIX),
                    "--quarantine_path": s3_uri(e.processed_bucket, QUARANTINE_PREFIX),
                },
                role_statements=[
                    statement(
                        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                        objects(e.processed_bucket_arn, STAGING_PREFIX, QUARANTINE_PREFIX),
                    ),
                    statement(
                        ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                        objects(args.curated_bucket_arn, CURATED_PREFIX),
                    ),
                    list_buckets(e.processed_bucket_arn, args.curated_bucket_arn),
                    *hadoop_directories(
                        reads=[(e.processed_bucket_arn, STAGING_PREFIX)],
                        writes=[(args.curated_bucket_arn, CURATED_PREFIX), (e.processed_bucket_arn, QUARANTINE_PREFIX)],
                    ),
                ],
            ),
            opts=child,
        )
        curated_crawler = Crawler(
            f"{name}-curated-crawler",
            e.crawler(args.curated_bucket, args.curated_bucket_arn, CURATED_PREFIX, "covid_", table_per_folder=True),
            opts=child,
        )

        processed = pulumi.Output.from_input(e.processed_bucket)
        stage_steps = [
            TaskStep(
                name=f"Stage{dataset.title().replace('_', '')}",
                resource="arn:aws:states:::athena:startQueryExecution.sync",
                parameters={
                    "QueryString.$": processed.apply(functools.partial(stage_query, dataset=dataset)),
                    "QueryExecutionContext": {"Database": e.catalog_database},
                    "WorkGroup": args.athena_workgroup,
                },
                retry_on=ATHENA_API_ERRORS,
            )
            for dataset in covid_staging.DATASETS
        ]
        sqls = pulumi.Output.all(args.curated_bucket, args.copy_role_arn).apply(
            lambda values: load_sqls(s.warehouse_schema, values[0], values[1])
        )
        load = PollStep(
            name="LoadStarSchema",
            start=TaskStep(
                name="LoadStarSchema",
                resource="arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement",
                parameters={
                    "WorkgroupName": args.workgroup_name,
                    "Database": args.database,
                    "Sqls": sqls,
                    "StatementName": "covid19-star-schema",
                },
                retry_on=DATA_API_ERRORS,
                result_path="$.load",
            ),
            check=TaskStep(
                name="LoadStarSchemaCheck",
                resource="arn:aws:states:::aws-sdk:redshiftdata:describeStatement",
                parameters={"Id.$": "$.load.Id"},
                retry_on=("RedshiftData.InternalServerException",),
                result_path="$.loadStatus",
            ),
            succeeded={"Variable": "$.loadStatus.Status", "StringEquals": "FINISHED"},
            failed={
                "Or": [
                    {"Variable": "$.loadStatus.Status", "StringEquals": "FAILED"},
                    {"Variable": "$.loadStatus.Status", "StringEquals": "ABORTED"},
                ]
            },
            wait_seconds=15,
        )
        definition = pipeline_definition(
            "covid19",
            [
                batch_job_step("CopySources", "copy-datasets", args.batch.job_queue_arn, copy.job_definition_arn),
                crawl_step("CatalogLanding", landing_crawler.crawler_name),
                *stage_steps,
                glue_job_step(
                    "CleanStagedData",
                    clean.job_name,
                    {"--staging_path.$": processed.apply(lambda bucket: execution_format(staging_uri(bucket)))},
                ),
                crawl_step("CatalogCurated", curated_crawler.crawler_name),
                load,
            ],
            e.topic_arn,
        )
        catalog = pulumi.Output.concat("arn:aws:glue:", region, ":", account, ":")
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=e.account_id,
                kms_key_arn=e.kms_key_arn,
                definition=definition,
                topic_arn=e.topic_arn,
                log_retention_days=args.log_retention_days,
                # The star schema load signs in to Redshift with this pipeline's database role.
                role_tags=db_roles_tag(WAREHOUSE_ROLE),
                role_statements=[
                    *batch_job_statements(e.account_id, e.region, args.batch.job_queue_arn, [copy.job_definition_name]),
                    *glue_job_statements([clean.job_arn]),
                    statement(
                        ["glue:GetCrawler", "glue:StartCrawler"],
                        [landing_crawler.crawler_arn, curated_crawler.crawler_arn],
                    ),
                    # Athena runs the staging UNLOADs with this role's rights: the workgroup, the landing
                    # tables' catalog entries and data, the staging folder and the results bucket.
                    statement(
                        ["athena:GetQueryExecution", "athena:StartQueryExecution", "athena:StopQueryExecution"],
                        [
                            pulumi.Output.concat(
                                "arn:aws:athena:", region, ":", account, ":workgroup/", args.athena_workgroup
                            )
                        ],
                    ),
                    # Athena requires these on the default database and the catalog whatever the query
                    # names (Athena, "Fine-grained access to databases and tables in the AWS Glue
                    # Data Catalog": mandatory access policy to the default database).
                    statement(
                        ["glue:CreateDatabase", "glue:GetDatabase"],
                        [pulumi.Output.concat(catalog, "catalog"), pulumi.Output.concat(catalog, "database/default")],
                    ),
                    statement(
                        ["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"],
                        [
                            pulumi.Output.concat(catalog, "catalog"),
                            pulumi.Output.concat(catalog, "database/", e.catalog_database),
                            pulumi.Output.concat(
                                catalog, "table/", e.catalog_database, "/", covid_staging.RAW_TABLE_PREFIX, "*"
                            ),
                        ],
                    ),
                    statement(["s3:GetObject"], objects(e.raw_bucket_arn, LANDING_PREFIX)),
                    statement(
                        ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                        objects(e.processed_bucket_arn, STAGING_PREFIX),
                    ),
                    statement(
                        ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                        objects(args.query_results_bucket_arn, "athena/"),
                    ),
                    statement(
                        ["s3:GetBucketLocation", "s3:ListBucket"],
                        [e.raw_bucket_arn, e.processed_bucket_arn, args.query_results_bucket_arn],
                    ),
                    *data_api_statements(args.workgroup_arn),
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
        self.register_outputs({"state_machine_arn": self.state_machine_arn})
