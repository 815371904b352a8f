"""Components the render-log pipeline does not use yet, each built alone under mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.compute import (
    BatchCompute,
    BatchComputeArgs,
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
from components.orchestration import Schedule, ScheduleArgs
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
        compute = BatchCompute(
            "batch",
            BatchComputeArgs(
                account_id=ACCOUNT,
                region=REGION,
                kms_key_arn=KEY,
                image_context="batch_image",
                subnet_ids=[],
                security_group_ids=[],
            ),
        )
        BatchJob(
            "job",
            BatchJobArgs(
                account_id=ACCOUNT,
                region=REGION,
                compute=compute,
                command=["render-summary"],
                job_role_statements=[],
                vcpu=2,
                memory_mib=2048,
            ),
        )

    with pytest.raises(ValueError, match="BatchJob job: Fargate does not offer 2 vCPU with 2048 MiB"):
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
