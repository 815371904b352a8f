"""The sales and sensor time-series pipelines under Pulumi mocks, checked with independent
tools where one exists: moto's EventBridge pattern matcher and the npm `asl-validator`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sensor_timeseries as sensor_job  # glue_scripts/sensor_timeseries.py, the job
from moto.events.models import EventPattern

from components.compute import GLUE_PACKAGE_BUILD_DIR, content_hash, python_package_zip
from components.config import ConfigError
from components.orchestration import GLUE_EVENT_BATCH_WINDOW_SECONDS
from components.warehouse import crawler_configuration
from pipelines import registry, sensor_timeseries
from pipelines.glue_estate import GLUE_SCRIPTS, JOB_RUNTIME
from tests.infra.harness import ACCOUNT, REGION, ROOT, Estate, build_estate

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
SUFFIX = "20260101000000000000000001"  # the mocks' stand-in for the provider's random name suffix
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def bucket(estate: Estate, zone: str) -> str:
    return estate.one("aws:s3/bucket:Bucket", f"lake-{zone}").inputs["bucketPrefix"] + SUFFIX


def glue_name(estate: Estate, typ: str, resource: str) -> str:
    return estate.named(resource).inputs["name"]


# --- the sales workflow ---------------------------------------------------------------------------


def test_sales_workflow_runs_crawl_convert_load_each_only_after_the_previous_succeeded(dev: Estate) -> None:
    workflow = dev.one("aws:glue/workflow:Workflow").inputs
    assert workflow["name"] == "dataplatform-dev-sales-workflow"
    assert workflow["maxConcurrentRuns"] == 1
    triggers = dev.of_type("aws:glue/trigger:Trigger")
    assert {t.inputs["workflowName"] for t in triggers} == {workflow["name"]}
    start = [t.inputs for t in triggers if t.inputs["type"] == "EVENT"]
    assert len(start) == 1
    # By default a single upload starts a run a minute after its event (salesBatchWindowSeconds).
    assert start[0]["eventBatchingConditions"] == [{"batchSize": 100, "batchWindow": 60}]

    def started_by(trigger: dict[str, Any]) -> str:
        (action,) = trigger["actions"]
        return action.get("crawlerName") or action["jobName"]

    # Walk the chain from the start trigger: each step's success is the only condition of the next.
    chain = [started_by(start[0])]
    conditional = [t.inputs for t in triggers if t.inputs["type"] == "CONDITIONAL"]
    assert all(t["startOnCreation"] is True for t in conditional)
    while True:
        following = [t for t in conditional if any(chain[-1] in c.values() for c in t["predicate"]["conditions"])]
        if not following:
            break
        (trigger,) = following
        (condition,) = trigger["predicate"]["conditions"]
        assert condition["logicalOperator"] == "EQUALS"
        assert condition.get("crawlState", condition.get("state")) == "SUCCEEDED"
        chain.append(started_by(trigger))
    # No crawl of the Parquet: its table is the stack's and the convert job registers its partitions.
    assert chain == [
        "dataplatform-dev-sales-input-crawler",
        "dataplatform-dev-sales-convert",
        "dataplatform-dev-sales-load",
    ]
    assert len(conditional) == 2  # every trigger is on the chain: nothing runs outside it
    crawlers = {c.inputs["name"] for c in dev.of_type("aws:glue/crawler:Crawler") if "sales" in c.name}
    jobs = {j.inputs["name"] for j in dev.of_type("aws:glue/job:Job") if "sales" in j.name}
    assert set(chain) == crawlers | jobs


def test_the_batch_window_is_a_setting_within_what_glue_allows() -> None:
    """Glue's EventBatchingCondition: BatchWindow 1 to 900 seconds, counted from the first event
    (https://docs.aws.amazon.com/glue/latest/webapi/API_EventBatchingCondition.html). The stack refuses
    anything else before Glue would."""
    assert GLUE_EVENT_BATCH_WINDOW_SECONDS == (1, 900)
    for value in ("0", "901"):
        with pytest.raises(ConfigError) as raised:
            registry.load_stack_config({"dataplatform:salesBatchWindowSeconds": value}, "dataplatform", "dev", "x-1")
        assert raised.value.problems == [
            f"dataplatform:salesBatchWindowSeconds = {value} is invalid: must be 1 to 900 seconds "
            "(Glue's EventBatchingCondition BatchWindow)"
        ]
    for value, window in (("1", 1), ("900", 900)):
        cfg = registry.load_stack_config({"dataplatform:salesBatchWindowSeconds": value}, "dataplatform", "dev", "x-1")
        assert cfg.pipeline_settings["sales"].batch_window_seconds == window


@pytest.fixture(scope="module")
def configured() -> Estate:
    """The dev stack with every sales setting changed from its default."""
    return build_estate(
        "dev",
        "Pulumi.dev.yaml",
        {
            "dataplatform:salesBatchWindowSeconds": "15",
            "dataplatform:salesTable": "orders",
            "dataplatform:salesColumns": '["order_id", "order_date", "quantity", "unit_price", "notes"]',
        },
    )


def test_window_table_and_columns_follow_the_settings(dev: Estate, configured: Estate) -> None:
    start = [t.inputs for t in configured.of_type("aws:glue/trigger:Trigger") if t.inputs["type"] == "EVENT"]
    assert [t["eventBatchingConditions"] for t in start] == [[{"batchSize": 100, "batchWindow": 15}]]
    load = configured.named("sales-load-job").inputs["defaultArguments"]
    assert load["--table"] == "orders"
    assert configured.named("sales-convert-job").inputs["defaultArguments"]["--columns"] == (
        "order_id,order_date,quantity,unit_price,notes"
    )
    # The catalog table's columns follow the selection: a change shows in `pulumi preview`.
    table = configured.one("aws:glue/catalogTable:CatalogTable", "sales").inputs
    assert table["storageDescriptor"]["columns"] == [
        {"name": "order_id", "type": "string"},
        {"name": "quantity", "type": "int"},
        {"name": "unit_price", "type": "decimal(12,2)"},
        {"name": "notes", "type": "string"},
    ]
    assert dev.named("sales-load-job").inputs["defaultArguments"]["--table"] == "sales_data_table"


def test_the_sales_parquet_is_a_catalog_table_of_the_stack(dev: Estate) -> None:
    """The converted Parquet is queryable in Athena right after the convert step: the table is the
    stack's (no crawl), its columns are what sales_csv_to_parquet writes (tests/jobs/test_sales_csv_to_parquet.py
    reads them back from the job's files), partitioned by the folders it writes,
    order_date=YYYY-MM-DD/source_file=<file>/. source_file values follow no pattern, so there is no
    partition projection: the job registers each partition it writes (Glue BatchCreatePartition)."""
    processed = bucket(dev, "processed")
    table = dev.one("aws:glue/catalogTable:CatalogTable", "sales").inputs
    assert table["name"] == "sales_orders"
    assert table["databaseName"] == "dataplatform_dev_catalog"
    assert table["tableType"] == "EXTERNAL_TABLE"
    assert table["partitionKeys"] == [{"name": "order_date", "type": "date"}, {"name": "source_file", "type": "string"}]
    assert table["parameters"] == {"classification": "parquet", "EXTERNAL": "TRUE"}  # no projection
    descriptor = table["storageDescriptor"]
    assert descriptor["location"] == f"s3://{processed}/sales/parquet/"
    serde = descriptor["serDeInfo"]["serializationLibrary"]
    assert serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert descriptor["columns"] == [
        {"name": "order_id", "type": "string"},
        {"name": "customer_id", "type": "string"},
        {"name": "product_id", "type": "string"},
        {"name": "category", "type": "string"},
        {"name": "region", "type": "string"},
        {"name": "quantity", "type": "int"},
        {"name": "unit_price", "type": "decimal(12,2)"},
        {"name": "discount", "type": "decimal(5,4)"},
    ]
    # The job is told which table to register its partitions in, and may do exactly that.
    arguments = dev.named("sales-convert-job").inputs["defaultArguments"]
    catalog = (arguments["--catalog_database"], arguments["--catalog_table"])
    assert catalog == ("dataplatform_dev_catalog", "sales_orders")
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    statements = json.loads(dev.named("sales-convert-role-policy").inputs["policy"])["Statement"]
    assert [s for s in statements if any(a.startswith("glue:") for a in s["Action"])] == [
        {
            "Effect": "Allow",
            "Action": ["glue:BatchCreatePartition", "glue:BatchDeletePartition", "glue:GetTable"],
            "Resource": [
                f"{glue}catalog",
                f"{glue}database/dataplatform_dev_catalog",
                f"{glue}table/dataplatform_dev_catalog/sales_orders",
            ],
        }
    ]


def s3_event(bucket_name: str, key: str) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket_name}, "object": {"key": key, "size": 10}},
    }


def test_an_upload_under_input_starts_the_workflow_and_nothing_else_does(dev: Estate) -> None:
    raw = bucket(dev, "raw")
    pattern = EventPattern.load(dev.named("sales-trigger-rule").inputs["eventPattern"])  # moto's matcher
    assert pattern.matches_event(s3_event(raw, "sales/input/sample_sales_data.csv"))
    assert pattern.matches_event(s3_event(raw, "sales/input/2024/03/day.csv"))
    assert not pattern.matches_event(s3_event(raw, "sales/output/part-0000.csv"))
    assert not pattern.matches_event(s3_event(raw, "sales/input/readme.txt"))
    assert not pattern.matches_event(s3_event(raw, "render-logs/a.csv"))
    assert not pattern.matches_event(s3_event(bucket(dev, "processed"), "sales/input/a.csv"))
    assert not pattern.matches_event({**s3_event(raw, "sales/input/a.csv"), "detail-type": "Object Deleted"})
    # ...and the render-log rule ignores sales uploads.
    render = EventPattern.load(dev.named("render-logs-trigger-rule").inputs["eventPattern"])
    assert not render.matches_event(s3_event(raw, "sales/input/a.csv"))

    workflow_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:workflow/dataplatform-dev-sales-workflow"
    target = dev.named("sales-trigger-target").inputs
    assert target["arn"] == workflow_arn
    assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 10}
    assert json.loads(dev.named("sales-trigger-role-policy").inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": ["glue:notifyEvent"], "Resource": [workflow_arn]}
    ]


def glue_event(kind: str, name: str, state: str, **detail: str) -> dict[str, Any]:
    field = "jobName" if kind == "job" else "crawlerName"
    return {
        "version": "0",
        "id": "5b0e4f0a",
        "source": "aws.glue",
        "detail-type": "Glue Job State Change" if kind == "job" else "Glue Crawler State Change",
        "time": "2026-11-22T10:00:00Z",
        "region": REGION,
        "account": ACCOUNT,
        "detail": {field: name, "state": state, **detail},
    }


def transform(target: dict[str, Any], event: dict[str, Any]) -> str:
    """EventBridge's input transformer, for the `$.a.b` paths used here."""
    values = {}
    for placeholder, path in target["inputTransformer"]["inputPaths"].items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        values[placeholder] = value
    template = target["inputTransformer"]["inputTemplate"]
    return json.loads(re.sub(r"<(\w+)>", lambda m: str(values[m.group(1)]), template))


def topic_arn(estate: Estate, kind: str) -> str:
    prefix = estate.one("aws:sns/topic:Topic", f"topics-{kind}").inputs["namePrefix"]
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:{prefix}{SUFFIX}"


SALES_STEPS = [
    ("crawler", "dataplatform-{stack}-sales-input-crawler", "Succeeded", ["Failed"]),
    ("job", "dataplatform-{stack}-sales-convert", "SUCCEEDED", ["FAILED", "TIMEOUT", "STOPPED", "ERROR"]),
    ("job", "dataplatform-{stack}-sales-load", "SUCCEEDED", ["FAILED", "TIMEOUT", "STOPPED", "ERROR"]),
]


def test_sales_failures_go_to_alerts_and_successes_to_notifications_only_where_that_topic_exists(
    dev: Estate, prod: Estate
) -> None:
    """Each crawler and job has a rule for its failed runs, to the alerts topic, and (dev: successNotifications
    true) one for its successful runs, to the notifications topic; prod (false) has no success rules at all.
    The states: "Glue Job State Change" is sent for SUCCEEDED, FAILED, TIMEOUT and STOPPED, "Glue Crawler
    State Change" for Started, Succeeded and Failed (AWS Glue, "Automating AWS Glue with EventBridge",
    https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html)."""
    for estate, with_news in ((dev, True), (prod, False)):
        rules = sorted(r.name for r in estate.of_type("aws:cloudwatch/eventRule:EventRule") if "sales-notify" in r.name)
        outcomes = ["failed", "succeeded"] if with_news else ["failed"]
        assert rules == sorted(f"sales-notify-{i}-{o}" for i in range(1, 4) for o in outcomes)
        for i, (kind, template, ok, failures) in enumerate(SALES_STEPS, start=1):
            name = template.format(stack=estate.stack)
            others = [t.format(stack=estate.stack) for _, t, _, _ in SALES_STEPS if t != template]
            failed = EventPattern.load(estate.named(f"sales-notify-{i}-failed").inputs["eventPattern"])
            assert all(failed.matches_event(glue_event(kind, name, state)) for state in failures), name
            assert not failed.matches_event(glue_event(kind, name, ok)), name
            assert not failed.matches_event(glue_event(kind, name, "RUNNING" if kind == "job" else "Started")), name
            assert not any(failed.matches_event(glue_event(kind, other, failures[0])) for other in others), name
            assert estate.named(f"sales-notify-{i}-failed-target").inputs["arn"] == topic_arn(estate, "alerts")
            if with_news:
                succeeded = EventPattern.load(estate.named(f"sales-notify-{i}-succeeded").inputs["eventPattern"])
                assert succeeded.matches_event(glue_event(kind, name, ok)), name
                assert not any(succeeded.matches_event(glue_event(kind, name, state)) for state in failures), name
                target = estate.named(f"sales-notify-{i}-succeeded-target").inputs
                assert target["arn"] == topic_arn(estate, "notifications")
        queue_policy = json.loads(estate.named("sales-notify-dlq-policy").inputs["policy"])["Statement"][0]
        assert queue_policy["Condition"]["ArnEquals"]["aws:SourceArn"] == [
            f"arn:aws:events:{REGION}:{ACCOUNT}:rule/" + estate.named(rule).inputs["namePrefix"] + SUFFIX
            for rule in [f"sales-notify-{i}-{o}" for i in range(1, 4) for o in outcomes]
        ]
        for rule in rules:
            target = estate.named(f"{rule}-target").inputs
            assert target["deadLetterConfig"]["arn"].startswith(
                f"arn:aws:sqs:{REGION}:{ACCOUNT}:dataplatform-{estate.stack}-sales-notify-dlq-"
            )


def test_every_sales_crawler_and_job_announces_its_outcome_with_an_actionable_message(dev: Estate) -> None:
    raw, processed = bucket(dev, "raw"), bucket(dev, "processed")
    failure = glue_event(
        "job",
        "dataplatform-dev-sales-convert",
        "FAILED",
        jobRunId="jr_42",
        message="1 of 2 files rejected: s3://raw/sales/input/bad.csv: missing columns quantity",
    )
    assert transform(dev.named("sales-notify-2-failed-target").inputs, failure) == (
        "[sales] step 2/3: Glue job dataplatform-dev-sales-convert FAILED at 2026-11-22T10:00:00Z (run jr_42). "
        "Message: 1 of 2 files rejected: s3://raw/sales/input/bad.csv: missing columns quantity. "
        f"It converts new CSVs from s3://{raw}/sales/input/ (a failure names each rejected file and why); "
        f"rejected rows with reasons are under s3://{processed}/quarantine/sales/, per-file results under "
        f"s3://{processed}/sales/state/converted/ and rejected/; converted rows are in Athena table "
        "dataplatform_dev_catalog.sales_orders. "
        "Logs: CloudWatch log group /aws-glue/jobs/dataplatform-dev-sales-convert/error, stream jr_42-driver."
    )
    crawler_failure = glue_event(
        "crawler", "dataplatform-dev-sales-input-crawler", "Failed", message="Crawler Failed", errorMessage="denied"
    )
    # The group a crawler with CloudWatch-encrypting security configuration writes to (test_aws_rules.py).
    crawler_group = dev.named("sales-input-crawler-logs").inputs["name"]
    assert crawler_group == (
        "/aws-glue/crawlers-role/"
        + dev.named("sales-input-crawler-role").inputs["namePrefix"]
        + SUFFIX
        + "-dataplatform-dev-sales-input-crawler-security"
    )
    assert transform(dev.named("sales-notify-1-failed-target").inputs, crawler_failure) == (
        "[sales] step 1/3: Glue crawler dataplatform-dev-sales-input-crawler Failed at 2026-11-22T10:00:00Z. "
        f"Message: Crawler Failed denied. It catalogs the CSVs in s3://{raw}/sales/input/ "
        f"Logs: CloudWatch log group {crawler_group}, stream dataplatform-dev-sales-input-crawler."
    )
    # A success reads the same way, on the notifications topic.
    success = glue_event("job", "dataplatform-dev-sales-load", "SUCCEEDED", jobRunId="jr_43", message="done")
    assert transform(dev.named("sales-notify-3-succeeded-target").inputs, success).startswith(
        "[sales] step 3/3: Glue job dataplatform-dev-sales-load SUCCEEDED at 2026-11-22T10:00:00Z (run jr_43). "
        "Message: done. It merges converted files into Redshift table analytics.public.sales_data_table"
    )


def test_crawlers_do_not_fight_the_jobs(dev: Estate) -> None:
    """Glue, "Incremental crawls" (https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html):
    crawling new folders only (CRAWL_NEW_FOLDERS_ONLY) forces schema changes and deletions to be only
    logged, and such a crawl never looks again at a folder it crawled, so a file added there later is
    never seen. The sales uploads all land in folders crawled before: the input crawler recrawls
    everything (RecrawlPolicy CRAWL_EVERYTHING, https://docs.aws.amazon.com/glue/latest/webapi/API_RecrawlPolicy.html)
    and may then apply schema changes (SchemaChangePolicy UPDATE_IN_DATABASE), new columns merged
    into its one table; deletions stay logged, so an emptied folder never drops the table."""
    raw = bucket(dev, "raw")
    database = dev.one("aws:glue/catalogDatabase:CatalogDatabase").inputs["name"]
    crawlers = {c.name: c.inputs for c in dev.of_type("aws:glue/crawler:Crawler")}
    sales_crawlers = {name: c for name, c in crawlers.items() if name.startswith("sales")}
    assert list(sales_crawlers) == ["sales-input-crawler-crawler"]
    crawler = sales_crawlers["sales-input-crawler-crawler"]
    assert crawler["s3Targets"] == [{"path": f"s3://{raw}/sales/input/", "exclusions": []}]
    assert crawler["recrawlPolicy"] == {"recrawlBehavior": "CRAWL_EVERYTHING"}
    assert crawler["schemaChangePolicy"] == {"updateBehavior": "UPDATE_IN_DATABASE", "deleteBehavior": "LOG"}
    assert crawler["databaseName"] == database and crawler["tablePrefix"] == "sales_"
    assert "schedule" not in crawler  # the workflow starts it
    assert json.loads(crawler["configuration"]) == {
        "Version": 1.0,
        "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas", "TableLevelConfiguration": 3},
        "CrawlerOutput": {
            "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
            "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
        },
        "CreatePartitionIndex": True,
    }
    for name, c in crawlers.items():
        # What Glue requires of an incremental crawler, whichever pipeline owns it.
        if c["recrawlPolicy"] == {"recrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}:
            assert c["schemaChangePolicy"] == {"updateBehavior": "LOG", "deleteBehavior": "LOG"}, name
        else:
            assert c["recrawlPolicy"] == {"recrawlBehavior": "CRAWL_EVERYTHING"}, name
            assert c["schemaChangePolicy"]["deleteBehavior"] == "LOG", name
        security = dev.named(name.removesuffix("-crawler") + "-security").inputs
        assert c["securityConfiguration"] == security["name"]
        assert security["encryptionConfiguration"]["cloudwatchEncryption"]["kmsKeyArn"] == KEY
    assert json.loads(crawler_configuration("a/b/c/"))["Grouping"]["TableLevelConfiguration"] == 4


# --- the Glue jobs --------------------------------------------------------------------------------


def test_every_glue_job_runs_the_script_and_module_its_component_uploaded(dev: Estate) -> None:
    scripts = bucket(dev, "scripts")
    uploads = dev.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    objects = {f"s3://{o.inputs['bucket']}/{o.inputs['key']}": o for o in uploads}
    expected_scripts = {
        "dataplatform-dev-sales-convert": "sales_csv_to_parquet.py",
        "dataplatform-dev-sales-load": "sales_load_warehouse.py",
        "dataplatform-dev-sensor-job": "sensor_timeseries.py",
        "dataplatform-dev-gharchive-events": "gharchive_events.py",
        "dataplatform-dev-covid-clean": "covid_clean.py",
    }
    jobs = {j.inputs["name"]: j.inputs for j in dev.of_type("aws:glue/job:Job")}
    assert set(jobs) == set(expected_scripts)
    used = set()
    for name, job in jobs.items():
        script = GLUE_SCRIPTS / expected_scripts[name]
        location = job["command"]["scriptLocation"]
        assert location == f"s3://{scripts}/glue/{script.stem}/{content_hash(script)[:16]}.py", name
        assert objects[location].inputs["source"] == {"file": f"glue_scripts/{script.name}"}, name
        common = GLUE_SCRIPTS / "glue_common.py"
        module = f"s3://{scripts}/glue/{script.stem}/lib/{content_hash(common)[:16]}/glue_common.py"
        runtime_zip = python_package_zip(JOB_RUNTIME, GLUE_PACKAGE_BUILD_DIR)
        runtime = f"s3://{scripts}/glue/{script.stem}/lib/{content_hash(runtime_zip)[:16]}/job_runtime.zip"
        assert job["defaultArguments"]["--extra-py-files"] == f"{module},{runtime}", name
        assert objects[module].inputs["source"] == {"file": "glue_scripts/glue_common.py"}, name
        assert objects[runtime].inputs["source"] == {"file": os.path.relpath(runtime_zip)}, name
        assert job["glueVersion"] == "5.0" and job["command"]["name"] == "glueetl", name
        assert (job["timeout"], job["maxRetries"], job["workerType"], job["numberOfWorkers"]) == (60, 1, "G.1X", 2)
        assert job["securityConfiguration"] == f"{name}-security", name
        used |= {location, module, runtime}
    assert used == set(objects)  # nothing uploaded that no job runs


def test_glue_job_arguments_point_at_the_lake(dev: Estate) -> None:
    raw, processed = bucket(dev, "raw"), bucket(dev, "processed")
    args = {j.inputs["name"]: j.inputs["defaultArguments"] for j in dev.of_type("aws:glue/job:Job")}
    own = {
        name: {k: v for k, v in a.items() if k not in ("--extra-py-files", "--TempDir") and not k.startswith("--job")}
        for name, a in args.items()
    }
    common = {"--enable-metrics": "true", "--enable-observability-metrics": "true"}
    assert {name: own[name].pop("--custom-logGroup-prefix") for name in own} == {
        name: f"/aws-glue/jobs/{name}" for name in own
    }
    # The Stack and Pipeline dimensions of each job's run metrics (glue_common.start_run).
    assert {name: (own[name].pop("--metrics_stack"), own[name].pop("--metrics_pipeline")) for name in own} == {
        "dataplatform-dev-sales-convert": ("dev", "sales"),
        "dataplatform-dev-sales-load": ("dev", "sales"),
        "dataplatform-dev-sensor-job": ("dev", "sensor-timeseries"),
        "dataplatform-dev-gharchive-events": ("dev", "gharchive"),
        "dataplatform-dev-covid-clean": ("dev", "covid19"),
    }
    assert own == {
        "dataplatform-dev-sales-convert": {
            **common,
            "--input_path": f"s3://{raw}/sales/input/",
            "--output_path": f"s3://{processed}/sales/parquet/",
            "--quarantine_path": f"s3://{processed}/quarantine/sales/",
            "--state_path": f"s3://{processed}/sales/state/",
            "--columns": "order_id,order_date,customer_id,product_id,category,region,quantity,unit_price,discount",
            "--catalog_database": "dataplatform_dev_catalog",
            "--catalog_table": "sales_orders",
        },
        "dataplatform-dev-sales-load": {
            **common,
            "--parquet_path": f"s3://{processed}/sales/parquet/",
            "--stage_path": f"s3://{processed}/sales/stage/",
            "--state_path": f"s3://{processed}/sales/state/",
            "--table": "sales_data_table",
            "--warehouse": "redshift-data",
            "--workgroup": "dataplatform-dev-warehouse",
            "--database": "analytics",
            "--iam_role": f"arn:aws:iam::{ACCOUNT}:role/dataplatform-dev-warehouse-copy-{SUFFIX}",
        },
        "dataplatform-dev-sensor-job": {
            **common,
            "--input_path": f"s3://{raw}/sensor/raw/",
            "--output_path": f"s3://{processed}/sensor/timeseries/",
            "--quarantine_path": f"s3://{processed}/quarantine/sensor/",
            "--state_path": f"s3://{processed}/sensor/state/",
            "--frequency": "1min",
            "--month": "previous",
            # sensorAllowEmptyMonth and sensorMinIntervalsRatio at their defaults.
            "--allow_empty_month": "false",
            "--min_intervals_ratio": "0.5",
        },
        "dataplatform-dev-gharchive-events": {
            **common,
            "--input_path": f"s3://{raw}/gharchive/raw/",
            "--output_path": f"s3://{processed}/gharchive/events/",
            "--quarantine_path": f"s3://{processed}/quarantine/gharchive/",
            "--state_path": f"s3://{processed}/gharchive/state/",
            "--runs_table": "dataplatform-dev-gharchive-job-run-details",
        },
        # --staging_path comes from the state machine: a folder per execution
        "dataplatform-dev-covid-clean": {
            **common,
            "--curated_path": f"s3://{bucket(dev, 'curated')}/covid/curated/",
            "--quarantine_path": f"s3://{processed}/quarantine/covid/",
        },
    }


def test_the_sensor_jobs_own_month_check_defaults_are_the_settings_defaults() -> None:
    """A run without --allow_empty_month / --min_intervals_ratio (a laptop, a hand-started run) checks its
    month as a stack with sensorAllowEmptyMonth and sensorMinIntervalsRatio at their defaults does."""
    defaults = {s.key: s.default for s in sensor_timeseries.SETTINGS}
    assert json.dumps(defaults["sensorAllowEmptyMonth"]) == sensor_job.ALLOW_EMPTY_MONTH
    assert defaults["sensorMinIntervalsRatio"] == sensor_job.MIN_INTERVALS_RATIO


def test_sales_convert_role_reads_the_input_and_writes_only_its_own_prefixes(dev: Estate) -> None:
    raw, processed, scripts = bucket(dev, "raw"), bucket(dev, "processed"), bucket(dev, "scripts")
    statements = json.loads(dev.named("sales-convert-role-policy").inputs["policy"])["Statement"]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{scripts}/glue/sales_csv_to_parquet/*"],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{scripts}/glue-temp/sales_csv_to_parquet/*"],
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/dataplatform-dev-sales-convert/output",
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/dataplatform-dev-sales-convert/error",
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/dataplatform-dev-sales-convert/output:*",
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/dataplatform-dev-sales-convert/error:*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], "Resource": [KEY]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{raw}/sales/input/*"]},
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Resource": [
                f"arn:aws:s3:::{processed}/sales/parquet/*",
                f"arn:aws:s3:::{processed}/sales/state/*",
                f"arn:aws:s3:::{processed}/quarantine/sales/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{raw}", f"arn:aws:s3:::{processed}"],
        },
        # EMRFS probes each directory (parents included) as a key and as its _$folder$ marker...
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                f"arn:aws:s3:::{raw}/sales",
                f"arn:aws:s3:::{raw}/sales_$folder$",
                f"arn:aws:s3:::{raw}/sales/input",
                f"arn:aws:s3:::{raw}/sales/input_$folder$",
                f"arn:aws:s3:::{processed}/sales",
                f"arn:aws:s3:::{processed}/sales_$folder$",
                f"arn:aws:s3:::{processed}/sales/parquet",
                f"arn:aws:s3:::{processed}/sales/parquet_$folder$",
                f"arn:aws:s3:::{processed}/sales/state",
                f"arn:aws:s3:::{processed}/sales/state_$folder$",
                f"arn:aws:s3:::{processed}/quarantine",
                f"arn:aws:s3:::{processed}/quarantine_$folder$",
                f"arn:aws:s3:::{processed}/quarantine/sales",
                f"arn:aws:s3:::{processed}/quarantine/sales_$folder$",
            ],
        },
        # ...and writes the markers of the directories it creates to write into.
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
            "Resource": [
                f"arn:aws:s3:::{processed}/sales_$folder$",
                f"arn:aws:s3:::{processed}/sales/parquet_$folder$",
                f"arn:aws:s3:::{processed}/sales/state_$folder$",
                f"arn:aws:s3:::{processed}/quarantine_$folder$",
                f"arn:aws:s3:::{processed}/quarantine/sales_$folder$",
            ],
        },
        # ...and registers the partitions it writes (test_the_sales_parquet_is_a_catalog_table_of_the_stack).
        {
            "Effect": "Allow",
            "Action": ["glue:BatchCreatePartition", "glue:BatchDeletePartition", "glue:GetTable"],
            "Resource": [
                f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
                f"arn:aws:glue:{REGION}:{ACCOUNT}:database/dataplatform_dev_catalog",
                f"arn:aws:glue:{REGION}:{ACCOUNT}:table/dataplatform_dev_catalog/sales_orders",
            ],
        },
    ]


# --- the sensor pipeline --------------------------------------------------------------------------


def test_sensor_runs_monthly_through_a_state_machine_that_runs_the_glue_job(dev: Estate) -> None:
    schedule = dev.one("aws:scheduler/schedule:Schedule", "sensor").inputs
    assert schedule["scheduleExpression"] == "cron(0 2 1 * ? *)"
    assert schedule["scheduleExpressionTimezone"] == "UTC"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    machine = dev.one("aws:sfn/stateMachine:StateMachine", "sensor")
    machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:" + machine.inputs["namePrefix"] + SUFFIX
    assert schedule["target"]["arn"] == machine_arn
    assert json.loads(schedule["target"]["input"]) == {"month": "previous"}
    states = json.loads(machine.inputs["definition"])["States"]
    assert json.loads(machine.inputs["definition"])["StartAt"] == "ApplyInputDefaults"
    assert states["ApplyInputDefaults"]["Result"] == {"month": "previous"}
    task = states["BuildMonthlyTimeSeries"]
    assert task["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert task["Parameters"] == {"JobName": "dataplatform-dev-sensor-job", "Arguments": {"--month.$": "$.month"}}
    job_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:job/dataplatform-dev-sensor-job"
    statements = json.loads(dev.named("sensor-flow-role-policy").inputs["policy"])["Statement"]
    assert statements[-1] == {
        "Effect": "Allow",
        "Action": ["glue:BatchStopJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:StartJobRun"],
        "Resource": [job_arn],
    }


# --- every state machine --------------------------------------------------------------------------


def definitions(estate: Estate) -> dict[str, dict[str, Any]]:
    return {m.name: json.loads(m.inputs["definition"]) for m in estate.of_type("aws:sfn/stateMachine:StateMachine")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_state_machine_is_valid_asl(stack: str, dev: Estate, prod: Estate, tmp_path: Path) -> None:
    assert ASL_VALIDATOR.exists(), "run `make setup` (npm ci) to install asl-validator"
    found = definitions(dev if stack == "dev" else prod)
    assert set(found) == {
        "render-logs-flow-machine",
        "sensor-flow-machine",
        "gharchive-flow-machine",
        "covid-flow-machine",
    }
    for name, definition in found.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(definition))
        result = subprocess.run(
            [str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_asl_validator_rejects_a_broken_definition(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"StartAt": "Missing", "States": {"Only": {"Type": "Task", "End": True}}}))
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0, result.stdout


def test_every_task_of_every_state_machine_retries_and_catches_to_the_failure_notification(dev: Estate) -> None:
    for name, definition in definitions(dev).items():
        states = definition["States"]
        tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
        work = {n: s for n, s in tasks.items() if n not in ("NotifySuccess", "NotifyFailure")}
        assert work, name
        for task_name, task in tasks.items():
            assert task["Retry"] and all(r["MaxAttempts"] >= 1 for r in task["Retry"]), (name, task_name)
            assert [c["ErrorEquals"] for c in task["Catch"]] == [["States.ALL"]], (name, task_name)
        for task_name, task in work.items():
            assert task["Catch"][0]["Next"] == "NotifyFailure", (name, task_name)
            assert "States.ALL" not in task["Retry"][0]["ErrorEquals"], (name, task_name)  # bad input is not retried
        assert states["NotifyFailure"]["Next"] == "Failed", name
