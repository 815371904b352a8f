"""The GH Archive and COVID-19 pipelines under Pulumi mocks: the order their
state machines run things in, what each step is given, and what each role may do."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pipelines import covid_staging
from pipelines.covid import load_sqls
from pipelines.gharchive_queries import named_queries
from pipelines.registry import load_stack_config
from tests.infra.harness import ACCOUNT, REGION, Estate, stack_config

SUFFIX = "20260101000000000000000001"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"


def bucket(estate: Estate, zone: str) -> str:
    return estate.one("aws:s3/bucket:Bucket", f"lake-{zone}").inputs["bucketPrefix"] + SUFFIX


def definition(estate: Estate, machine: str) -> dict[str, Any]:
    return json.loads(estate.one("aws:sfn/stateMachine:StateMachine", machine).inputs["definition"])


def statements(estate: Estate, role: str) -> list[dict[str, Any]]:
    return json.loads(estate.named(f"{role}-policy").inputs["policy"])["Statement"]


def container(estate: Estate, job: str) -> dict[str, Any]:
    return json.loads(estate.one("aws:batch/jobDefinition:JobDefinition", job).inputs["containerProperties"])


def walk(states: dict[str, Any], start: str) -> list[str]:
    """The states a fully successful execution passes through, in order (Choices take their first rule)."""
    order, name = [], start
    while True:
        order.append(name)
        state = states[name]
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            return order
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"]
        assert name not in order, f"the success path loops through {name}"


def states_format(expression: str, argument: str) -> str:
    """Evaluate `States.Format('<template>', <one argument>)` the way Step Functions does: `\\` escapes
    the next character, an unescaped `{}` takes the argument (an independent reading of the template)."""
    match = re.fullmatch(r"States\.Format\('(.*)', \$\$\.Execution\.Name\)", expression, flags=re.DOTALL)
    assert match, expression
    template, out, i = match.group(1), [], 0
    while i < len(template):
        char = template[i]
        if char == "\\":
            out.append(template[i + 1])
            i += 2
        elif template.startswith("{}", i):
            out.append(argument)
            i += 2
        else:
            assert char not in "{}'", f"unescaped {char!r} at {i} in {template!r}"
            out.append(char)
            i += 1
    return "".join(out)


# --- GH Archive -------------------------------------------------------------------------------------


def test_gharchive_runs_ingest_then_flatten_and_needs_no_crawl(dev: Estate) -> None:
    """The events table is the stack's, with partition projection: a new hour is queryable as soon as
    the job has written it, so the run ends after the transform (no crawl step, no crawler)."""
    states = definition(dev, "gharchive")["States"]
    assert walk(states, definition(dev, "gharchive")["StartAt"]) == ["IngestHours", "FlattenEvents", "NotifySuccess"]
    assert not [name for name in states if name.startswith("Catalog")]
    ingest = states["IngestHours"]
    assert ingest["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert ingest["Parameters"] == {
        "JobName": "gharchive-ingest",
        "JobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/dataplatform-dev-batch",
        "JobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/dataplatform-dev-gharchive-ingest:1",
        "PropagateTags": True,
    }
    assert states["FlattenEvents"]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert states["FlattenEvents"]["Parameters"] == {"JobName": "dataplatform-dev-gharchive-events"}
    assert states["FlattenEvents"]["Next"] == "NotifySuccess"
    assert not [c for c in dev.of_type("aws:glue/crawler:Crawler") if "gharchive" in c.name]
    flow_actions = {a for st in statements(dev, "gharchive-flow-role") for a in st["Action"]}
    assert not {a for a in flow_actions if "Crawler" in a}


def test_gharchive_runs_hourly(dev: Estate) -> None:
    schedule = dev.one("aws:scheduler/schedule:Schedule", "gharchive").inputs
    assert schedule["scheduleExpression"] == "cron(15 * * * ? *)"
    assert schedule["scheduleExpressionTimezone"] == "UTC"
    machine = dev.one("aws:sfn/stateMachine:StateMachine", "gharchive").inputs["namePrefix"]
    assert schedule["target"]["arn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}{SUFFIX}"


def test_gharchive_bookmark_and_run_tables(dev: Estate) -> None:
    tables = {t.name: t.inputs for t in dev.of_type("aws:dynamodb/table:Table")}
    jobs, runs = tables["gharchive-jobs-table"], tables["gharchive-job-run-details-table"]
    assert (jobs["name"], jobs["hashKey"], jobs.get("rangeKey")) == (
        "dataplatform-dev-gharchive-jobs",
        "job_name",
        None,
    )
    assert jobs["attributes"] == [{"name": "job_name", "type": "S"}]
    assert (runs["name"], runs["hashKey"], runs["rangeKey"]) == (
        "dataplatform-dev-gharchive-job-run-details",
        "job_name",
        "run_id",
    )
    assert runs["attributes"] == [{"name": "job_name", "type": "S"}, {"name": "run_id", "type": "S"}]
    assert {t["billingMode"] for t in tables.values()} == {"PAY_PER_REQUEST"}


def test_gharchive_ingest_job_gets_its_settings_and_may_only_write_its_prefix_and_tables(dev: Estate) -> None:
    raw = bucket(dev, "raw")
    job = container(dev, "gharchive")
    assert job["command"] == ["gharchive-ingest"]
    assert {e["name"]: e["value"] for e in job["environment"]} == {
        "GHARCHIVE_BASE_URL": "https://data.gharchive.org",
        "GHARCHIVE_BASELINE_DAY": "",
        "GHARCHIVE_MAX_HOURS": "24",
        "GHARCHIVE_OUTPUT": f"s3://{raw}/gharchive/raw/",
        "GHARCHIVE_JOBS_TABLE": "dataplatform-dev-gharchive-jobs",
        "GHARCHIVE_RUNS_TABLE": "dataplatform-dev-gharchive-job-run-details",
        # The Stack and Pipeline dimensions of the job's run metrics (job_runtime.metrics.dimensions_from_env).
        "METRICS_STACK": "dev",
        "METRICS_PIPELINE": "gharchive",
    }
    assert job["resourceRequirements"] == [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "1024"}]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dataplatform-dev-gharchive"
    assert statements(dev, "gharchive-ingest-role") == [
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{raw}/gharchive/raw/*"],
        },
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": [f"{table}-jobs", f"{table}-job-run-details"],
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"], "Resource": [KEY]},
    ]


def test_gharchive_transform_arguments(dev: Estate) -> None:
    raw, processed = bucket(dev, "raw"), bucket(dev, "processed")
    arguments = dev.one("aws:glue/job:Job", "gharchive").inputs["defaultArguments"]
    assert {k: v for k, v in arguments.items() if k.endswith("_path")} == {
        "--input_path": f"s3://{raw}/gharchive/raw/",
        "--output_path": f"s3://{processed}/gharchive/events/",
        "--quarantine_path": f"s3://{processed}/quarantine/gharchive/",
        "--state_path": f"s3://{processed}/gharchive/state/",
    }


def test_gharchive_named_queries_live_in_the_estate_workgroup(dev: Estate) -> None:
    queries = {q.inputs["name"]: q.inputs for q in dev.of_type("aws:athena/namedQuery:NamedQuery")}
    expected = named_queries("gharchive_events")
    assert set(queries) == {f"gharchive-{name}" for name in expected}
    for name, query in expected.items():
        found = queries[f"gharchive-{name}"]
        assert found["query"] == query.sql and found["description"] == query.description
        assert found["workgroup"] == "dataplatform-dev-catalog"
        assert found["database"] == "dataplatform_dev_catalog"
        assert "gharchive_events" in query.sql


# --- COVID-19 ---------------------------------------------------------------------------------------


def test_covid_runs_copy_crawl_stage_clean_load_in_order(dev: Estate) -> None:
    """Only the landing data (the public datasets, schema not ours) is crawled; the curated tables are
    the stack's (CatalogTable), so the load follows the clean job directly."""
    asl = definition(dev, "covid")
    states = asl["States"]
    assert walk(states, asl["StartAt"]) == [
        "CopySources",
        "CatalogLanding",
        "CatalogLandingStarted",
        "CatalogLandingWait",
        "CatalogLandingCount",
        "CatalogLandingCheck",
        "CatalogLandingReady",
        "CatalogLandingDecide",
        "StageCases",
        "StageTesting",
        "StageCountyPopulation",
        "StageStateAbbreviations",
        "CleanStagedData",
        "LoadStarSchema",
        "LoadStarSchemaStarted",
        "LoadStarSchemaWait",
        "LoadStarSchemaCount",
        "LoadStarSchemaCheck",
        "LoadStarSchemaReady",
        "LoadStarSchemaDecide",
        "NotifySuccess",
    ]
    assert not [name for name in states if name.startswith("CatalogCurated")]
    crawler = "dataplatform-dev-covid-landing-crawler"
    assert states["CatalogLanding"]["Resource"] == "arn:aws:states:::aws-sdk:glue:startCrawler"
    assert states["CatalogLanding"]["Parameters"] == {"Name": crawler}
    assert states["CatalogLanding"]["Retry"][0]["ErrorEquals"][0] == "Glue.CrawlerRunningException"
    assert states["CatalogLandingWait"] == {"Type": "Wait", "Seconds": 30, "Next": "CatalogLandingCount"}
    assert states["CatalogLandingCheck"]["Resource"] == "arn:aws:states:::aws-sdk:glue:getCrawler"
    assert states["CatalogLandingCheck"]["Next"] == "CatalogLandingReady"
    # A crawler's first crawl has no LastCrawl until it ends: Decide reads it only once present.
    assert states["CatalogLandingReady"] == {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.catalogLanding.Crawler.State", "IsPresent": True},
                    {"Variable": "$.catalogLanding.Crawler.LastCrawl.Status", "IsPresent": True},
                ],
                "Next": "CatalogLandingDecide",
            }
        ],
        "Default": "CatalogLandingAgain",
    }
    decide = states["CatalogLandingDecide"]
    assert decide["Default"] == "CatalogLandingAgain"
    assert decide["Choices"] == [
        {
            "And": [
                {"Variable": "$.catalogLanding.Crawler.State", "StringEquals": "READY"},
                {"Variable": "$.catalogLanding.Crawler.LastCrawl.Status", "StringEquals": "SUCCEEDED"},
            ],
            "Next": "StageCases",
        },
        {"Variable": "$.catalogLanding.Crawler.State", "StringEquals": "READY", "Next": "CatalogLandingFailed"},
    ]
    assert states["CatalogLandingFailed"] == {
        "Type": "Pass",
        "Parameters": {"Error": "CatalogLandingFailed", "Cause.$": "States.JsonToString($.catalogLanding)"},
        "ResultPath": "$.failure",
        "Next": "NotifyFailure",
    }
    assert states["CleanStagedData"]["Next"] == "LoadStarSchema"
    crawlers = {c.inputs["name"] for c in dev.of_type("aws:glue/crawler:Crawler") if "covid" in c.name}
    assert crawlers == {crawler}
    allowed = [st for st in statements(dev, "covid-flow-role") if "glue:StartCrawler" in st["Action"]]
    assert allowed == [
        {
            "Effect": "Allow",
            "Action": ["glue:GetCrawler", "glue:StartCrawler"],
            "Resource": [f"arn:aws:glue:{REGION}:{ACCOUNT}:crawler/{crawler}"],
        }
    ]


def test_covid_stages_each_dataset_with_athena_into_a_folder_of_the_execution(dev: Estate) -> None:
    states, processed = definition(dev, "covid")["States"], bucket(dev, "processed")
    execution = "2026-11-23T06-00-00-a1b2"
    for dataset, state in zip(
        covid_staging.DATASETS,
        ("StageCases", "StageTesting", "StageCountyPopulation", "StageStateAbbreviations"),
        strict=True,
    ):
        task = states[state]
        assert task["Resource"] == "arn:aws:states:::athena:startQueryExecution.sync"
        assert task["Parameters"]["WorkGroup"] == "dataplatform-dev-catalog"
        assert task["Parameters"]["QueryExecutionContext"] == {"Database": "dataplatform_dev_catalog"}
        query = states_format(task["Parameters"]["QueryString.$"], execution)
        location = f"s3://{processed}/scratch/covid/staging/{execution}/{dataset}/"
        assert query == covid_staging.unload_statement(dataset, location)
    clean = states["CleanStagedData"]["Parameters"]
    assert clean["JobName"] == "dataplatform-dev-covid-clean"
    staging = states_format(clean["Arguments"]["--staging_path.$"], execution)
    assert staging == f"s3://{processed}/scratch/covid/staging/{execution}/"


def test_covid_loads_the_star_schema_in_one_data_api_transaction(dev: Estate) -> None:
    states, curated = definition(dev, "covid")["States"], bucket(dev, "curated")
    load = states["LoadStarSchema"]
    assert load["Resource"] == "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement"
    copy_role = f"arn:aws:iam::{ACCOUNT}:role/" + dev.one("aws:iam/role:Role", "warehouse-copy").inputs["namePrefix"]
    assert load["Parameters"] == {
        "WorkgroupName": "dataplatform-dev-warehouse",
        "Database": "analytics",
        "Sqls": load_sqls("covid", curated, copy_role + SUFFIX),
        "StatementName": "covid19-star-schema",
    }
    sqls = load["Parameters"]["Sqls"]
    # The schema is the stack's (warehouse access setup): the load's role may create tables, not schemas.
    assert sqls[0].startswith("CREATE TABLE IF NOT EXISTS covid.dim_date (")
    assert len(sqls) <= 40 and len(json.dumps(sqls)) < 100_000  # BatchExecuteStatement's limits
    assert states["LoadStarSchemaCheck"]["Parameters"] == {"Id.$": "$.load.Id"}
    assert states["LoadStarSchemaReady"]["Choices"] == [
        {"Variable": "$.loadStatus.Status", "IsPresent": True, "Next": "LoadStarSchemaDecide"}
    ]
    assert states["LoadStarSchemaDecide"]["Choices"] == [
        {"Variable": "$.loadStatus.Status", "StringEquals": "FINISHED", "Next": "NotifySuccess"},
        {
            "Or": [
                {"Variable": "$.loadStatus.Status", "StringEquals": "FAILED"},
                {"Variable": "$.loadStatus.Status", "StringEquals": "ABORTED"},
            ],
            "Next": "LoadStarSchemaFailed",
        },
    ]


def test_covid_copy_job_reads_only_the_configured_source_prefixes(dev: Estate) -> None:
    raw = bucket(dev, "raw")
    job = container(dev, "covid")
    assert job["command"] == ["copy-datasets"]
    env = {e["name"]: e["value"] for e in job["environment"]}
    datasets = (
        load_stack_config(stack_config("Pulumi.dev.yaml"), "dataplatform", "dev", REGION)
        .pipeline_settings["covid19"]
        .datasets
    )
    assert env == {
        "COPY_SOURCE_BUCKET": "covid19-lake",
        "COPY_SOURCE_REGION": "us-east-2",
        "COPY_DATASETS": json.dumps(datasets, sort_keys=True),
        "COPY_TARGET": f"s3://{raw}/covid/landing/",
        "METRICS_STACK": "dev",
        "METRICS_PIPELINE": "covid19",
    }
    assert statements(dev, "covid-copy-role") == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::covid19-lake"]},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                "arn:aws:s3:::covid19-lake/enigma-jhu/csv/*",
                "arn:aws:s3:::covid19-lake/rearc-covid-19-testing-data/csv/states_daily/*",
                "arn:aws:s3:::covid19-lake/static-datasets/csv/CountyPopulation/*",
                "arn:aws:s3:::covid19-lake/static-datasets/csv/state_abv/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{raw}/covid/landing/*"],
        },
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{raw}"]},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY]},
    ]


def test_covid_landing_crawler_makes_one_table_per_dataset_reads_csv_headers_and_sees_new_files(
    dev: Estate,
) -> None:
    """The copy step adds and replaces files in dataset folders crawled before. Glue's incremental
    crawls (CRAWL_NEW_FOLDERS_ONLY) read only folders added since the last crawl, force schema changes
    to LOG and add no table after the first crawl ("Incremental crawls in AWS Glue",
    https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html; RecrawlPolicy,
    https://docs.aws.amazon.com/glue/latest/webapi/API_RecrawlPolicy.html): the landing crawler
    recrawls everything and applies what it finds (new columns merged, deletions only logged)."""
    raw, curated = bucket(dev, "raw"), bucket(dev, "curated")
    landing = dev.one("aws:glue/crawler:Crawler", "covid-landing").inputs
    assert landing["s3Targets"] == [{"path": f"s3://{raw}/covid/landing/", "exclusions": []}]
    assert landing["tablePrefix"] == "covid_landing_"
    # bucket (1)/covid/landing/<dataset>/ is level 4: each dataset folder is a table
    assert json.loads(landing["configuration"])["Grouping"]["TableLevelConfiguration"] == 4
    classifier = dev.one("aws:glue/classifier:Classifier").inputs
    assert landing["classifiers"] == [classifier["name"]]
    assert classifier["csvClassifier"] == {
        "containsHeader": "PRESENT",
        "delimiter": ",",
        "quoteSymbol": '"',
        "allowSingleColumn": False,
    }
    assert landing["recrawlPolicy"] == {"recrawlBehavior": "CRAWL_EVERYTHING"}
    assert landing["schemaChangePolicy"] == {"updateBehavior": "UPDATE_IN_DATABASE", "deleteBehavior": "LOG"}
    assert json.loads(landing["configuration"])["CrawlerOutput"]["Tables"] == {"AddOrUpdateBehavior": "MergeNewColumns"}
    assert not [c for c in dev.of_type("aws:glue/crawler:Crawler") if "curated" in c.name]
    assert not [c for c in dev.of_type("aws:glue/crawler:Crawler") if curated in json.dumps(c.inputs["s3Targets"])]


def test_covid_state_machine_may_run_athena_on_the_landing_tables_only(dev: Estate) -> None:
    found = statements(dev, "covid-flow-role")
    catalog = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    assert {
        "Effect": "Allow",
        "Action": ["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"],
        "Resource": [
            f"{catalog}catalog",
            f"{catalog}database/dataplatform_dev_catalog",
            f"{catalog}table/dataplatform_dev_catalog/covid_landing_*",
        ],
    } in found
    assert {
        "Effect": "Allow",
        "Action": ["athena:GetQueryExecution", "athena:StartQueryExecution", "athena:StopQueryExecution"],
        "Resource": [f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/dataplatform-dev-catalog"],
    } in found
    assert {
        "Effect": "Allow",
        "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket(dev, 'processed')}/scratch/covid/staging/*"],
    } in found


def test_states_format_reader_is_strict() -> None:
    assert states_format("States.Format('a \\'b\\' {} \\{x\\}', $$.Execution.Name)", "E") == "a 'b' E {x}"
    with pytest.raises(AssertionError, match="unescaped"):
        states_format("States.Format('it's', $$.Execution.Name)", "E")


def test_covid_polls_give_up_after_an_hour_each(dev: Estate) -> None:
    """The landing crawl is checked every 30 s and the load every 15 s, each for at most an hour
    (pipelines/covid.py CRAWL_MAX_WAIT_SECONDS, LOAD_MAX_WAIT_SECONDS); then the run alerts and fails."""
    states = definition(dev, "covid")["States"]
    for step, counter, rounds, every in (
        ("CatalogLanding", "$.catalogLandingPolls", 120, 30),
        ("LoadStarSchema", "$.loadStarSchemaPolls", 240, 15),
    ):
        assert states[f"{step}Again"] == {
            "Type": "Choice",
            "Choices": [
                {"Variable": f"{counter}.count", "NumericGreaterThanEquals": rounds, "Next": f"{step}TimedOut"}
            ],
            "Default": f"{step}Wait",
        }
        assert states[f"{step}TimedOut"]["Parameters"] == {
            "Error": f"{step}TimedOut",
            "Cause": f"{step} did not finish within 60 minutes (checked every {every} seconds, {rounds} times)",
        }
        assert states[f"{step}TimedOut"]["Next"] == "NotifyFailure"
