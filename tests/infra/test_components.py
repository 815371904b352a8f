"""Components built alone under mocks, and the state machine definitions orchestration writes."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from components.compute import (
    BatchCompute,
    BatchComputeArgs,
    BatchEnvironment,
    BatchJob,
    BatchJobArgs,
    GlueJob,
    GlueJobArgs,
    content_hash,
    image_content_hash,
    python_package_zip,
)
from components.iam import statement
from components.network import Network, NetworkArgs
from components.orchestration import (
    MAX_EXECUTION_SECONDS,
    PollStep,
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    TaskStep,
    pipeline_definition,
)
from components.storage import StateTable, StateTableArgs
from tests.infra.harness import ACCOUNT, REGION, run_under_mocks

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
CONFIG = {"aws:region": REGION}


def glue_estate(script: Path):
    return run_under_mocks(
        "dev",
        CONFIG,
        lambda: GlueJob(
            "sales-csv",
            GlueJobArgs(
                pipeline="sales",
                account_id=ACCOUNT,
                region=REGION,
                kms_key_arn=KEY,
                script_path=str(script),
                scripts_bucket="scripts-bucket",
                scripts_bucket_arn="arn:aws:s3:::scripts-bucket",
                role_statements=[statement(["s3:GetObject"], ["arn:aws:s3:::raw/sales/*"])],
                arguments={"--output": "s3://processed/sales/"},
                bookmarks=True,
                timeout_minutes=30,
                max_retries=2,
            ),
        ),
    )


def test_glue_job_runs_the_script_its_component_uploaded(tmp_path: Path) -> None:
    script = tmp_path / "csv_to_parquet.py"
    script.write_text("print('v1')\n")
    estate = glue_estate(script)
    upload = estate.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert upload["bucket"] == "scripts-bucket"
    assert upload["key"] == f"glue/csv_to_parquet/{content_hash(script)[:16]}.py"
    job = estate.one("aws:glue/job:Job").inputs
    assert job["command"] == {
        "name": "glueetl",
        "scriptLocation": f"s3://scripts-bucket/{upload['key']}",
        "pythonVersion": "3",
    }
    assert job["glueVersion"] == "5.0"
    assert (job["timeout"], job["maxRetries"], job["workerType"], job["numberOfWorkers"]) == (30, 2, "G.1X", 2)
    security = estate.one("aws:glue/securityConfiguration:SecurityConfiguration").inputs
    assert job["securityConfiguration"] == security["name"] == "dataplatform-dev-sales-csv-security"
    # Logs are encrypted by the job's own log groups (KMS), which keeps their names the documented ones.
    assert security["encryptionConfiguration"] == {
        "cloudwatchEncryption": {"cloudwatchEncryptionMode": "DISABLED"},
        "jobBookmarksEncryption": {"jobBookmarksEncryptionMode": "CSE-KMS", "kmsKeyArn": KEY},
        "s3Encryption": {"s3EncryptionMode": "SSE-KMS", "kmsKeyArn": KEY},
    }
    assert job["defaultArguments"] == {
        "--job-language": "python",
        "--custom-logGroup-prefix": "/aws-glue/jobs/dataplatform-dev-sales-csv",
        "--enable-metrics": "true",
        "--enable-observability-metrics": "true",
        "--job-bookmark-option": "job-bookmark-enable",
        "--TempDir": "s3://scripts-bucket/glue-temp/csv_to_parquet/",
        # The Stack and Pipeline dimensions of the job's run metrics (glue_common.start_run).
        "--metrics_stack": "dev",
        "--metrics_pipeline": "sales",
        "--output": "s3://processed/sales/",
    }
    role_policy = json.loads(estate.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert role_policy["Statement"][0] == {
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::scripts-bucket/glue/csv_to_parquet/*"],
    }


def test_content_hash_follows_code_not_caches(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "job.py").write_text("x = 1\n")
    first = content_hash(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "job.cpython-311.pyc").write_bytes(b"\x00")
    (tmp_path / "pkg.egg-info").mkdir()
    (tmp_path / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n")
    for cache in (".mypy_cache", ".ruff_cache", "dist"):
        (tmp_path / cache).mkdir()
        (tmp_path / cache / "x").write_text("cache\n")
    assert content_hash(tmp_path) == first
    (tmp_path / "pkg" / "job.py").write_text("x = 2\n")
    assert content_hash(tmp_path) != first
    (tmp_path / "pkg" / "job.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "job.py").rename(tmp_path / "pkg" / "renamed.py")
    assert content_hash(tmp_path) != first  # names count, not only bytes


def test_image_tag_follows_the_dockerfile_and_what_it_copies_only(tmp_path: Path) -> None:
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY image/requirements.txt /tmp/\nCOPY shared/ /tmp/build/shared/\n"
        "COPY --from=builder /out /out\n"
    )
    (tmp_path / "image" / "requirements.txt").write_text("boto3\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "code.py").write_text("x = 1\n")
    (tmp_path / "image" / "notes.md").write_text("not copied\n")
    first = image_content_hash(tmp_path, tmp_path / "image" / "Dockerfile")

    (tmp_path / "image" / "notes.md").write_text("edited, still not copied\n")
    (tmp_path / "README.md").write_text("outside what the Dockerfile copies\n")
    (tmp_path / "shared" / "__pycache__").mkdir()
    (tmp_path / "shared" / "__pycache__" / "code.cpython-311.pyc").write_bytes(b"\x00")
    assert image_content_hash(tmp_path, tmp_path / "image" / "Dockerfile") == first
    (tmp_path / "shared" / "code.py").write_text("x = 2\n")
    assert image_content_hash(tmp_path, tmp_path / "image" / "Dockerfile") != first
    (tmp_path / "shared" / "code.py").write_text("x = 1\n")
    (tmp_path / "image" / "requirements.txt").write_text("boto3>=1.35\n")
    assert image_content_hash(tmp_path, tmp_path / "image" / "Dockerfile") != first


def test_package_zip_holds_the_modules_under_the_package_name_byte_for_byte(tmp_path: Path) -> None:
    import zipfile

    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("x = 1\n")
    (package / "pyproject.toml").write_text("[project]\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00")
    first = python_package_zip(package, tmp_path / "build")
    again = python_package_zip(package, tmp_path / "elsewhere")
    assert first.read_bytes() == again.read_bytes()  # no timestamps, no machine paths
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["pkg/__init__.py", "pkg/mod.py"]
        assert archive.read("pkg/mod.py") == b"x = 1\n"
    (package / "mod.py").write_text("x = 2\n")
    assert python_package_zip(package, tmp_path / "build").name != first.name


@pytest.mark.parametrize(("remove", "protected"), [(True, False), (False, True)])
def test_state_table_is_encrypted_recoverable_and_protected_unless_removal_is_on(remove: bool, protected: bool) -> None:
    estate = run_under_mocks(
        "dev",
        CONFIG,
        lambda: StateTable(
            "bookmarks",
            StateTableArgs(
                kms_key_arn=KEY,
                hash_key="job",
                range_key="hour",
                attributes={"job": "S", "hour": "S"},
                remove_data_on_destroy=remove,
                ttl_attribute="expires_at",
            ),
        ),
    )
    table = estate.one("aws:dynamodb/table:Table").inputs
    assert table["name"] == "dataplatform-dev-bookmarks"
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": KEY}
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["deletionProtectionEnabled"] is protected
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["attributes"] == [{"name": "hour", "type": "S"}, {"name": "job", "type": "S"}]
    options = estate.options[("aws:dynamodb/table:Table", "bookmarks-table")]
    assert (options.protect, options.retain_on_delete) == (protected, protected)


def test_state_table_rejects_undeclared_key_attribute() -> None:
    with pytest.raises(ValueError, match=r"StateTable runs: declare the type of key attribute\(s\) \['run_id'\]"):
        run_under_mocks("dev", CONFIG, lambda: StateTable("runs", StateTableArgs(kms_key_arn=KEY, hash_key="run_id")))


def schedule(expression: str):
    return run_under_mocks(
        "dev",
        CONFIG,
        lambda: Schedule(
            "monthly",
            ScheduleArgs(
                account_id=ACCOUNT,
                kms_key_arn=KEY,
                expression=expression,
                state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m",
                state_machine_kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/machine",
            ),
        ),
    )


def test_schedule_starts_the_state_machine_with_retries_and_a_dead_letter_queue() -> None:
    estate = schedule("cron(0 6 1 * ? *)")
    s = estate.one("aws:scheduler/schedule:Schedule").inputs
    assert s["scheduleExpression"] == "cron(0 6 1 * ? *)" and s["scheduleExpressionTimezone"] == "UTC"
    assert s["kmsKeyArn"] == KEY and s["flexibleTimeWindow"] == {"mode": "OFF"}
    assert s["target"]["arn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m"
    assert s["target"]["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 10}
    assert s["target"]["deadLetterConfig"]["arn"].startswith(f"arn:aws:sqs:{REGION}:{ACCOUNT}:dataplatform-dev-monthly")
    role = json.loads(estate.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    # Scheduler acts as this role for all of it (EventBridge Scheduler user guide, "Encryption at rest"
    # and "Configuring a dead-letter queue"): start the encrypted machine, decrypt the payload, send
    # dead letters to the encrypted queue. A queue policy for scheduler.amazonaws.com would do nothing.
    assert role["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": [f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m"],
        },
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/machine"],
        },
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [s["target"]["deadLetterConfig"]["arn"]]},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY]},
    ]
    assert estate.of_type("aws:sqs/queuePolicy:QueuePolicy") == []


def test_schedule_rejects_a_malformed_expression() -> None:
    with pytest.raises(ValueError, match=r"Schedule monthly: 'cron\(0 6 1 \* \*\)' cron\(\) needs 6 fields"):
        schedule("cron(0 6 1 * *)")


def test_batch_job_rejects_a_size_fargate_does_not_offer() -> None:
    def program() -> None:
        BatchJob(
            "job",
            BatchJobArgs(
                pipeline="render-logs",
                account_id=ACCOUNT,
                region=REGION,
                compute=BatchEnvironment(
                    image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/jobs@sha256:{'0' * 64}",
                    execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/jobs-exec",
                    log_group_name="/aws/batch/jobs",
                ),
                command=["render-summary"],
                job_role_statements=[],
                vcpu=2,
                memory_mib=2048,
            ),
        )

    with pytest.raises(ValueError, match="BatchJob job: Fargate does not offer 2 vCPU with 2048 MiB"):
        run_under_mocks("dev", CONFIG, program)


def test_batch_compute_needs_a_dockerfile_or_an_image() -> None:
    def program() -> None:
        BatchCompute(
            "batch",
            BatchComputeArgs(account_id=ACCOUNT, region=REGION, kms_key_arn=KEY, subnet_ids=[], security_group_ids=[]),
        )

    with pytest.raises(
        ValueError, match=r"^BatchCompute batch: needs image_context \(a directory with a Dockerfile\) or image$"
    ):
        run_under_mocks("dev", CONFIG, program)


# --- network -----------------------------------------------------------------------------------------

SUBNET = "aws:ec2/subnet:Subnet"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def network_estate(nat_gateway: bool):
    zones = [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    return run_under_mocks(
        "dev",
        CONFIG,
        lambda: Network(
            "net",
            NetworkArgs(
                cidr="10.20.0.0/16",
                account_id=ACCOUNT,
                zones=zones,
                region=REGION,
                nat_gateway=nat_gateway,
                kms_key_arn=KEY,
            ),
        ),
    )


@pytest.mark.parametrize("nat_gateway", [False, True])
def test_private_subnets_are_named_private_and_keep_the_subnets_deployed_as_isolated(nat_gateway: bool) -> None:
    estate = network_estate(nat_gateway)
    subnets = {r.name: r.inputs for r in estate.of_type(SUBNET)}
    assert sorted(subnets) == [f"net-{kind}-{i}" for kind in ("private", "public") for i in range(3)]
    for i in range(3):
        assert subnets[f"net-private-{i}"]["tags"]["Name"].endswith(f"-private-{i}")
        assert subnets[f"net-private-{i}"]["cidrBlock"] == f"10.20.{128 + 16 * i}.0/20"  # the block's second half
        assert estate.options[(SUBNET, f"net-private-{i}")].aliases == (f"net-isolated-{i}",)
        assert estate.options[(ASSOCIATION, f"net-private-{i}-rta")].aliases == (f"net-isolated-{i}-rta",)
        assert estate.options[(SUBNET, f"net-public-{i}")].aliases == ()
    assert not [r.name for r in estate.resources if "isolated" in json.dumps([r.name, r.inputs])]
    (private_rt,) = [r.inputs for r in estate.of_type("aws:ec2/routeTable:RouteTable") if r.name == "net-private-rt"]
    routes = private_rt.get("routes") or []
    assert [route.get("natGatewayId") for route in routes] == (["net-nat-id"] if nat_gateway else [])


# --- state machine definitions ------------------------------------------------------------------------

ALERTS = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
NEWS = f"arn:aws:sns:{REGION}:{ACCOUNT}:notifications"


def load_step(max_wait_seconds: int = 120, wait_seconds: int = 30) -> PollStep:
    """A Data API statement polled until it finished: the covid19 load's shape."""
    return PollStep(
        name="LoadTables",
        start=TaskStep(
            name="LoadTables",
            resource="arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement",
            parameters={"Sqls": ["SELECT 1"]},
            result_path="$.load",
        ),
        check=TaskStep(
            name="LoadTablesCheck",
            resource="arn:aws:states:::aws-sdk:redshiftdata:describeStatement",
            parameters={"Id.$": "$.load.Id"},
            result_path="$.loadStatus",
        ),
        succeeded={"Variable": "$.loadStatus.Status", "StringEquals": "FINISHED"},
        failed={"Variable": "$.loadStatus.Status", "StringEquals": "FAILED"},
        max_wait_seconds=max_wait_seconds,
        wait_seconds=wait_seconds,
    )


def task(resource: str, parameters: dict, result_path: str | None, next_state: str) -> dict:
    return {
        "Type": "Task",
        "Resource": resource,
        "Parameters": parameters,
        "ResultPath": result_path,
        "Retry": [
            {
                "ErrorEquals": ["States.TaskFailed"],
                "IntervalSeconds": 10,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
                "JitterStrategy": "FULL",
            }
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "NotifyFailure"}],
        "Next": next_state,
    }


def test_a_poll_is_bounded_by_a_counter_and_alerts_when_it_runs_out() -> None:
    """The count lives in the execution's state: set to 0 once started, raised by States.MathAdd before
    every check (a Pass state's Parameters take intrinsic functions: Step Functions, "Intrinsic functions",
    https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html), and compared by a Choice
    after any check that did not decide: 120 s at 30 s a check is 4 checks, then LoadTablesTimedOut."""
    asl = pipeline_definition(
        "toy", [load_step()], alerts_topic_arn=ALERTS, notifications_topic_arn=None, timeout_seconds=900
    )
    states = asl["States"]
    assert asl["TimeoutSeconds"] == 900 and asl["StartAt"] == "LoadTables"
    assert {name: state for name, state in states.items() if name.startswith("LoadTables")} == {
        "LoadTables": task(
            "arn:aws:states:::aws-sdk:redshiftdata:batchExecuteStatement",
            {"Sqls": ["SELECT 1"]},
            "$.load",
            "LoadTablesStarted",
        ),
        "LoadTablesStarted": {
            "Type": "Pass",
            "Result": {"count": 0},
            "ResultPath": "$.loadTablesPolls",
            "Next": "LoadTablesWait",
        },
        "LoadTablesWait": {"Type": "Wait", "Seconds": 30, "Next": "LoadTablesCount"},
        "LoadTablesCount": {
            "Type": "Pass",
            "Parameters": {"count.$": "States.MathAdd($.loadTablesPolls.count, 1)"},
            "ResultPath": "$.loadTablesPolls",
            "Next": "LoadTablesCheck",
        },
        "LoadTablesCheck": task(
            "arn:aws:states:::aws-sdk:redshiftdata:describeStatement",
            {"Id.$": "$.load.Id"},
            "$.loadStatus",
            "LoadTablesReady",
        ),
        "LoadTablesReady": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.loadStatus.Status", "IsPresent": True, "Next": "LoadTablesDecide"}],
            "Default": "LoadTablesAgain",
        },
        "LoadTablesDecide": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.loadStatus.Status", "StringEquals": "FINISHED", "Next": "Succeeded"},
                {"Variable": "$.loadStatus.Status", "StringEquals": "FAILED", "Next": "LoadTablesFailed"},
            ],
            "Default": "LoadTablesAgain",
        },
        "LoadTablesAgain": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.loadTablesPolls.count", "NumericGreaterThanEquals": 4, "Next": "LoadTablesTimedOut"}
            ],
            "Default": "LoadTablesWait",
        },
        "LoadTablesFailed": {
            "Type": "Pass",
            "Parameters": {"Error": "LoadTablesFailed", "Cause.$": "States.JsonToString($.loadStatus)"},
            "ResultPath": "$.failure",
            "Next": "NotifyFailure",
        },
        "LoadTablesTimedOut": {
            "Type": "Pass",
            "Parameters": {
                "Error": "LoadTablesTimedOut",
                "Cause": "LoadTables did not finish within 2 minutes (checked every 30 seconds, 4 times)",
            },
            "ResultPath": "$.failure",
            "Next": "NotifyFailure",
        },
    }


def run_poll(asl: dict, statuses: list[dict]) -> tuple[list[str], dict]:
    """Run a definition as Step Functions would for its Pass, Wait, Choice and Task states, each check
    answering the next of `statuses`; returns the states entered up to the first publish, and the state."""
    states, name, document, visited, answers = asl["States"], asl["StartAt"], {}, [], iter(statuses)

    def read(path: str) -> object:
        value: object = document
        for part in path.removeprefix("$.").split("."):
            assert isinstance(value, dict) and part in value, f"{path} missing: States.Runtime"
            value = value[part]
        return value

    def put(path: str, value: object) -> None:
        document[path.removeprefix("$.")] = value

    def holds(rule: dict) -> bool:
        if "And" in rule:
            return all(holds(r) for r in rule["And"])
        if "IsPresent" in rule:
            try:
                read(rule["Variable"])
            except AssertionError:
                return not rule["IsPresent"]
            return bool(rule["IsPresent"])
        value = read(rule["Variable"])
        if "StringEquals" in rule:
            return value == rule["StringEquals"]
        assert isinstance(value, int)
        return value >= rule["NumericGreaterThanEquals"]

    while True:
        visited.append(name)
        state = states[name]
        if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::sns:publish":
            return visited, document
        if state["Type"] == "Task":
            put(state["ResultPath"], next(answers) if name.endswith("Check") else {"Id": "s-1"})
        elif state["Type"] == "Pass" and "Result" in state:
            put(state["ResultPath"], state["Result"])
        elif state["Type"] == "Pass":
            parameters = {}
            for key, value in state["Parameters"].items():
                added = re.fullmatch(r"States\.MathAdd\((\$[\w.]+), (-?\d+)\)", value) if key.endswith(".$") else None
                if added:
                    parameters[key.removesuffix(".$")] = read(added.group(1)) + int(added.group(2))
                elif key.endswith(".$"):
                    parameters[key.removesuffix(".$")] = value  # the failure's cause: not evaluated here
                else:
                    parameters[key] = value
            put(state["ResultPath"], parameters)
        elif state["Type"] == "Succeed":
            return visited, document
        if state["Type"] == "Choice":
            name = next((c["Next"] for c in state["Choices"] if holds(c)), state["Default"])
        else:
            name = state["Next"]


def test_a_poll_that_never_finishes_checks_exactly_its_rounds_then_alerts() -> None:
    asl = pipeline_definition(
        "toy", [load_step()], alerts_topic_arn=ALERTS, notifications_topic_arn=NEWS, timeout_seconds=900
    )
    # A statement never finishing, its status at first not even reported.
    visited, document = run_poll(asl, [{}] + [{"Status": "STARTED"}] * 10)
    assert visited.count("LoadTablesCheck") == 4
    assert visited[-3:] == ["LoadTablesAgain", "LoadTablesTimedOut", "NotifyFailure"]
    assert document["failure"] == {
        "Error": "LoadTablesTimedOut",
        "Cause": "LoadTables did not finish within 2 minutes (checked every 30 seconds, 4 times)",
    }
    assert asl["States"]["NotifyFailure"]["Parameters"]["TopicArn"] == ALERTS
    # Finished on the last allowed check: it goes on, and the success is news.
    visited, _ = run_poll(asl, [{"Status": "STARTED"}] * 3 + [{"Status": "FINISHED"}])
    assert visited[-2:] == ["LoadTablesDecide", "NotifySuccess"]
    assert asl["States"]["NotifySuccess"]["Parameters"]["TopicArn"] == NEWS


def test_success_is_published_only_when_there_is_a_notifications_topic() -> None:
    step = TaskStep(name="Work", resource="arn:aws:states:::glue:startJobRun.sync", parameters={"JobName": "j"})
    with_news = pipeline_definition(
        "toy", [step], alerts_topic_arn=ALERTS, notifications_topic_arn=NEWS, timeout_seconds=60
    )
    assert with_news["States"]["Work"]["Next"] == "NotifySuccess"
    assert with_news["States"]["NotifySuccess"]["Parameters"] == {
        "TopicArn": NEWS,
        "Subject": "[toy] succeeded",
        "Message": {
            "pipeline": "toy",
            "status": "SUCCEEDED",
            "execution.$": "$$.Execution.Id",
            "input.$": "$$.Execution.Input",
        },
    }
    assert "Succeeded" not in with_news["States"]
    quiet = pipeline_definition(
        "toy", [step], alerts_topic_arn=ALERTS, notifications_topic_arn=None, timeout_seconds=60
    )
    assert quiet["States"]["Work"]["Next"] == "Succeeded"
    assert quiet["States"]["Succeeded"] == {"Type": "Succeed"}
    assert set(quiet["States"]) == {"Work", "Succeeded", "NotifyFailure", "Failed", "NotificationFailed"}
    assert quiet["States"]["NotifyFailure"]["Parameters"]["TopicArn"] == ALERTS


@pytest.mark.parametrize("timeout", [0, MAX_EXECUTION_SECONDS + 1])
def test_a_run_timeout_outside_what_step_functions_allows_is_refused(timeout: int) -> None:
    """A Standard execution runs at most one year (Step Functions service quotas,
    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)."""
    step = TaskStep(name="Work", resource="arn:aws:states:::glue:startJobRun.sync", parameters={"JobName": "j"})
    with pytest.raises(ValueError, match="timeout_seconds must be 1 to 31536000"):
        pipeline_definition(
            "toy", [step], alerts_topic_arn=ALERTS, notifications_topic_arn=None, timeout_seconds=timeout
        )


def test_a_poll_must_be_bounded_within_the_execution_history() -> None:
    """A Standard execution's history holds at most 25,000 events (Step Functions service quotas): a
    poll of more than 1,000 checks (up to 15 events each) is refused, as is a bound below one wait."""
    assert load_step(max_wait_seconds=30_000, wait_seconds=30).rounds == 1000
    with pytest.raises(ValueError, match=r"1001 checks .* exceed 1000"):
        load_step(max_wait_seconds=30_030, wait_seconds=30)
    with pytest.raises(ValueError, match="max_wait_seconds at least wait_seconds"):
        load_step(max_wait_seconds=20, wait_seconds=30)
    # Two polls of 1,000 checks: 30,000 events, more than the 20,000 all polls of a machine may write.
    many = [load_step(max_wait_seconds=30_000), replace(load_step(max_wait_seconds=30_000), name="LoadMore")]
    with pytest.raises(ValueError, match="toy: its polls may write 30000 history events, more than 20000"):
        pipeline_definition("toy", many, alerts_topic_arn=ALERTS, notifications_topic_arn=None, timeout_seconds=60)


def test_a_state_machine_without_timeout_seconds_is_refused() -> None:
    step = TaskStep(name="Work", resource="arn:aws:states:::glue:startJobRun.sync", parameters={"JobName": "j"})
    definition = pipeline_definition(
        "toy", [step], alerts_topic_arn=ALERTS, notifications_topic_arn=None, timeout_seconds=60
    )
    del definition["TimeoutSeconds"]
    args = StateMachineArgs(account_id=ACCOUNT, kms_key_arn=KEY, definition=definition)
    with pytest.raises(ValueError, match="StateMachine flow: the definition needs TimeoutSeconds"):
        run_under_mocks("dev", CONFIG, lambda: StateMachine("flow", args))
