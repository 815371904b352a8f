"""What a pipeline is to the program (`Pipeline`), and what the platform offers every pipeline (`Platform`).

A pipeline module (pipelines/<name>.py) declares one `Pipeline`: its config section, how to build its
component from the platform, its stack outputs, and what the monitoring watches of it.
pipelines/registry.py lists them; the program (__main__.py), the config loader, localrun and
docs/adding-a-pipeline.md loop over that list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pulumi

from components.compute import BatchCompute, BatchJobArgs, GlueJobArgs
from components.config import ConfigSection
from components.monitoring import PipelineWatch
from components.storage import Lake
from components.warehouse import QueryCatalog, Warehouse
from components.warehouse_access import Loader
from pipelines.glue_estate import GlueEstate

Settings = TypeVar("Settings")
Component = TypeVar("Component", bound=pulumi.ComponentResource)


@dataclass(frozen=True, kw_only=True)
class Platform:
    """The shared estate a pipeline builds on."""

    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The lake's key and zones: uris and IAM grants by key prefix.
    lake: Lake
    warehouse: Warehouse
    # The Glue Data Catalog database and the Athena workgroup.
    catalog: QueryCatalog
    # The SNS topic every failure goes to (always exists).
    alerts_topic_arn: pulumi.Input[str]
    # The SNS topic routine success news goes to; None when the stack sends none (successNotifications false).
    notifications_topic_arn: pulumi.Input[str] | None
    # Glue jobs and crawlers at the stack's Glue size, writing to the catalog.
    glue: GlueEstate
    # The one jobs image, queue and log group; None unless an enabled pipeline needs Batch.
    batch: BatchCompute | None
    # Batch tasks in public subnets (no NAT gateway) need a public IP to reach AWS APIs.
    assign_public_ip: bool
    log_retention_days: int
    remove_data_on_destroy: bool

    @property
    def jobs(self) -> BatchCompute:
        """The Batch compute, for pipelines that declare `needs_batch`."""
        if self.batch is None:
            raise RuntimeError("this pipeline runs Batch jobs: declare needs_batch=True in its Pipeline")
        return self.batch


@dataclass(frozen=True, kw_only=True)
class Pipeline(Generic[Settings, Component]):
    """One pipeline, as the program, the config loader and the docs see it."""

    # Its name in the `pipelines` setting.
    name: str
    # Its keys in the stack configuration, their checks and its typed settings.
    config: ConfigSection[Settings]
    # Builds the pipeline's component on the platform (`opts` carries the estate's provider).
    component: Callable[[Settings, Platform, pulumi.ResourceOptions], Component]
    # Stack output name -> value, for the built component.
    outputs: Callable[[Component, Settings, Platform], Mapping[str, Any]]
    # What the stack's monitoring (components/monitoring.py) watches of the built component: its state
    # machines, dead-letter queues, Glue jobs, Batch job definitions, quarantine ratios and freshness.
    watch: Callable[[Component, Settings], PipelineWatch]
    # Whether it runs jobs on the shared Batch compute (the platform builds it only if one does).
    needs_batch: bool = False
    # The database role and schema it loads the warehouse with, if it does (components/warehouse_access.py).
    warehouse_loader: Callable[[Settings], Loader] | None = None


def batch_run_minutes(job: BatchJobArgs) -> int:
    """The longest a Batch job's run may take: every attempt its full timeout."""
    return job.timeout_minutes * job.retry_attempts


def glue_run_minutes(job: GlueJobArgs) -> int:
    """The longest a Glue job's run may take: the run and each of its retries their full timeout."""
    return job.timeout_minutes * (1 + job.max_retries)
