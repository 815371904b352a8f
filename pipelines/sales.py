"""Sales ETL: CSV under the raw bucket's sales input prefix -> EventBridge -> Glue workflow:
crawl input -> `sales_csv_to_parquet` -> `sales_load_warehouse` (MERGE into Redshift).
Every crawler and job announces its failures on the alerts topic and its successes on the notifications
topic (when the stack has one) through EventBridge.

The converted Parquet is the catalog table `sales_orders`, defined here (its schema follows the
selected columns, so `pulumi preview` shows a change), partitioned by order_date and source_file.
source_file follows no pattern Athena could project, so the convert job registers the partitions it
writes (and removes those a corrected upload no longer has) before it records a file as converted:
the table is queryable in Athena as soon as the convert step succeeds, with no crawl.

An EventBridge rule notifies the workflow's EVENT trigger directly (no Lambda in between). A workflow
started by events sees event IDs, not object keys, so the jobs work from small state markers in S3
instead: each run converts every new or changed CSV and loads every converted file not yet loaded.
Batched, duplicated or missed events therefore cannot lose or double-load a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi

from components.compute import GlueJob
from components.config import (
    SQL_IDENTIFIER,
    Check,
    ConfigSection,
    Setting,
    check_quarantine_ratio,
    check_upload_prefix,
    quarantine_ratio_setting,
    ratio,
)
from components.iam import hadoop_directories, list_buckets, statement
from components.monitoring import DeadLetterQueue, PipelineWatch
from components.orchestration import (
    GLUE_EVENT_BATCH_WINDOW_SECONDS,
    GlueStateNotifications,
    GlueStateNotificationsArgs,
    GlueWorkflow,
    GlueWorkflowArgs,
    ObjectCreatedRule,
    ObjectCreatedRuleArgs,
    WatchedStep,
    WorkflowStep,
)
from components.warehouse import CatalogTable, CatalogTableArgs, Crawler, data_api_statements
from components.warehouse_access import Loader, db_roles_tag, loader_role
from job_runtime.contracts import SALES_COLUMNS, SALES_DEFAULT_COLUMNS, SALES_SCHEMA
from pipelines.platform import Pipeline, Platform

# Layout in the processed bucket.
PARQUET_PREFIX = "sales/parquet/"
STATE_PREFIX = "sales/state/"
STAGE_PREFIX = "sales/stage/"
QUARANTINE_PREFIX = "quarantine/sales/"
WAREHOUSE_ROLE = loader_role("sales")
# The catalog table over PARQUET_PREFIX. Not `sales_parquet`, the name the Parquet crawler gave the
# table it made: stacks deployed with that crawler still hold it, and creating a table of the same
# name would fail there.
PARQUET_TABLE = "sales_orders"
# The folder levels the convert job writes, outermost first (Hive-style `<key>=<value>/`).
PARQUET_PARTITION_KEYS = (("order_date", "date"), ("source_file", "string"))
# What the convert job does on the catalog table: read its storage descriptor, add and drop partitions.
# Glue authorizes each on the table and its ancestors, the database and the catalog.
PARTITION_ACTIONS = ["glue:BatchCreatePartition", "glue:BatchDeletePartition", "glue:GetTable"]


@dataclass(frozen=True)
class SalesConfig:
    input_prefix: str
    columns: tuple[str, ...]
    table: str
    batch_window_seconds: int
    quarantine_alarm_ratio: float


SETTINGS = (
    Setting(
        "salesInputPrefix",
        "string",
        "sales/input/",
        "Key prefix in the raw bucket whose new CSV objects start the sales workflow",
    ),
    Setting(
        "salesColumns",
        "array",
        list(SALES_DEFAULT_COLUMNS),
        "Columns the sales CSV-to-Parquet job keeps (must include order_id and order_date)",
    ),
    Setting(
        "salesTable",
        "string",
        "sales_data_table",
        "Warehouse table the sales load merges into on order_id (schema public)",
    ),
    Setting(
        "salesBatchWindowSeconds",
        "integer",
        60,
        "Seconds the sales workflow waits after the first upload event to batch others with it (1 to 900)",
    ),
    quarantine_ratio_setting("sales", "sales"),
)


def validate(values: Mapping[str, Any], check: Check) -> None:
    check_upload_prefix(values, check, "salesInputPrefix", "sales/input/")
    check(
        SQL_IDENTIFIER.fullmatch(values["salesTable"]) is not None,
        "salesTable",
        "must be a lower-case SQL identifier",
    )
    low, high = GLUE_EVENT_BATCH_WINDOW_SECONDS
    check(
        isinstance(values["salesBatchWindowSeconds"], int) and low <= values["salesBatchWindowSeconds"] <= high,
        "salesBatchWindowSeconds",
        f"must be {low} to {high} seconds (Glue's EventBatchingCondition BatchWindow)",
    )
    check_quarantine_ratio(values, check, "salesQuarantineAlarmRatio")
    columns = values["salesColumns"]
    unknown_columns = [c for c in columns if c not in SALES_COLUMNS]
    check(
        not unknown_columns and len(set(columns)) == len(columns) and {"order_id", "order_date"} <= set(columns),
        "salesColumns",
        "must list each column once, include order_id and order_date, and use only "
        + ", ".join(SALES_COLUMNS)
        + (f" (unknown: {', '.join(unknown_columns)})" if unknown_columns else ""),
    )


def parse(values: Mapping[str, Any]) -> SalesConfig:
    return SalesConfig(
        input_prefix=values["salesInputPrefix"],
        columns=values["salesColumns"],
        table=values["salesTable"],
        batch_window_seconds=values["salesBatchWindowSeconds"],
        quarantine_alarm_ratio=ratio(values["salesQuarantineAlarmRatio"]),
    )


def parquet_columns(columns: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The columns inside the converted Parquet files, in the order the job writes them: the selected
    columns in schema order, the partition keys aside (they live in the folder names)."""
    keys = {k for k, _ in PARQUET_PARTITION_KEYS}
    return tuple((f.name, f.spark_type_name) for f in SALES_SCHEMA if f.name in columns and f.name not in keys)


@dataclass(frozen=True, kw_only=True)
class SalesArgs:
    settings: SalesConfig
    # Reads uploads from the raw zone, writes the processed zone, loads the warehouse with COPY run by
    # Redshift's own role (the warehouse's copy_role_arn).
    platform: Platform


class SalesPipeline(pulumi.ComponentResource):
    """The sales pipeline end to end (see module docstring)."""

    workflow_name: pulumi.Output[str]
    convert_job_name: pulumi.Output[str]
    load_job_name: pulumi.Output[str]
    parquet_table_name: pulumi.Output[str]
    # The trigger's dead-letter queue (S3 events that did not start the workflow) and the announcements'
    # (Glue state changes that could not be published).
    trigger_dead_letter_queue_name: pulumi.Output[str]
    notify_dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: SalesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Sales", name, None, opts)
        s, p, child = args.settings, args.platform, pulumi.ResourceOptions(parent=self)
        e, raw, processed = p.glue, p.lake.raw, p.lake.processed
        # Uploads land in folders it has crawled before: only a full recrawl sees them.
        input_crawler = Crawler(
            f"{name}-input-crawler",
            replace(e.crawler(raw, s.input_prefix, "sales_"), recrawl_everything=True),
            opts=child,
        )
        parquet_table = CatalogTable(
            f"{name}-parquet-table",
            CatalogTableArgs(
                database=p.catalog.database_name,
                name=PARQUET_TABLE,
                location=processed.uri(PARQUET_PREFIX),
                columns=parquet_columns(s.columns),
                partition_keys=PARQUET_PARTITION_KEYS,
                description="Converted sales orders (sales_csv_to_parquet); partitions registered by the job",
            ),
            opts=child,
        )
        glue_arn = pulumi.Output.concat("arn:aws:glue:", p.region, ":", p.account_id, ":")
        convert = GlueJob(
            f"{name}-convert",
            e.job(
                "sales_csv_to_parquet.py",
                pipeline="sales",
                arguments={
                    "--input_path": raw.uri(s.input_prefix),
                    "--output_path": processed.uri(PARQUET_PREFIX),
                    "--quarantine_path": processed.uri(QUARANTINE_PREFIX),
                    "--state_path": processed.uri(STATE_PREFIX),
                    "--columns": ",".join(s.columns),
                    "--catalog_database": parquet_table.database_name,
                    "--catalog_table": parquet_table.table_name,
                },
                role_statements=[
                    raw.read(s.input_prefix),
                    processed.write(PARQUET_PREFIX, STATE_PREFIX, QUARANTINE_PREFIX),
                    list_buckets(raw.arn, processed.arn),
                    *hadoop_directories(
                        reads=[(raw.arn, s.input_prefix)],
                        writes=[
                            (processed.arn, PARQUET_PREFIX),
                            (processed.arn, STATE_PREFIX),
                            (processed.arn, QUARANTINE_PREFIX),
                        ],
                    ),
                    statement(
                        PARTITION_ACTIONS,
                        [
                            pulumi.Output.concat(glue_arn, "catalog"),
                            pulumi.Output.concat(glue_arn, "database/", parquet_table.database_name),
                            pulumi.Output.concat(
                                glue_arn, "table/", parquet_table.database_name, "/", parquet_table.table_name
                            ),
                        ],
                    ),
                ],
            ),
            opts=child,
        )
        load = GlueJob(
            f"{name}-load",
            replace(
                e.job(
                    "sales_load_warehouse.py",
                    pipeline="sales",
                    arguments={
                        "--parquet_path": processed.uri(PARQUET_PREFIX),
                        "--stage_path": processed.uri(STAGE_PREFIX),
                        "--state_path": processed.uri(STATE_PREFIX),
                        "--table": s.table,
                        "--warehouse": "redshift-data",
                        "--workgroup": p.warehouse.workgroup_name,
                        "--database": p.warehouse.database,
                        "--iam_role": p.warehouse.copy_role_arn,
                    },
                    role_statements=[
                        processed.read(PARQUET_PREFIX),
                        processed.write(STATE_PREFIX, STAGE_PREFIX),
                        list_buckets(processed.arn),
                        *hadoop_directories(
                            reads=[(processed.arn, PARQUET_PREFIX)],
                            writes=[(processed.arn, STATE_PREFIX), (processed.arn, STAGE_PREFIX)],
                        ),
                        *data_api_statements(p.warehouse.workgroup_arn),
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
            WorkflowStep("job", load.job_name),
        )
        workflow = GlueWorkflow(
            f"{name}-workflow",
            GlueWorkflowArgs(
                account_id=p.account_id, region=p.region, steps=steps, batch_window_seconds=s.batch_window_seconds
            ),
            opts=child,
        )
        trigger = ObjectCreatedRule(
            f"{name}-trigger",
            ObjectCreatedRuleArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                bucket_name=raw.name,
                key_prefix=s.input_prefix,
                key_suffixes=(".csv",),
                target_arn=workflow.workflow_arn,
                target_action="glue:notifyEvent",
            ),
            opts=child,
        )
        inputs = raw.uri(s.input_prefix)
        quarantine = processed.uri(QUARANTINE_PREFIX)
        state = processed.uri(STATE_PREFIX)
        notify = GlueStateNotifications(
            f"{name}-notify",
            GlueStateNotificationsArgs(
                pipeline="sales",
                kms_key_arn=p.lake.key_arn,
                alerts_topic_arn=p.alerts_topic_arn,
                notifications_topic_arn=p.notifications_topic_arn,
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
                            "converted/ and rejected/; converted rows are in Athena table ",
                            parquet_table.database_name,
                            ".",
                            parquet_table.table_name,
                            ".",
                        ),
                    ),
                    WatchedStep(
                        "job",
                        load.job_name,
                        pulumi.Output.concat(
                            "It merges converted files into Redshift table ",
                            p.warehouse.database,
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
        self.parquet_table_name = parquet_table.table_name
        self.trigger_dead_letter_queue_name = trigger.dead_letter_queue_name
        self.notify_dead_letter_queue_name = notify.dead_letter_queue_name
        self.register_outputs(
            {
                "trigger_dead_letter_queue_name": self.trigger_dead_letter_queue_name,
                "notify_dead_letter_queue_name": self.notify_dead_letter_queue_name,
                "workflow_name": self.workflow_name,
                "convert_job_name": self.convert_job_name,
                "load_job_name": self.load_job_name,
                "parquet_table_name": self.parquet_table_name,
            }
        )


def watch(component: SalesPipeline, settings: SalesConfig) -> PipelineWatch:
    """The two dead-letter queues, the convert and load jobs, and the conversion's quarantine. The workflow
    has no state machine: its crawler's and jobs' failures are announced on the alerts topic by rule."""
    return PipelineWatch(
        pipeline="sales",
        dead_letter_queues=(
            DeadLetterQueue(
                name=component.trigger_dead_letter_queue_name,
                holds=f"S3 upload events under {settings.input_prefix} that did not start the sales workflow",
            ),
            DeadLetterQueue(
                name=component.notify_dead_letter_queue_name,
                holds="announcements of sales crawler and job runs that EventBridge could not publish to SNS",
            ),
        ),
        glue_job_names=(component.convert_job_name, component.load_job_name),
        quarantine_jobs=("sales_csv_to_parquet",),
        quarantine_ratio_threshold=settings.quarantine_alarm_ratio,
    )


PIPELINE: Pipeline[SalesConfig, SalesPipeline] = Pipeline(
    name="sales",
    config=ConfigSection(settings=SETTINGS, validate=validate, parse=parse, upload_prefix_key="salesInputPrefix"),
    component=lambda s, p, opts: SalesPipeline("sales", SalesArgs(settings=s, platform=p), opts),
    outputs=lambda c, s, p: {
        "sales_upload_to": p.lake.raw.uri(s.input_prefix),
        "sales_workflow": c.workflow_name,
        "sales_table": s.table,  # schema public
        "sales_parquet_table": c.parquet_table_name,  # in the glue_database
    },
    watch=watch,
    warehouse_loader=lambda s: Loader(WAREHOUSE_ROLE, "public"),
)
