"""Composition root: read the typed stack config, build the platform and the pipelines, watch them,
export outputs.

The pipelines are the registry's (pipelines/registry.py): each declares its config section, how to
build its component from the platform, its stack outputs, and what the monitoring watches of it.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
from pulumi.runtime import config as runtime_config

from components.ci import GithubDeployRole, GithubDeployRoleArgs
from components.compute import BatchCompute, BatchComputeArgs
from components.config import StackConfig
from components.iam import statement
from components.monitoring import AlertTopics, AlertTopicsArgs, Monitoring, MonitoringArgs, PipelineWatch
from components.network import Network, NetworkArgs
from components.storage import DataLake, DataLakeArgs
from components.warehouse import QueryCatalog, QueryCatalogArgs, Warehouse, WarehouseArgs
from components.warehouse_access import WarehouseAccess, WarehouseAccessArgs
from pipelines import registry
from pipelines.glue_estate import GlueEstate
from pipelines.platform import Pipeline, Platform


def build_platform(cfg: StackConfig, pipelines: list[Pipeline], provider: aws.Provider) -> Platform:
    """The shared estate: lake, network, warehouse (with the enabled pipelines' database roles), catalog,
    alerts and notifications topics, Glue estate, and Batch compute when an enabled pipeline runs Batch
    jobs; exports its outputs."""
    opts = pulumi.ResourceOptions(providers={"aws": provider})
    invoke = pulumi.InvokeOutputOptions(provider=provider)
    account_id = aws.get_caller_identity_output(opts=invoke).account_id
    region = aws.get_region_output(opts=invoke).region
    zones = aws.get_availability_zones_output(state="available", opts=invoke).names
    removal = cfg.remove_data_on_destroy

    data_lake = DataLake(
        "lake", DataLakeArgs(account_id=account_id, region=region, remove_data_on_destroy=removal), opts=opts
    )
    lake = data_lake.zones
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
        opts=opts,
    )
    # Redshift's own role may COPY from the processed and curated zones (the later pipelines' loads).
    copy_sources = [lake.processed.arn, lake.curated.arn]
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
        opts=opts,
    )
    # The database roles, schemas and grants of the pipelines that load the warehouse, set up as its admin.
    warehouse_access = WarehouseAccess(
        "warehouse-access",
        WarehouseAccessArgs(
            workgroup_name=warehouse.workgroup_name,
            database=warehouse.database,
            admin_secret_arn=warehouse.admin_secret_arn,
            loaders=tuple(
                p.warehouse_loader(cfg.pipeline_settings[p.name]) for p in pipelines if p.warehouse_loader is not None
            ),
        ),
        opts=opts,
    )
    catalog = QueryCatalog(
        "catalog",
        QueryCatalogArgs(
            kms_key_arn=lake.key_arn, results_bucket=lake.query_results.name, remove_data_on_destroy=removal
        ),
        opts=opts,
    )
    topics = AlertTopics(
        "topics",
        AlertTopicsArgs(
            account_id=account_id,
            region=region,
            kms_key_arn=lake.key_arn,
            alert_emails=cfg.alert_emails,
            notification_emails=cfg.notification_emails,
            success_notifications=cfg.success_notifications,
        ),
        opts=opts,
    )
    # One jobs image, queue and log group for every Batch job of the enabled pipelines.
    batch: BatchCompute | None = None
    if any(p.needs_batch for p in pipelines):
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
                # Set (CI sets it for prod): run that image, built and tested by dev; build nothing.
                image=cfg.batch_image,
                # The stack main deploys: its current image is the layer cache of a new stack's first build.
                cache_stacks=("dev",),
                pull_account_ids=cfg.ecr_pull_account_ids,
            ),
            opts=opts,
        )

    pulumi.export("buckets", data_lake.bucket_names)
    pulumi.export("kms_key_arn", lake.key_arn)
    pulumi.export("redshift_workgroup", warehouse.workgroup_name)
    pulumi.export("redshift_database", warehouse.database)
    pulumi.export("redshift_admin_secret_arn", warehouse.admin_secret_arn)
    pulumi.export("redshift_reader_role", warehouse_access.reader_role)
    pulumi.export("glue_database", catalog.database_name)
    pulumi.export("athena_workgroup", catalog.workgroup_name)
    pulumi.export("alerts_topic_arn", topics.alerts_topic_arn)
    if topics.notifications_topic_arn is not None:
        pulumi.export("notifications_topic_arn", topics.notifications_topic_arn)
    pulumi.export("region", region)  # where the smoke run (python -m smoke) sends its AWS calls
    if batch:
        pulumi.export("batch_image", batch.image_uri)
        pulumi.export("batch_job_queue_arn", batch.job_queue_arn)

    return Platform(
        account_id=account_id,
        region=region,
        lake=lake,
        warehouse=warehouse,
        catalog=catalog,
        alerts_topic_arn=topics.alerts_topic_arn,
        notifications_topic_arn=topics.notifications_topic_arn,
        glue=GlueEstate(
            glue=cfg.glue,
            account_id=account_id,
            region=region,
            lake=lake,
            catalog_database=catalog.database_name,
            log_retention_days=cfg.log_retention_days,
        ),
        batch=batch,
        assign_public_ip=network.assign_public_ip,
        log_retention_days=cfg.log_retention_days,
        remove_data_on_destroy=removal,
    )


def build_ci_role(cfg: StackConfig, account_id: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    """The role GitHub Actions assumes (OIDC) to deploy the project's stacks; off unless the stack enables it."""
    if not cfg.ci.enabled:
        return
    ci = GithubDeployRole(
        "ci",
        GithubDeployRoleArgs(
            account_id=account_id,
            repository=cfg.ci.github_repository,
            branches=cfg.ci.deploy_branches,
            environments=cfg.ci.deploy_environments,
            oidc_provider_arn=cfg.ci.oidc_provider_arn or None,
        ),
        opts=opts,
    )
    pulumi.export("ci_deploy_role_arn", ci.role_arn)
    pulumi.export("ci_oidc_provider_arn", ci.provider_arn)


raw_config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
cfg = registry.load_stack_config(raw_config, pulumi.get_project(), pulumi.get_stack(), raw_config.get("aws:region"))
# One explicit provider carries the estate tags to every taggable resource (default tags).
provider = aws.Provider("aws", region=cfg.region, default_tags={"tags": cfg.tags})
with_provider = pulumi.ResourceOptions(providers={"aws": provider})
pipelines = registry.enabled(cfg)
platform = build_platform(cfg, pipelines, provider)
build_ci_role(cfg, platform.account_id, with_provider)
watches: list[PipelineWatch] = []
for pipeline in pipelines:
    settings = cfg.pipeline_settings[pipeline.name]
    component = pipeline.component(settings, platform, with_provider)
    for output_name, value in pipeline.outputs(component, settings, platform).items():
        pulumi.export(output_name, value)
    watches.append(pipeline.watch(component, settings))
# Alarms on every pipeline's state machines, queues, jobs and run metrics, to the alerts topic; one dashboard.
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        alerts_topic_arn=platform.alerts_topic_arn,
        region=platform.region,
        account_id=platform.account_id,
        stack=pulumi.get_stack(),
        pipelines=tuple(watches),
        warehouse_workgroup=platform.warehouse.workgroup_name,
    ),
    opts=with_provider,
)
pulumi.export("dashboard_name", monitoring.dashboard_name)
