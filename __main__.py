"""Composition root: read the typed stack config, build the platform and the pipelines, export outputs."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
from pulumi.runtime import config as runtime_config

from components.ci import GithubDeployRole, GithubDeployRoleArgs
from components.compute import BatchCompute, BatchComputeArgs
from components.config import load_config
from components.iam import statement
from components.network import Network, NetworkArgs
from components.orchestration import NotificationTopic, NotificationTopicArgs
from components.storage import DataLake, DataLakeArgs, s3_uri
from components.warehouse import QueryCatalog, QueryCatalogArgs, Warehouse, WarehouseArgs
from components.warehouse_access import Loader, WarehouseAccess, WarehouseAccessArgs
from pipelines.covid import WAREHOUSE_ROLE as COVID_DB_ROLE
from pipelines.covid import CovidArgs, CovidPipeline
from pipelines.gharchive import EVENTS_TABLE as GHARCHIVE_EVENTS_TABLE
from pipelines.gharchive import GharchiveArgs, GharchivePipeline
from pipelines.glue_estate import GlueEstate
from pipelines.render_logs import WAREHOUSE_ROLE as RENDER_LOGS_DB_ROLE
from pipelines.render_logs import RenderLogsArgs, RenderLogsPipeline
from pipelines.sales import WAREHOUSE_ROLE as SALES_DB_ROLE
from pipelines.sales import SalesArgs, SalesPipeline
from pipelines.sensor_timeseries import SensorTimeseriesArgs, SensorTimeseriesPipeline

raw_config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
cfg = load_config(raw_config, pulumi.get_project(), pulumi.get_stack(), raw_config.get("aws:region"))

# One explicit provider carries the estate tags to every taggable resource (default tags).
provider = aws.Provider("aws", region=cfg.region, default_tags={"tags": cfg.tags})
platform = pulumi.ResourceOptions(providers={"aws": provider})
invoke = pulumi.InvokeOutputOptions(provider=provider)
account_id = aws.get_caller_identity_output(opts=invoke).account_id
region = aws.get_region_output(opts=invoke).region
zones = aws.get_availability_zones_output(state="available", opts=invoke).names
removal = cfg.remove_data_on_destroy

lake = DataLake(
    "lake", DataLakeArgs(account_id=account_id, region=region, remove_data_on_destroy=removal), opts=platform
)
network = Network(
    "net",
    NetworkArgs(
        cidr=cfg.vpc_cidr,
        account_id=account_id,
        zones=zones,
        zone_count=cfg.availability_zone_count,
        nat_gateway=cfg.nat_gateway,
        region=region,
        flow_log_retention_days=cfg.log_retention_days,
        kms_key_arn=lake.key_arn,
    ),
    opts=platform,
)
# Redshift's own role may COPY from the processed and curated zones (the later pipelines' loads).
copy_sources = [lake.bucket_arns["processed"], lake.bucket_arns["curated"]]
warehouse = Warehouse(
    "warehouse",
    WarehouseArgs(
        account_id=account_id,
        kms_key_arn=lake.key_arn,
        subnet_ids=network.warehouse_subnet_ids,
        security_group_ids=[network.warehouse_security_group_id],
        database=cfg.redshift_database,
        base_capacity=cfg.redshift_base_capacity,
        max_capacity=cfg.redshift_max_capacity,
        daily_rpu_hour_limit=cfg.redshift_daily_rpu_hour_limit,
        usage_limit_action=cfg.redshift_usage_limit_action,
        redshift_role_statements=[
            statement(["s3:GetBucketLocation", "s3:ListBucket"], copy_sources),
            statement(["s3:GetObject"], [pulumi.Output.concat(arn, "/*") for arn in copy_sources]),
            statement(["kms:Decrypt"], [lake.key_arn]),
        ],
        remove_data_on_destroy=removal,
    ),
    opts=platform,
)
# The database roles, schemas and grants of the pipelines that load the warehouse, set up as its admin.
loaders = {
    "render-logs": Loader(RENDER_LOGS_DB_ROLE, "public"),
    "sales": Loader(SALES_DB_ROLE, "public"),
    "covid19": Loader(COVID_DB_ROLE, cfg.covid.warehouse_schema),
}
warehouse_access = WarehouseAccess(
    "warehouse-access",
    WarehouseAccessArgs(
        workgroup_name=warehouse.workgroup_name,
        database=warehouse.database,
        admin_secret_arn=warehouse.admin_secret_arn,
        loaders=tuple(loader for pipeline, loader in loaders.items() if pipeline in cfg.pipelines),
    ),
    opts=platform,
)
catalog = QueryCatalog(
    "catalog",
    QueryCatalogArgs(
        kms_key_arn=lake.key_arn, results_bucket=lake.bucket_names["query-results"], remove_data_on_destroy=removal
    ),
    opts=platform,
)
notifications = NotificationTopic(
    "notifications",
    NotificationTopicArgs(account_id=account_id, kms_key_arn=lake.key_arn, emails=cfg.notification_emails),
    opts=platform,
)
# The role GitHub Actions assumes (OIDC) to deploy the project's stacks; off unless the stack enables it.
ci: GithubDeployRole | None = None
if cfg.ci.enabled:
    ci = GithubDeployRole(
        "ci",
        GithubDeployRoleArgs(
            account_id=account_id,
            repository=cfg.ci.github_repository,
            branches=cfg.ci.deploy_branches,
            environments=cfg.ci.deploy_environments,
            oidc_provider_arn=cfg.ci.oidc_provider_arn or None,
        ),
        opts=platform,
    )

pipelines: dict[str, pulumi.ComponentResource] = {}
# One jobs image, queue and log group for every Batch job (render-summary, gharchive-ingest, copy-datasets).
batch: BatchCompute | None = None
if {"render-logs", "gharchive", "covid19"} & set(cfg.pipelines):
    batch = BatchCompute(
        "batch",
        BatchComputeArgs(
            account_id=account_id,
            region=region,
            kms_key_arn=lake.key_arn,
            image_context=str(Path(__file__).resolve().parent / "batch_image"),
            subnet_ids=network.job_subnet_ids,
            security_group_ids=[network.jobs_security_group_id],
            max_vcpus=cfg.batch_max_vcpus,
            use_spot=cfg.batch_use_spot,
            log_retention_days=cfg.log_retention_days,
            remove_data_on_destroy=removal,
        ),
        opts=platform,
    )
if "render-logs" in cfg.pipelines and batch:
    pipelines["render-logs"] = RenderLogsPipeline(
        "render-logs",
        RenderLogsArgs(
            settings=cfg.render_logs,
            account_id=account_id,
            region=region,
            kms_key_arn=lake.key_arn,
            raw_bucket=lake.bucket_names["raw"],
            raw_bucket_arn=lake.bucket_arns["raw"],
            processed_bucket=lake.bucket_names["processed"],
            processed_bucket_arn=lake.bucket_arns["processed"],
            workgroup_name=warehouse.workgroup_name,
            workgroup_arn=warehouse.workgroup_arn,
            database=warehouse.database,
            topic_arn=notifications.topic_arn,
            batch=batch,
            assign_public_ip=network.assign_public_ip,
            log_retention_days=cfg.log_retention_days,
        ),
        opts=platform,
    )

glue_estate = GlueEstate(
    glue=cfg.glue,
    account_id=account_id,
    region=region,
    kms_key_arn=lake.key_arn,
    raw_bucket=lake.bucket_names["raw"],
    raw_bucket_arn=lake.bucket_arns["raw"],
    processed_bucket=lake.bucket_names["processed"],
    processed_bucket_arn=lake.bucket_arns["processed"],
    scripts_bucket=lake.bucket_names["scripts"],
    scripts_bucket_arn=lake.bucket_arns["scripts"],
    topic_arn=notifications.topic_arn,
    catalog_database=catalog.database_name,
    log_retention_days=cfg.log_retention_days,
)
if "sales" in cfg.pipelines:
    pipelines["sales"] = SalesPipeline(
        "sales",
        SalesArgs(
            estate=glue_estate,
            settings=cfg.sales,
            workgroup_name=warehouse.workgroup_name,
            workgroup_arn=warehouse.workgroup_arn,
            database=warehouse.database,
            copy_role_arn=warehouse.copy_role_arn,
        ),
        opts=platform,
    )
if "sensor-timeseries" in cfg.pipelines:
    pipelines["sensor-timeseries"] = SensorTimeseriesPipeline(
        "sensor",
        SensorTimeseriesArgs(estate=glue_estate, settings=cfg.sensor, log_retention_days=cfg.log_retention_days),
        opts=platform,
    )
if "gharchive" in cfg.pipelines and batch:
    pipelines["gharchive"] = GharchivePipeline(
        "gharchive",
        GharchiveArgs(
            estate=glue_estate,
            batch=batch,
            settings=cfg.gharchive,
            athena_workgroup=catalog.workgroup_name,
            assign_public_ip=network.assign_public_ip,
            log_retention_days=cfg.log_retention_days,
            remove_data_on_destroy=removal,
        ),
        opts=platform,
    )
if "covid19" in cfg.pipelines and batch:
    pipelines["covid19"] = CovidPipeline(
        "covid",
        CovidArgs(
            estate=glue_estate,
            batch=batch,
            settings=cfg.covid,
            curated_bucket=lake.bucket_names["curated"],
            curated_bucket_arn=lake.bucket_arns["curated"],
            query_results_bucket_arn=lake.bucket_arns["query-results"],
            athena_workgroup=catalog.workgroup_name,
            workgroup_name=warehouse.workgroup_name,
            workgroup_arn=warehouse.workgroup_arn,
            database=warehouse.database,
            copy_role_arn=warehouse.copy_role_arn,
            assign_public_ip=network.assign_public_ip,
            log_retention_days=cfg.log_retention_days,
        ),
        opts=platform,
    )

pulumi.export("buckets", lake.bucket_names)
pulumi.export("kms_key_arn", lake.key_arn)
pulumi.export("redshift_workgroup", warehouse.workgroup_name)
pulumi.export("redshift_database", warehouse.database)
pulumi.export("redshift_admin_secret_arn", warehouse.admin_secret_arn)
pulumi.export("redshift_reader_role", warehouse_access.reader_role)
pulumi.export("glue_database", catalog.database_name)
pulumi.export("athena_workgroup", catalog.workgroup_name)
pulumi.export("notification_topic_arn", notifications.topic_arn)
pulumi.export("region", region)  # where the smoke run (python -m smoke) sends its AWS calls
raw = lake.bucket_names["raw"]
if isinstance(render_logs := pipelines.get("render-logs"), RenderLogsPipeline):
    pulumi.export("render_logs_upload_to", s3_uri(raw, cfg.render_logs.prefix))
    pulumi.export("render_logs_state_machine_arn", render_logs.state_machine_arn)
    pulumi.export("render_logs_table", cfg.render_logs.table)  # schema public
if isinstance(sales := pipelines.get("sales"), SalesPipeline):
    pulumi.export("sales_upload_to", s3_uri(raw, cfg.sales.input_prefix))
    pulumi.export("sales_workflow", sales.workflow_name)
    pulumi.export("sales_table", cfg.sales.table)  # schema public
if isinstance(sensor := pipelines.get("sensor-timeseries"), SensorTimeseriesPipeline):
    pulumi.export("sensor_upload_to", s3_uri(raw, cfg.sensor.input_prefix))
    pulumi.export("sensor_state_machine_arn", sensor.state_machine_arn)
if batch:
    pulumi.export("batch_image", batch.image_uri)
    pulumi.export("batch_job_queue_arn", batch.job_queue_arn)
if isinstance(gharchive := pipelines.get("gharchive"), GharchivePipeline):
    pulumi.export("gharchive_raw", s3_uri(raw, "gharchive/raw/"))
    pulumi.export("gharchive_state_machine_arn", gharchive.state_machine_arn)
    pulumi.export("gharchive_jobs_table", gharchive.jobs_table_name)
    pulumi.export("gharchive_runs_table", gharchive.runs_table_name)
    pulumi.export("gharchive_events_table", GHARCHIVE_EVENTS_TABLE)  # in glue_database, for Athena
if isinstance(covid := pipelines.get("covid19"), CovidPipeline):
    pulumi.export("covid_state_machine_arn", covid.state_machine_arn)
    pulumi.export("covid_warehouse_schema", cfg.covid.warehouse_schema)
if ci is not None:
    pulumi.export("ci_deploy_role_arn", ci.role_arn)
    pulumi.export("ci_oidc_provider_arn", ci.provider_arn)
