"""The sales, sensor, GH Archive and COVID-19 smoke runs: what each starts, how it waits, what it checks,
and how a failure names the pipeline and the step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from smoke import samples
from tests.smoke.support import (
    CONVERT,
    INPUT_CRAWLER,
    JOBS_TABLE,
    LOAD,
    MACHINE,
    PROCESSED,
    RAW,
    RUN_NAME,
    WORKFLOW,
    Aws,
    at,
    described,
    history,
    keys,
    node,
    put,
    run,
    stub_athena,
    stub_statement,
    workflow_run,
)

# --- sales ----------------------------------------------------------------------------------------

SALES_SQL = (
    "SELECT count(*), sum(quantity) FROM public.sales_data_table WHERE order_id IN ('SO-1001', 'SO-1002', 'SO-1003', "
    "'SO-1004', 'SO-1006', 'SO-1008', 'SO-1010', 'SO-1011', 'SO-1013', 'SO-1014', 'SO-1015', 'SO-1016', "
    "'SO-1017', 'SO-1018', 'SO-1019', 'SO-1020', 'SO-1021', 'SO-1022', 'SO-1023')"
)
# The converted Parquet through Athena: the catalog table the stack defines, partitions the job registered.
SALES_ATHENA_SQL = "SELECT count(*), sum(quantity) FROM sales_orders WHERE source_file = 'sales_2024_03.csv'"
MARKER_KEY = "sales/state/converted/sales_2024_03.csv.json"
SALES_QUARANTINE = "quarantine/sales/source_file=sales_2024_03.csv/part-00000-5c34.c000.csv"


def sales_outputs(s3) -> None:
    """What the workflow's jobs leave in the processed bucket for the sample."""
    marker = {"rows_in": 24, "rows_loaded": 19, "rows_quarantined": 5, "source_file": "sales_2024_03.csv"}
    put(s3, PROCESSED, MARKER_KEY, json.dumps(marker))
    rows = "".join(f'SO-10{n},2024-03-0x,,,,,,,,"bad, quoted",reason {n}\n' for n in range(5))
    put(s3, PROCESSED, SALES_QUARANTINE, "order_id,order_date,a,b,c,d,e,f,g,raw,reason\n" + rows)
    put(s3, PROCESSED, "quarantine/sales/_SUCCESS", "")


def stub_workflow(aws: Aws, last: dict) -> None:
    """No run at the first poll (event batching), then the run through its steps, then `last`."""
    glue = aws.stub("glue")
    runs_request = {"Name": WORKFLOW, "IncludeGraph": False, "MaxResults": 50}
    run_request = {"Name": WORKFLOW, "RunId": "wr_0001", "IncludeGraph": True}
    glue.add_response("get_workflow_runs", {}, runs_request)  # no run yet: AWS omits Runs
    earlier = {"Name": WORKFLOW, "WorkflowRunId": "wr_0000", "StartedOn": at(-600), "Status": "COMPLETED"}
    ours = {"Name": WORKFLOW, "WorkflowRunId": "wr_0001", "StartedOn": at(10), "Status": "RUNNING"}
    glue.add_response("get_workflow_runs", {"Runs": [ours, earlier]}, runs_request)
    glue.add_response(
        "get_workflow_run", workflow_run("RUNNING", node(INPUT_CRAWLER, "CRAWLER", "RUNNING")), run_request
    )
    converting = workflow_run("RUNNING", node(INPUT_CRAWLER, "CRAWLER", "SUCCEEDED"), node(CONVERT, "JOB", "RUNNING"))
    glue.add_response("get_workflow_run", converting, run_request)
    glue.add_response("get_workflow_run", last, run_request)


ALL_SALES_STEPS_SUCCEEDED = workflow_run(
    "COMPLETED",
    node(INPUT_CRAWLER, "CRAWLER", "SUCCEEDED"),
    node(CONVERT, "JOB", "SUCCEEDED"),
    node(LOAD, "JOB", "SUCCEEDED"),
)


def test_sales_sample_starts_the_workflow_and_lands_in_the_table(aws: Aws, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    sales_outputs(s3)
    stub_workflow(aws, ALL_SALES_STEPS_SUCCEEDED)
    stub_statement(aws, "q1", SALES_SQL, [[{"longValue": 19}, {"longValue": 70}]])
    stub_athena(aws, "a1", SALES_ATHENA_SQL, [["_col0", "_col1"], ["19", "70"]])

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.lines == [
        f"smoke: {RUN_NAME} on stack pr-12: sales; timeout 40 min",
        f"[0m00s] sales: uploaded sales_2024_03.csv to s3://{RAW}/sales/input/sales_2024_03.csv",
        f"[0m30s] sales workflow run: {CONVERT} RUNNING",
        "[0m45s] sales workflow run: SUCCEEDED",
        "PASS sales: 1 run(s) succeeded, 4 check(s) passed",
        "smoke: all 1 pipeline(s) passed on pr-12 in 0m45s",
    ]
    assert outcome.code == 0
    aws.assert_all_used()
    assert "sales/input/sales_2024_03.csv" in set(keys(s3, RAW))
    assert outcome.summary.splitlines()[4] == (
        "| sales | passed |  | sales_2024_03.csv: 24 row(s) in, 19 converted, 5 quarantined; 5 quarantined "
        f"row(s) under s3://{PROCESSED}/quarantine/sales/source_file=sales_2024_03.csv/; public.sales_data_table: "
        "19 orders, 70 units; Athena sales_orders: 19 orders, 70 units |"
    )


def test_a_failed_workflow_job_fails_sales_at_that_job(aws: Aws, tmp_path: Path) -> None:
    failed = workflow_run(
        "COMPLETED",
        node(INPUT_CRAWLER, "CRAWLER", "SUCCEEDED"),
        node(CONVERT, "JOB", "FAILED", "1 sales file(s) rejected: sales_2024_03.csv: missing columns ['region']"),
        node(LOAD, "JOB", None),
    )
    stub_workflow(aws, failed)

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.code == 1
    rejected = "1 sales file(s) rejected: sales_2024_03.csv: missing columns ['region']"
    reason = f"workflow run wr_0001: {CONVERT} FAILED: {rejected}"
    assert outcome.lines[-4:] == [
        f"[0m30s] sales workflow run: {CONVERT} RUNNING",
        f"[0m45s] sales workflow run: FAILED at {CONVERT}: {reason}",
        f"FAIL sales at {CONVERT}: {reason}",
        f"smoke: FAILED on pr-12 after 0m45s: sales at {CONVERT}",
    ]
    aws.assert_all_used()


def test_a_workflow_that_stops_before_its_last_step_fails_at_that_step(aws: Aws, tmp_path: Path) -> None:
    stopped = workflow_run(
        "COMPLETED",
        node(INPUT_CRAWLER, "CRAWLER", "SUCCEEDED"),
        node(CONVERT, "JOB", "SUCCEEDED"),
        node(LOAD, "JOB", None),
    )
    stub_workflow(aws, stopped)

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.lines[-2] == f"FAIL sales at {LOAD}: workflow run wr_0001 COMPLETED: {LOAD} did not run"
    assert outcome.code == 1


def test_wrong_conversion_counts_fail_sales_at_the_conversion_check(aws: Aws, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    sales_outputs(s3)
    put(s3, PROCESSED, MARKER_KEY, json.dumps({"rows_in": 24, "rows_loaded": 24, "rows_quarantined": 0}))
    stub_workflow(aws, ALL_SALES_STEPS_SUCCEEDED)

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.lines[-2] == (
        f"FAIL sales at check conversion: s3://{PROCESSED}/{MARKER_KEY}: expected rows in/loaded/quarantined "
        "(24, 19, 5), found (24, 24, 0)"
    )
    assert outcome.code == 1


def test_missing_orders_fail_sales_at_the_warehouse_check(aws: Aws, tmp_path: Path) -> None:
    sales_outputs(aws.client("s3"))
    stub_workflow(aws, ALL_SALES_STEPS_SUCCEEDED)
    stub_statement(aws, "q1", SALES_SQL, [[{"longValue": 0}, {"isNull": True}]])

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.lines[-2] == (
        "FAIL sales at check warehouse: public.sales_data_table: expected 19 of the sample's orders with 70 units, "
        "found 0 orders with None units"
    )
    assert outcome.code == 1
    aws.assert_all_used()


def test_orders_missing_in_athena_fail_sales_at_the_athena_check(aws: Aws, tmp_path: Path) -> None:
    """The warehouse has the orders but the Parquet's catalog table does not show them all (e.g. some
    partitions not registered): the run fails at the Athena check, naming the table."""
    sales_outputs(aws.client("s3"))
    stub_workflow(aws, ALL_SALES_STEPS_SUCCEEDED)
    stub_statement(aws, "q1", SALES_SQL, [[{"longValue": 19}, {"longValue": 70}]])
    stub_athena(aws, "a1", SALES_ATHENA_SQL, [["_col0", "_col1"], ["12", "41"]])

    outcome = run(aws, tmp_path, "--only", "sales")

    assert outcome.lines[-2] == (
        "FAIL sales at check athena: sales_orders: expected 19 orders of sales_2024_03.csv with 70 units, "
        "found 12 orders with 41 units"
    )
    assert outcome.code == 1
    aws.assert_all_used()


# --- sensor ---------------------------------------------------------------------------------------

SENSOR_MACHINE = f"{MACHINE}sensor-flow"
SENSOR_TABLE = "sensor_timeseries"


def stub_sensor_execution(aws: Aws) -> None:
    sfn = aws.stub("stepfunctions")
    arn = described(SENSOR_MACHINE, RUN_NAME, "RUNNING")["executionArn"]
    sfn.add_response(
        "start_execution",
        {"executionArn": arn, "startDate": at(0)},
        {"stateMachineArn": SENSOR_MACHINE, "name": RUN_NAME, "input": '{"month": "2024-03"}'},
    )
    sfn.add_response("describe_execution", described(SENSOR_MACHINE, RUN_NAME, "RUNNING"), {"executionArn": arn})
    sfn.add_response(
        "get_execution_history",
        history(("ApplyInputDefaults", "{}"), ("MergeInputDefaults", "{}"), ("BuildMonthlyTimeSeries", "{}")),
        {"executionArn": arn, "reverseOrder": True, "maxResults": 25},
    )
    sfn.add_response("describe_execution", described(SENSOR_MACHINE, RUN_NAME, "SUCCEEDED"), {"executionArn": arn})


def stub_sensor_queries(aws: Aws, rows: list[list[str]]) -> None:
    """The one query of the check: the stack's catalog table, the sample's month only."""
    stub_athena(
        aws,
        "a1",
        f'SELECT sensor_id, count(*), count_if(is_gap) FROM "{SENSOR_TABLE}" '
        "WHERE month = '2024-03' GROUP BY sensor_id ORDER BY sensor_id",
        [["sensor_id", "_col1", "_col2"], *rows],
    )


def sensor_quarantine(s3) -> None:
    body = "sensor_id,start_time,end_time,value,readings,source_file,reason\n" + "".join(
        f"temp-x,bad,bad,1,1,sensor.csv,reason {n}\n" for n in range(4)
    )
    put(s3, PROCESSED, "quarantine/sensor/month=2024-03/part-00000-1.csv", body)


def test_sensor_sample_is_uploaded_content_addressed_and_the_month_is_built(aws: Aws, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    sensor_quarantine(s3)
    stub_sensor_execution(aws)
    stub_sensor_queries(aws, [["temp-hall", "44640", "0"], ["temp-lab", "44640", "240"], ["temp-roof", "44640", "0"]])

    outcome = run(aws, tmp_path, "--only", "sensor-timeseries")

    data = samples.sample("sensor", samples.SENSOR_FILE).read_bytes()
    key = f"sensor/raw/sensor_intervals_2024_03-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    assert outcome.lines == [
        f"smoke: {RUN_NAME} on stack pr-12: sensor-timeseries; timeout 40 min",
        f"[0m00s] sensor-timeseries: uploaded sensor_intervals_2024_03.csv to s3://{RAW}/{key}",
        f'[0m00s] sensor-timeseries: started execution {RUN_NAME} with input {{"month": "2024-03"}}',
        "[0m15s] sensor-timeseries execution: SUCCEEDED",
        "PASS sensor-timeseries: 1 run(s) succeeded, 2 check(s) passed",
        "smoke: all 1 pipeline(s) passed on pr-12 in 0m15s",
    ]
    assert outcome.code == 0
    assert s3.get_object(Bucket=RAW, Key=key)["Body"].read() == data
    aws.assert_all_used()


def test_a_gap_in_the_wrong_place_fails_the_sensor_athena_check(aws: Aws, tmp_path: Path) -> None:
    sensor_quarantine(aws.client("s3"))
    stub_sensor_execution(aws)
    stub_sensor_queries(aws, [["temp-hall", "44640", "240"], ["temp-lab", "44640", "0"]])

    outcome = run(aws, tmp_path, "--only", "sensor-timeseries")

    assert outcome.lines[-2] == (
        f"FAIL sensor-timeseries at check athena: {SENSOR_TABLE} month 2024-03: expected (points, gaps) per sensor "
        "{'temp-hall': (44640, 0), 'temp-lab': (44640, 240), 'temp-roof': (44640, 0)}, found "
        "{'temp-hall': (44640, 240), 'temp-lab': (44640, 0)}"
    )
    assert outcome.code == 1
    aws.assert_all_used()


def test_missing_sensor_quarantine_fails_before_any_query(aws: Aws, tmp_path: Path) -> None:
    stub_sensor_execution(aws)

    outcome = run(aws, tmp_path, "--only", "sensor-timeseries")

    assert outcome.lines[-2] == (
        "FAIL sensor-timeseries at check quarantine: expected 4 quarantined row(s) under "
        f"s3://{PROCESSED}/quarantine/sensor/month=2024-03/, found 0 in 0 object(s)"
    )
    aws.assert_all_used()


# --- GH Archive and COVID-19, together ------------------------------------------------------------

GH_MACHINE, COVID_MACHINE = f"{MACHINE}gharchive-flow", f"{MACHINE}covid-flow"
COVID_SQL = (
    "SELECT (SELECT count(*) FROM covid.dim_date), (SELECT count(*) FROM covid.dim_location), "
    "(SELECT count(*) FROM covid.fact_cases), (SELECT count(*) FROM covid.fact_testing), "
    "(SELECT count(*) FROM covid.fact_cases f WHERE NOT EXISTS (SELECT 1 FROM covid.dim_date d WHERE "
    "d.date_key = f.date_key) OR NOT EXISTS (SELECT 1 FROM covid.dim_location l WHERE l.location_key = "
    "f.location_key)), (SELECT count(*) FROM covid.fact_testing f WHERE NOT EXISTS (SELECT 1 FROM covid.dim_date "
    "d WHERE d.date_key = f.date_key) OR NOT EXISTS (SELECT 1 FROM covid.dim_location l WHERE l.location_key = "
    "f.location_key))"
)
GH_EVENTS_SQL = 'SELECT count(*), count(DISTINCT event_id) FROM "gharchive_events" WHERE "date" = \'2026-11-30\''
TASK_FAILED_CAUSE = '{"JobName":"gharchive-events","JobRunState":"FAILED","ErrorMessage":"AccessDenied"}'


def stub_started(aws: Aws, machine: str) -> str:
    arn = described(machine, RUN_NAME, "RUNNING")["executionArn"]
    aws.stub("stepfunctions").add_response(
        "start_execution",
        {"executionArn": arn, "startDate": at(0)},
        {"stateMachineArn": machine, "name": RUN_NAME, "input": "{}"},
    )
    return arn


def jobs_table(aws: Aws, bookmark: str | None) -> None:
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(
        TableName=JOBS_TABLE,
        KeySchema=[{"AttributeName": "job_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if bookmark:
        item = {"job_name": {"S": "gharchive"}, "bookmark": {"S": bookmark}}
        dynamodb.put_item(TableName=JOBS_TABLE, Item=item)


def test_each_failed_pipeline_is_named_with_its_step_while_the_others_pass(aws: Aws, tmp_path: Path) -> None:
    """GH Archive fails in its Glue step (the Catch routes it to NotifyFailure); COVID-19 passes."""
    jobs_table(aws, "2026-11-30T01")
    gh_arn, covid_arn = stub_started(aws, GH_MACHINE), stub_started(aws, COVID_MACHINE)
    sfn = aws.stub("stepfunctions")
    # First poll: both running.
    sfn.add_response("describe_execution", described(GH_MACHINE, RUN_NAME, "RUNNING"), {"executionArn": gh_arn})
    reverse = {"reverseOrder": True, "maxResults": 25}
    sfn.add_response("get_execution_history", history(("IngestHours", "{}")), {"executionArn": gh_arn, **reverse})
    sfn.add_response("describe_execution", described(COVID_MACHINE, RUN_NAME, "RUNNING"), {"executionArn": covid_arn})
    sfn.add_response("get_execution_history", history(("CopySources", "{}")), {"executionArn": covid_arn, **reverse})
    # Second poll: GH Archive failed; its history says where and why.
    failed = described(GH_MACHINE, RUN_NAME, "FAILED", error="PipelineFailed", cause="a step failed")
    sfn.add_response("describe_execution", failed, {"executionArn": gh_arn})
    failure = json.dumps({"failure": {"Error": "States.TaskFailed", "Cause": TASK_FAILED_CAUSE}})
    sfn.add_response(
        "get_execution_history",
        history(("IngestHours", "{}"), ("FlattenEvents", "{}"), ("NotifyFailure", failure), ("Failed", "{}")),
        {"executionArn": gh_arn, "reverseOrder": False, "maxResults": 1000},
    )
    sfn.add_response("describe_execution", described(COVID_MACHINE, RUN_NAME, "SUCCEEDED"), {"executionArn": covid_arn})
    counts = [{"longValue": n} for n in (4, 13, 23, 9, 0, 0)]
    stub_statement(aws, "q1", COVID_SQL, [counts])

    outcome = run(aws, tmp_path, "--only", "gharchive,covid19")

    reason = f"execution {RUN_NAME} FAILED: States.TaskFailed: {TASK_FAILED_CAUSE}"
    assert outcome.lines == [
        f"smoke: {RUN_NAME} on stack pr-12: gharchive, covid19; timeout 40 min",
        f"[0m00s] gharchive: started execution {RUN_NAME} with input {{}}",
        f"[0m00s] covid19: started execution {RUN_NAME} with input {{}}",
        f"[0m15s] gharchive execution: FAILED at FlattenEvents: {reason}",
        "[0m15s] covid19 execution: SUCCEEDED",
        f"FAIL gharchive at FlattenEvents: {reason}",
        "PASS covid19: 1 run(s) succeeded, 2 check(s) passed",
        "smoke: FAILED on pr-12 after 0m15s: gharchive at FlattenEvents",
    ]
    assert outcome.code == 1
    aws.assert_all_used()
    assert outcome.summary.splitlines()[0] == "### Smoke run on `pr-12`: FAILED"
    assert outcome.summary.splitlines()[4:] == [
        f"| gharchive | **FAILED** | FlattenEvents | {reason} |",
        "| covid19 | passed |  | covid: dim_date 4, dim_location 13, fact_cases 23, fact_testing 9; "
        "every fact has its dimensions |",
        "",
        "1 of 2 pipeline(s) passed in 0m15s (timeout 40 min).",
    ]


def stub_one_poll_success(aws: Aws, machine: str, arn: str) -> None:
    aws.stub("stepfunctions").add_response(
        "describe_execution", described(machine, RUN_NAME, "SUCCEEDED"), {"executionArn": arn}
    )


def test_gharchive_events_of_the_bookmarked_day_are_checked_in_athena(aws: Aws, tmp_path: Path) -> None:
    jobs_table(aws, "2026-11-30T01")
    stub_one_poll_success(aws, GH_MACHINE, stub_started(aws, GH_MACHINE))
    stub_athena(aws, "a1", GH_EVENTS_SQL, [["_col0", "_col1"], ["412031", "412031"]])

    outcome = run(aws, tmp_path, "--only", "gharchive")

    assert outcome.lines[-2:] == [
        "PASS gharchive: 1 run(s) succeeded, 2 check(s) passed",
        "smoke: all 1 pipeline(s) passed on pr-12 in 0m00s",
    ]
    assert (
        "| gharchive | passed |  | bookmark 2026-11-30T01; gharchive_events: 412031 events on 2026-11-30, ids unique |"
        in (outcome.summary)
    )
    aws.assert_all_used()


def test_duplicate_gharchive_ids_fail_the_athena_check(aws: Aws, tmp_path: Path) -> None:
    jobs_table(aws, "2026-11-30T01")
    stub_one_poll_success(aws, GH_MACHINE, stub_started(aws, GH_MACHINE))
    stub_athena(aws, "a1", GH_EVENTS_SQL, [["_col0", "_col1"], ["412033", "412031"]])

    outcome = run(aws, tmp_path, "--only", "gharchive")

    assert outcome.lines[-2] == (
        "FAIL gharchive at check athena: gharchive_events for date 2026-11-30 (bookmark 2026-11-30T01): expected "
        "events with unique ids, found 412033 events with 412031 distinct ids"
    )


def test_no_gharchive_bookmark_fails_the_bookmark_check(aws: Aws, tmp_path: Path) -> None:
    jobs_table(aws, None)
    stub_one_poll_success(aws, GH_MACHINE, stub_started(aws, GH_MACHINE))

    outcome = run(aws, tmp_path, "--only", "gharchive")

    assert outcome.lines[-2] == (
        f"FAIL gharchive at check bookmark: no hour ingested: table {JOBS_TABLE} has no bookmark for gharchive"
    )
    assert outcome.code == 1


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ((4, 13, 0, 9, 0, 0), "empty star schema table(s) in covid: fact_cases"),
        ((4, 13, 23, 9, 2, 0), "facts without their dimension rows in covid: fact_cases 2, fact_testing 0"),
    ],
)
def test_an_empty_or_orphaned_star_schema_fails_covid19(
    aws: Aws, tmp_path: Path, counts: tuple[int, ...], message: str
) -> None:
    stub_one_poll_success(aws, COVID_MACHINE, stub_started(aws, COVID_MACHINE))
    stub_statement(aws, "q1", COVID_SQL, [[{"longValue": n} for n in counts]])

    outcome = run(aws, tmp_path, "--only", "covid19")

    assert outcome.lines[-2] == f"FAIL covid19 at check warehouse: {message}"
    assert outcome.code == 1


def test_a_failed_start_fails_at_the_start_step(aws: Aws, tmp_path: Path) -> None:
    aws.stub("stepfunctions").add_client_error(
        "start_execution",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: kms:GenerateDataKey",
        expected_params={"stateMachineArn": COVID_MACHINE, "name": RUN_NAME, "input": "{}"},
    )

    outcome = run(aws, tmp_path, "--only", "covid19")

    assert outcome.lines[-2:] == [
        "FAIL covid19 at start: An error occurred (AccessDeniedException) when calling the StartExecution "
        "operation: not authorized to perform: kms:GenerateDataKey",
        "smoke: FAILED on pr-12 after 0m00s: covid19 at start",
    ]
    assert outcome.code == 1


@pytest.mark.parametrize(
    ("status", "error", "cause"),
    [
        ("FAILED", "States.Runtime", "An error occurred while executing the state 'CatalogLanding'"),
        ("TIMED_OUT", "States.Timeout", ""),
    ],
)
def test_an_execution_ending_outside_the_failure_route_fails_at_its_last_state(
    aws: Aws, tmp_path: Path, status: str, error: str, cause: str
) -> None:
    """No NotifyFailure (an uncatchable States.Runtime, the machine's own timeout): the last state entered
    and the execution's own error name the step."""
    arn = stub_started(aws, COVID_MACHINE)
    sfn = aws.stub("stepfunctions")
    ended = described(COVID_MACHINE, RUN_NAME, status, error=error, cause=cause)
    sfn.add_response("describe_execution", ended, {"executionArn": arn})
    sfn.add_response(
        "get_execution_history",
        history(("CopySources", "{}"), ("CatalogLanding", "{}")),
        {"executionArn": arn, "reverseOrder": False, "maxResults": 1000},
    )

    outcome = run(aws, tmp_path, "--only", "covid19")

    reason = f"{error}: {cause}" if cause else error
    assert outcome.lines[-2] == f"FAIL covid19 at CatalogLanding: execution {RUN_NAME} {status}: {reason}"
    assert outcome.code == 1
    aws.assert_all_used()
