"""COVID-19 star schema. On its schedule a Step Functions state machine runs, in order:

  1. `copy-datasets` (Batch, the estate's jobs image): the configured datasets of the source bucket
     (the public COVID-19 data lake by default) into s3://<raw>/covid/landing/<dataset>/, copying
     only objects whose source ETag or size changed;
  2. a crawler catalogs each landing dataset as table `covid_landing_<dataset>` (CSV with header): the
     public datasets' schema is not ours, so it recrawls everything each run (new files in a folder it
     crawled before, new columns and new datasets are all seen);
  3. Athena stages each dataset: `UNLOAD (SELECT ...) TO s3://<processed>/scratch/covid/staging/
     <execution>/<dataset>/` as Parquet (pipelines/covid_staging.py; a fresh folder per execution,
     because UNLOAD needs an empty location; the lake expires scratch/ after a week);
  4. the Glue job `covid_clean` types, de-duplicates and keys the staged data into the star schema's
     tables at s3://<curated>/covid/curated/<table>/ (Parquet), quarantining bad rows with reasons;
  5. one Redshift Data API transaction (pipelines/covid_star_schema.py) creates the star schema's tables
     if missing (in the schema the stack created) and, per table, COPYs the curated Parquet into a temp
     stage and MERGEs it: reruns leave the same tables.
Failures are announced on the alerts topic, successes on the notifications topic (when the stack has
one). The SQL of steps 3 and 5 is generated here, so a change to it shows in `pulumi preview`. The
curated tables' schema is ours (job_runtime.contracts.COVID_STAR_TABLES): the stack defines them in the
catalog as `covid_<table>` (CatalogTable), queryable in Athena as soon as the clean job has written
them, no crawl.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.aws_limits import schedule_expression_problem
from components.compute import BatchJob, BatchJobArgs, GlueJob
from components.config import (
    SQL_IDENTIFIER,
    Check,
    ConfigSection,
    Setting,
    check_quarantine_ratio,
    check_run_timeout,
    quarantine_ratio_setting,
    ratio,
    run_timeout_seconds,
    run_timeout_setting,
)
from components.iam import hadoop_directories, list_buckets, statement
from components.monitoring import DeadLetterQueue, PipelineWatch
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
from components.storage import SCRATCH_PREFIX
from components.warehouse import CatalogTable, CatalogTableArgs, Crawler, data_api_statements
from components.warehouse_access import Loader, db_roles_tag, loader_role
from pipelines import covid_staging, covid_star_schema
from pipelines.platform import Pipeline, Platform, batch_run_minutes, glue_run_minutes

LANDING_PREFIX = "covid/landing/"
# Athena's staging output is read once by the clean job: the lake's scratch area expires it.
STAGING_PREFIX = f"{SCRATCH_PREFIX}covid/staging/"
CURATED_PREFIX = "covid/curated/"
# The catalog table of each curated (star schema) table: covid_<table>.
CURATED_TABLE_PREFIX = "covid_"
QUARANTINE_PREFIX = "quarantine/covid/"
EXECUTION = "EXECUTIONNAME"  # stands for $$.Execution.Name in generated SQL, replaced by a States.Format slot
ATHENA_API_ERRORS = ("Athena.TooManyRequestsException", "Athena.InternalServerException")
WAREHOUSE_ROLE = loader_role("covid19")
DATA_API_ERRORS = ("RedshiftData.ActiveStatementsExceededException", "RedshiftData.InternalServerException")
# The polled steps give up after this long: the landing crawl and the star schema load.
CRAWL_MAX_WAIT_SECONDS = 3600
LOAD_MAX_WAIT_SECONDS = 3600
# Athena cancels a DML query (the staging UNLOADs) after 30 minutes unless the account raised its "DML query
# timeout" quota (Athena service quotas: https://docs.aws.amazon.com/athena/latest/ug/service-limits.html).
ATHENA_QUERY_MINUTES = 30
# Each dataset the clean job knows (job_runtime.contracts.COVID_DATASETS; a test keeps them equal), with
# the setting naming its prefix in the source bucket.
COVID_DATASET_KEYS = {
    "cases": "covidCasesPrefix",
    "testing": "covidTestingPrefix",
    "county_population": "covidCountyPopulationPrefix",
    "state_abbreviations": "covidStateAbbreviationsPrefix",
}


@dataclass(frozen=True)
class CovidConfig:
    source_bucket: str
    source_region: str
    # dataset name -> key prefix in the source bucket
    datasets: dict[str, str]
    schedule: str
    warehouse_schema: str
    # The state machine's TimeoutSeconds setting in minutes (0: derived from its steps' bounds).
    run_timeout_minutes: int
    quarantine_alarm_ratio: float


SETTINGS = (
    Setting(
        "covidSourceBucket",
        "string",
        "covid19-lake",
        "Bucket the COVID-19 copy step reads (the public AWS COVID-19 data lake by default)",
    ),
    Setting("covidSourceRegion", "string", "us-east-2", "Region of covidSourceBucket"),
    Setting(
        "covidCasesPrefix",
        "string",
        "enigma-jhu/csv/",
        "Prefix of the Johns Hopkins cases dataset in covidSourceBucket",
    ),
    Setting(
        "covidTestingPrefix",
        "string",
        "rearc-covid-19-testing-data/csv/states_daily/",
        "Prefix of the US states daily testing dataset in covidSourceBucket",
    ),
    Setting(
        "covidCountyPopulationPrefix",
        "string",
        "static-datasets/csv/CountyPopulation/",
        "Prefix of the US county population dataset in covidSourceBucket",
    ),
    Setting(
        "covidStateAbbreviationsPrefix",
        "string",
        "static-datasets/csv/state_abv/",
        "Prefix of the US state abbreviations dataset in covidSourceBucket",
    ),
    Setting(
        "covidSchedule",
        "string",
        "cron(0 6 ? * MON *)",
        "EventBridge Scheduler expression (UTC) of the COVID-19 run (copy, crawl, stage, clean, load)",
    ),
    Setting(
        "covidWarehouseSchema",
        "string",
        "covid",
        "Redshift schema holding the COVID-19 star schema (created if missing)",
    ),
    run_timeout_setting("covid", "covid19"),
    quarantine_ratio_setting("covid", "covid19"),
)


def validate(values: Mapping[str, Any], check: Check) -> None:
    problem = schedule_expression_problem(values["covidSchedule"])
    check(problem is None, "covidSchedule", problem or "")
    check(
        re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", values["covidSourceBucket"]) is not None,
        "covidSourceBucket",
        "must be an S3 bucket name",
    )
    check(
        re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", values["covidSourceRegion"]) is not None,
        "covidSourceRegion",
        "must be an AWS region name such as us-east-2",
    )
    for key in COVID_DATASET_KEYS.values():
        check(
            re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.-]*/)+", values[key]) is not None,
            key,
            "must be a key prefix in the source bucket ending in '/', e.g. enigma-jhu/csv/",
        )
    check(
        SQL_IDENTIFIER.fullmatch(values["covidWarehouseSchema"]) is not None,
        "covidWarehouseSchema",
        "must be a lower-case SQL identifier",
    )
    check_run_timeout(values, check, "covidRunTimeoutMinutes")
    check_quarantine_ratio(values, check, "covidQuarantineAlarmRatio")


def parse(values: Mapping[str, Any]) -> CovidConfig:
    return CovidConfig(
        source_bucket=values["covidSourceBucket"],
        source_region=values["covidSourceRegion"],
        datasets={name: values[key] for name, key in COVID_DATASET_KEYS.items()},
        schedule=values["covidSchedule"],
        warehouse_schema=values["covidWarehouseSchema"],
        run_timeout_minutes=values["covidRunTimeoutMinutes"],
        quarantine_alarm_ratio=ratio(values["covidQuarantineAlarmRatio"]),
    )


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


def curated_table(database: pulumi.Input[str], curated_bucket: pulumi.Input[str], table: str) -> CatalogTableArgs:
    """The Glue table over one curated table's Parquet (`<curated>/covid/curated/<table>/`, unpartitioned):
    the contract's columns in the clean job's order, with their Hive types."""
    contract = covid_star_schema.TABLES[table]
    return CatalogTableArgs(
        database=database,
        name=CURATED_TABLE_PREFIX + table,
        location=pulumi.Output.concat("s3://", curated_bucket, "/", CURATED_PREFIX, table, "/"),
        columns=contract.hive_columns,
        description=f"COVID-19 star schema: {table}, written by the covid_clean Glue job",
    )


def load_sqls(schema: str, curated_bucket: str, iam_role: str) -> list[str]:
    """The warehouse transaction: the star schema's create/COPY/MERGE statements. The schema itself is the
    stack's (components/warehouse_access.py): the loading role may create tables in it, not schemas."""
    return covid_star_schema.redshift_load_statements(schema, f"s3://{curated_bucket}/{CURATED_PREFIX}", iam_role)


@dataclass(frozen=True, kw_only=True)
class CovidArgs:
    settings: CovidConfig
    # Lands the copies in the raw zone, stages in the processed zone, curates into the curated zone;
    # the copy job runs on the shared Batch compute, the staging in the Athena workgroup (results in the
    # query-results zone), the load in the warehouse with COPY run by Redshift's own role.
    platform: Platform


class CovidPipeline(pulumi.ComponentResource):
    """The COVID-19 pipeline end to end (see module docstring); each step of the run is built by the
    method of the same name, then `machine` runs them in order and `schedule` starts it."""

    state_machine_arn: pulumi.Output[str]
    # Star schema table (dim_date...) -> its catalog table's name (covid_dim_date...).
    curated_table_names: dict[str, pulumi.Output[str]]
    copy_job_definition_name: pulumi.Output[str]
    clean_job_name: pulumi.Output[str]
    # The schedule's dead-letter queue: scheduled starts that did not start a run.
    schedule_dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: CovidArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:Covid", name, None, opts)
        self._name, self._settings, self._platform = name, args.settings, args.platform
        self._child = pulumi.ResourceOptions(parent=self)
        # The longest each step may take, in minutes, as the steps are built (the run's derived timeout).
        self._step_minutes: dict[str, int] = {}
        copy = self.copy()
        landing_crawler = self.landing_catalog()
        stage_steps = self.staging()
        clean = self.clean()
        curated = self.curated_catalog()
        load = self.load()
        machine = self.machine(copy, landing_crawler, stage_steps, clean, load)
        schedule = self.schedule(machine)
        self.state_machine_arn = machine.state_machine_arn
        self.curated_table_names = {table: t.table_name for table, t in curated.items()}
        self.copy_job_definition_name = copy.job_definition_name
        self.clean_job_name = clean.job_name
        self.schedule_dead_letter_queue_name = schedule.dead_letter_queue_name
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "curated_table_names": self.curated_table_names,
                "copy_job_definition_name": self.copy_job_definition_name,
                "clean_job_name": self.clean_job_name,
                "schedule_dead_letter_queue_name": self.schedule_dead_letter_queue_name,
            }
        )

    def copy(self) -> BatchJob:
        """1. The Batch job copying the source datasets into the landing zone."""
        s, p = self._settings, self._platform
        raw = p.lake.raw
        source_arn = f"arn:aws:s3:::{s.source_bucket}"
        args = BatchJobArgs(
            pipeline="covid19",
            account_id=p.account_id,
            region=p.region,
            compute=p.jobs.job_environment,
            command=["copy-datasets"],
            environment={
                "COPY_SOURCE_BUCKET": s.source_bucket,
                "COPY_SOURCE_REGION": s.source_region,
                "COPY_DATASETS": json.dumps(s.datasets, sort_keys=True),
                "COPY_TARGET": raw.uri(LANDING_PREFIX),
            },
            job_role_statements=[
                statement(["s3:ListBucket"], [source_arn]),
                statement(["s3:GetObject"], [f"{source_arn}/{prefix}*" for prefix in sorted(set(s.datasets.values()))]),
                raw.grant(["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"], LANDING_PREFIX),
                list_buckets(raw.arn),
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [p.lake.key_arn]),
            ],
            assign_public_ip=p.assign_public_ip,
            # Server-side copies: the container only lists and calls CopyObject.
            vcpu=0.25,
            memory_mib=1024,
            timeout_minutes=120,
        )
        self._step_minutes["copy"] = batch_run_minutes(args)
        return BatchJob(f"{self._name}-copy", args, opts=self._child)

    def landing_catalog(self) -> Crawler:
        """2. The crawler cataloging each landing dataset (CSV with header) as covid_landing_<dataset>.

        The copy step adds and replaces files in folders crawled before: crawling only new folders would
        never see them, nor a new dataset's table (Glue adds no table after an incremental crawler's
        first crawl), so every crawl reads everything again and applies the schema it finds."""
        crawler = self._platform.glue.crawler(
            self._platform.lake.raw,
            LANDING_PREFIX,
            covid_staging.RAW_TABLE_PREFIX,
            table_per_folder=True,
            csv_with_header=True,
        )
        return Crawler(
            f"{self._name}-landing-crawler",
            dataclasses.replace(crawler, recrawl_everything=True),
            opts=self._child,
        )

    def staging(self) -> list[TaskStep]:
        """3. One Athena UNLOAD per dataset into this execution's staging folder."""
        p = self._platform
        processed = pulumi.Output.from_input(p.lake.processed.name)
        self._step_minutes["staging"] = ATHENA_QUERY_MINUTES * len(covid_staging.DATASETS)
        return [
            TaskStep(
                name=f"Stage{dataset.title().replace('_', '')}",
                resource="arn:aws:states:::athena:startQueryExecution.sync",
                parameters={
                    "QueryString.$": processed.apply(functools.partial(stage_query, dataset=dataset)),
                    "QueryExecutionContext": {"Database": p.catalog.database_name},
                    "WorkGroup": p.catalog.workgroup_name,
                },
                retry_on=ATHENA_API_ERRORS,
            )
            for dataset in covid_staging.DATASETS
        ]

    def clean(self) -> GlueJob:
        """4. The Glue job typing, de-duplicating and keying the staged data into the curated zone."""
        p = self._platform
        processed, curated = p.lake.processed, p.lake.curated
        args = p.glue.job(
            "covid_clean.py",
            pipeline="covid19",
            arguments={
                "--curated_path": curated.uri(CURATED_PREFIX),
                "--quarantine_path": processed.uri(QUARANTINE_PREFIX),
            },
            role_statements=[
                processed.write(STAGING_PREFIX, QUARANTINE_PREFIX),
                curated.write(CURATED_PREFIX),
                list_buckets(processed.arn, curated.arn),
                *hadoop_directories(
                    reads=[(processed.arn, STAGING_PREFIX)],
                    writes=[(curated.arn, CURATED_PREFIX), (processed.arn, QUARANTINE_PREFIX)],
                ),
            ],
        )
        self._step_minutes["clean"] = glue_run_minutes(args)
        return GlueJob(f"{self._name}-clean", args, opts=self._child)

    def curated_catalog(self) -> dict[str, CatalogTable]:
        """The catalog tables of the curated star schema (covid_<table>), defined by the stack: no crawl."""
        p = self._platform
        return {
            table: CatalogTable(
                f"{self._name}-{table.replace('_', '-')}-catalog",
                curated_table(p.catalog.database_name, p.lake.curated.name, table),
                opts=self._child,
            )
            for table in covid_star_schema.TABLES
        }

    def load(self) -> PollStep:
        """5. The Data API transaction loading the star schema, polled until it finishes."""
        s, p = self._settings, self._platform
        sqls = pulumi.Output.all(p.lake.curated.name, p.warehouse.copy_role_arn).apply(
            lambda values: load_sqls(s.warehouse_schema, values[0], values[1])
        )
        self._step_minutes["load"] = LOAD_MAX_WAIT_SECONDS // 60
        return PollStep(
            name="LoadStarSchema",
            start=TaskStep(
                name="LoadStarSchema",
                resource="arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement",
                parameters={
                    "WorkgroupName": p.warehouse.workgroup_name,
                    "Database": p.warehouse.database,
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
            max_wait_seconds=LOAD_MAX_WAIT_SECONDS,
            wait_seconds=15,
        )

    def machine(
        self,
        copy: BatchJob,
        landing_crawler: Crawler,
        stage_steps: list[TaskStep],
        clean: GlueJob,
        load: PollStep,
    ) -> StateMachine:
        """The state machine running steps 1-5 in order, with the rights each step needs."""
        p = self._platform
        raw, processed, results = p.lake.raw, p.lake.processed, p.lake.query_results
        account, region = pulumi.Output.from_input(p.account_id), pulumi.Output.from_input(p.region)
        processed_name = pulumi.Output.from_input(processed.name)
        database = p.catalog.database_name
        self._step_minutes["crawl"] = CRAWL_MAX_WAIT_SECONDS // 60
        definition = pipeline_definition(
            "covid19",
            [
                batch_job_step("CopySources", "copy-datasets", p.jobs.job_queue_arn, copy.job_definition_arn),
                crawl_step("CatalogLanding", landing_crawler.crawler_name, max_wait_seconds=CRAWL_MAX_WAIT_SECONDS),
                *stage_steps,
                glue_job_step(
                    "CleanStagedData",
                    clean.job_name,
                    {"--staging_path.$": processed_name.apply(lambda bucket: execution_format(staging_uri(bucket)))},
                ),
                load,
            ],
            alerts_topic_arn=p.alerts_topic_arn,
            notifications_topic_arn=p.notifications_topic_arn,
            timeout_seconds=run_timeout_seconds(self._settings.run_timeout_minutes, sum(self._step_minutes.values())),
        )
        catalog = pulumi.Output.concat("arn:aws:glue:", region, ":", account, ":")
        return StateMachine(
            f"{self._name}-flow",
            StateMachineArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                definition=definition,
                log_retention_days=p.log_retention_days,
                # The star schema load signs in to Redshift with this pipeline's database role.
                role_tags=db_roles_tag(WAREHOUSE_ROLE),
                role_statements=[
                    *batch_job_statements(p.account_id, p.region, p.jobs.job_queue_arn, [copy.job_definition_name]),
                    *glue_job_statements([clean.job_arn]),
                    statement(["glue:GetCrawler", "glue:StartCrawler"], [landing_crawler.crawler_arn]),
                    # Athena runs the staging UNLOADs with this role's rights: the workgroup, the landing
                    # tables' catalog entries and data, the staging folder and the results bucket.
                    statement(
                        ["athena:GetQueryExecution", "athena:StartQueryExecution", "athena:StopQueryExecution"],
                        [
                            pulumi.Output.concat(
                                "arn:aws:athena:", region, ":", account, ":workgroup/", p.catalog.workgroup_name
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
                            pulumi.Output.concat(catalog, "database/", database),
                            pulumi.Output.concat(catalog, "table/", database, "/", covid_staging.RAW_TABLE_PREFIX, "*"),
                        ],
                    ),
                    raw.read(LANDING_PREFIX),
                    processed.grant(["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"], STAGING_PREFIX),
                    results.grant(["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"], "athena/"),
                    statement(["s3:GetBucketLocation", "s3:ListBucket"], [raw.arn, processed.arn, results.arn]),
                    *data_api_statements(p.warehouse.workgroup_arn),
                ],
            ),
            opts=self._child,
        )

    def schedule(self, machine: StateMachine) -> Schedule:
        """What starts the run: the stack's schedule (UTC)."""
        p = self._platform
        return Schedule(
            f"{self._name}-schedule",
            ScheduleArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                expression=self._settings.schedule,
                timezone="UTC",
                state_machine_arn=machine.state_machine_arn,
                state_machine_kms_key_arn=p.lake.key_arn,
                input=json.dumps({}),
            ),
            opts=self._child,
        )


def watch(component: CovidPipeline, settings: CovidConfig) -> PipelineWatch:
    """The state machine, the schedule's dead-letter queue, the copy and clean jobs, the clean's quarantine."""
    return PipelineWatch(
        pipeline="covid19",
        state_machine_arns=(component.state_machine_arn,),
        dead_letter_queues=(DeadLetterQueue.of_schedule(component.schedule_dead_letter_queue_name, "covid19"),),
        glue_job_names=(component.clean_job_name,),
        batch_job_definition_names=(component.copy_job_definition_name,),
        quarantine_jobs=("covid_clean",),
        quarantine_ratio_threshold=settings.quarantine_alarm_ratio,
    )


PIPELINE: Pipeline[CovidConfig, CovidPipeline] = Pipeline(
    name="covid19",
    config=ConfigSection(settings=SETTINGS, validate=validate, parse=parse),
    component=lambda s, p, opts: CovidPipeline("covid", CovidArgs(settings=s, platform=p), opts),
    outputs=lambda c, s, p: {
        "covid_state_machine_arn": c.state_machine_arn,
        "covid_warehouse_schema": s.warehouse_schema,
        # The curated star schema in glue_database, for Athena: covid_dim_date_table, ...
        **{f"covid_{table}_table": name for table, name in c.curated_table_names.items()},
    },
    watch=watch,
    needs_batch=True,
    warehouse_loader=lambda s: Loader(WAREHOUSE_ROLE, s.warehouse_schema),
)
