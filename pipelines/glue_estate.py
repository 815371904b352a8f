"""What every Glue pipeline shares: the lake it reads and writes, where scripts go, and the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.compute import GlueJobArgs
from components.config import GlueConfig
from components.storage import Lake, LakeZone
from components.warehouse import CrawlerArgs

GLUE_SCRIPTS = Path(__file__).resolve().parent.parent / "glue_scripts"
JOB_RUNTIME = Path(__file__).resolve().parent.parent / "job_runtime"


@dataclass(frozen=True, kw_only=True)
class GlueEstate:
    glue: GlueConfig
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The lake's key encrypts the jobs' output and logs; scripts are uploaded to its scripts zone.
    lake: Lake
    # The Glue Data Catalog database the crawlers write tables to.
    catalog_database: pulumi.Input[str]
    # Retention of every job's and crawler's log groups.
    log_retention_days: int = 30

    def job(
        self,
        script: str,
        arguments: dict[str, pulumi.Input[str]],
        role_statements: list[dict[str, Any]],
        *,
        pipeline: str,
    ) -> GlueJobArgs:
        """A Glue job of `pipeline` (its registry name) running glue_scripts/<script> (with glue_common.py and
        job_runtime/) at the stack's Glue size."""
        return GlueJobArgs(
            account_id=self.account_id,
            region=self.region,
            pipeline=pipeline,
            kms_key_arn=self.lake.key_arn,
            script_path=str(GLUE_SCRIPTS / script),
            extra_py_files=(str(GLUE_SCRIPTS / "glue_common.py"), str(JOB_RUNTIME)),
            scripts_bucket=self.lake.scripts.name,
            scripts_bucket_arn=self.lake.scripts.arn,
            arguments=arguments,
            role_statements=role_statements,
            worker_type=self.glue.worker_type,
            number_of_workers=self.glue.workers,
            timeout_minutes=self.glue.timeout_minutes,
            log_retention_days=self.log_retention_days,
        )

    def crawler(
        self,
        zone: LakeZone,
        prefix: str,
        table_prefix: str,
        *,
        table_per_folder: bool = False,
        csv_with_header: bool = False,
    ) -> CrawlerArgs:
        """A crawler cataloging s3://<zone's bucket>/<prefix> into the estate's database (see CrawlerArgs)."""
        return CrawlerArgs(
            account_id=self.account_id,
            region=self.region,
            kms_key_arn=self.lake.key_arn,
            database_name=self.catalog_database,
            bucket_name=zone.name,
            bucket_arn=zone.arn,
            prefix=prefix,
            table_prefix=table_prefix,
            table_per_folder=table_per_folder,
            csv_with_header=csv_with_header,
            log_retention_days=self.log_retention_days,
        )
