"""components/ as the installable distribution `dataplatform-components`, used by another Pulumi program.

The package is built and installed, with job_runtime (its one dependency beside Pulumi's), into a
temporary directory; a small program in another
temporary directory (its own Glue script, its own job helpers, an image given by digest) builds a lake,
a Glue job and two Batch jobs with it under mocks, in a Python where the repository root is not
importable. The rest: the package's metadata against requirements.in, and Args made of plain values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import pulumi
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import components
from components.compute import BatchCompute
from job_runtime import metrics
from tests.infra.harness import ROOT

ACCOUNT = "210987654321"
REGION = "eu-central-1"
# The image the other program's jobs run, built and pushed elsewhere (another account's repository).
IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/shared-jobs@sha256:{'ab' * 32}"
# Values another stack exports and this program passes on as plain inputs.
SHARED_EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shared-jobs-exec"
SHARED_LOG_GROUP = "/aws/batch/shared-jobs"

GLUE_SCRIPT = '''"""Drops empty orders."""


def main() -> None:
    print("clean")
'''
HELPER = """def non_empty(rows):
    return [r for r in rows if r]
"""

# The other program: its own project, its own files, only `components` from this repository.
PROGRAM = f'''"""An analytics program built from the dataplatform components."""

import pulumi
import pulumi_aws as aws

from components.compute import (
    BatchCompute,
    BatchComputeArgs,
    BatchEnvironment,
    BatchJob,
    BatchJobArgs,
    GlueJob,
    GlueJobArgs,
)
from components.storage import DataLake, DataLakeArgs

account = aws.get_caller_identity_output().account_id
region = aws.get_region_output().region

lake = DataLake("lake", DataLakeArgs(account_id=account, region=region, remove_data_on_destroy=True))
clean = GlueJob(
    "clean-orders",
    GlueJobArgs(
        account_id=account,
        region=region,
        pipeline="orders",
        kms_key_arn=lake.key_arn,
        script_path="jobs/clean_orders.py",
        extra_py_files=("jobs/orders_helpers",),
        scripts_bucket=lake.zones.scripts.name,
        scripts_bucket_arn=lake.zones.scripts.arn,
        role_statements=[lake.zones.raw.read("orders/"), lake.zones.processed.write("orders/")],
        arguments={{"--source": lake.zones.raw.uri("orders/")}},
    ),
)
batch = BatchCompute(
    "jobs",
    BatchComputeArgs(
        account_id=account,
        region=region,
        kms_key_arn=lake.key_arn,
        subnet_ids=["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        security_group_ids=["sg-0c1d2e3f"],
        image="{IMAGE}",
        remove_data_on_destroy=True,
    ),
)
report = BatchJob(
    "report",
    BatchJobArgs(
        account_id=account,
        region=region,
        pipeline="orders",
        compute=batch.job_environment,
        command=["orders-report", "--month", "Ref::month"],
        job_role_statements=[lake.zones.processed.read("orders/")],
    ),
)
export = BatchJob(
    "export",
    BatchJobArgs(
        account_id=account,
        region=region,
        pipeline="orders",
        compute=BatchEnvironment(
            image_uri="{IMAGE}",
            execution_role_arn="{SHARED_EXECUTION_ROLE}",
            log_group_name="{SHARED_LOG_GROUP}",
        ),
        command=["orders-export"],
        job_role_statements=[lake.zones.curated.write("orders/")],
    ),
)
pulumi.export("glue_job", clean.job_name)
pulumi.export("report_job_definition", report.job_definition_arn)
'''

# Runs the program under Pulumi's mocks and prints every resource registered, as JSON.
RUNNER = f'''import json
import runpy
import sys

import pulumi

resources = []


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        prefix = inputs.get("bucketPrefix")
        name = inputs.get("name") or (f"{{prefix}}0001" if prefix else args.name)
        service, kind = args.typ.split(":")[1].split("/")[0], args.typ.rsplit(":", 1)[-1].lower()
        outputs.setdefault("name", name)
        outputs.setdefault("arn", f"arn:aws:{{service}}:{REGION}:{ACCOUNT}:{{kind}}/{{name}}")
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.update(bucket=name, arn=f"arn:aws:s3:::{{name}}")
        if args.typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{{name}}"
        if args.typ == "aws:kms/key:Key":
            outputs.update(keyId="key-1", arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/key-1")
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            outputs.pop("source", None)
            inputs["source"] = {{"file": inputs["source"].path}}
        resources.append({{"type": args.typ, "name": args.name, "inputs": inputs}})
        return f"{{args.name}}-id", outputs

    def call(self, args):
        answers = {{
            "aws:index/getCallerIdentity:getCallerIdentity": {{
                "accountId": "{ACCOUNT}", "arn": "arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA", "id": "{ACCOUNT}"
            }},
            "aws:index/getRegion:getRegion": {{"region": "{REGION}", "name": "{REGION}", "id": "{REGION}"}},
        }}
        if args.token not in answers:
            raise AssertionError(f"the program invoked {{args.token}}, which the mocks do not answer")
        return answers[args.token], []


pulumi.runtime.set_mocks(Mocks(), project="analytics", stack="dev", preview=False)


@pulumi.runtime.test
def run():
    runpy.run_path("__main__.py", run_name="__main__")


run()
try:
    import pipelines  # noqa: F401
except ModuleNotFoundError:
    repository_importable = False
else:
    repository_importable = True
import components

print(json.dumps({{
    "resources": resources,
    "repository_importable": repository_importable,
    "components_file": components.__file__,
}}, default=repr))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """components/ and job_runtime/ built with the virtualenv's setuptools (no build isolation, nothing
    downloaded) and installed without other dependencies into a directory of their own."""
    tmp = tmp_path_factory.mktemp("package")
    # Built from a copy: setuptools builds in the source directory and would leave build/ and egg-info there.
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    sources = [tmp / name for name in ("job_runtime", "components")]
    for source in sources:
        shutil.copytree(ROOT / source.name, source, ignore=ignore)
    target = tmp / "site"
    pip = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index")
    result = subprocess.run(
        [*pip, "--target", str(target), *map(str, sources)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        "pip could not build components/ (setuptools without bdist_wheel, i.e. older than 70.1, means the "
        "virtualenv predates the lock: `make setup` installs requirements-dev.txt):\n" + result.stdout + result.stderr
    )
    return target


@pytest.fixture(scope="module")
def program_run(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    program = tmp_path_factory.mktemp("analytics")
    (program / "Pulumi.yaml").write_text("name: analytics\nruntime: python\n")
    (program / "__main__.py").write_text(PROGRAM)
    (program / "run_under_mocks.py").write_text(RUNNER)
    (program / "jobs" / "orders_helpers").mkdir(parents=True)
    (program / "jobs" / "clean_orders.py").write_text(GLUE_SCRIPT)
    (program / "jobs" / "orders_helpers" / "__init__.py").write_text(HELPER)
    # Only the installed package beside the interpreter's own site-packages: the repository root (this
    # test's working directory and pytest's pythonpath) is not on the path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "run_under_mocks.py"], cwd=program, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    run: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    run["program"] = program
    return run


def of_type(run: dict[str, Any], typ: str) -> list[dict[str, Any]]:
    return [r for r in run["resources"] if r["type"] == typ]


def named(run: dict[str, Any], name: str) -> dict[str, Any]:
    found = [r for r in run["resources"] if r["name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_the_program_imports_the_installed_package_and_not_the_repository(
    program_run: dict[str, Any], installed: Path
) -> None:
    assert program_run["repository_importable"] is False
    assert program_run["components_file"] == str(installed / "components" / "__init__.py")


def test_the_installed_package_is_typed_and_carries_its_version(installed: Path) -> None:
    assert (installed / "components" / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "components" / "pyproject.toml").read_text())["project"]
    metadata = (installed / f"dataplatform_components-{pyproject['version']}.dist-info" / "METADATA").read_text()
    assert re.findall(r"^Version: (.+)$", metadata, re.M) == [pyproject["version"]]
    assert pyproject["version"] == components.__version__
    # The installed requirements are job-runtime and requirements.in's, however the build backend spells them.
    installed_requirements = {requirement(r) for r in re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)}
    assert installed_requirements - {("job-runtime", SpecifierSet(">=1,<2"))} == {
        requirement(r) for r in requirement_lines(ROOT / "requirements.in")
    }
    assert installed_requirements == {
        ("job-runtime", SpecifierSet(">=1,<2")),
        ("pulumi", SpecifierSet(">=3.200,<4")),
        ("pulumi-aws", SpecifierSet(">=7.0,<8")),
        ("pulumi-docker", SpecifierSet(">=4.5,<6")),
    }


def requirement(text: str) -> tuple[str, SpecifierSet]:
    parsed = Requirement(text)
    return parsed.name, parsed.specifier


def test_the_lake_builds_its_key_and_zone_buckets(program_run: dict[str, Any]) -> None:
    buckets = {r["name"]: r["inputs"]["bucketPrefix"] for r in of_type(program_run, "aws:s3/bucket:Bucket")}
    assert buckets == {
        "lake-access-logs": "analytics-dev-access-logs-",
        "lake-raw": "analytics-dev-raw-",
        "lake-processed": "analytics-dev-processed-",
        "lake-curated": "analytics-dev-curated-",
        "lake-scripts": "analytics-dev-scripts-",
        "lake-query-results": "analytics-dev-query-results-",
    }
    assert named(program_run, "lake-key")["inputs"]["enableKeyRotation"] is True


def test_the_glue_job_runs_the_programs_script_from_the_scripts_bucket(program_run: dict[str, Any]) -> None:
    script = program_run["program"] / "jobs" / "clean_orders.py"
    digest = hashlib.sha256(b"clean_orders.py\0" + script.read_bytes() + b"\0").hexdigest()[:16]
    key = f"glue/clean_orders/{digest}.py"
    upload = named(program_run, "clean-orders-script")["inputs"]
    assert upload == {
        "bucket": "analytics-dev-scripts-0001",
        "key": key,
        "source": {"file": "jobs/clean_orders.py"},
        "contentType": "text/x-python",
    }
    # The helper package travels as a zip the component wrote under the program's build/ directory.
    helpers = named(program_run, "clean-orders-lib-orders-helpers")["inputs"]
    assert re.fullmatch(r"build/glue-py-files/orders_helpers-[0-9a-f]{16}\.zip", helpers["source"]["file"])
    assert (program_run["program"] / helpers["source"]["file"]).is_file()
    job = named(program_run, "clean-orders-job")["inputs"]
    assert job["name"] == "analytics-dev-clean-orders"
    assert job["glueVersion"] == "5.0"
    assert job["command"] == {
        "name": "glueetl",
        "scriptLocation": f"s3://analytics-dev-scripts-0001/{key}",
        "pythonVersion": "3",
    }
    arguments = job["defaultArguments"]
    assert arguments["--source"] == "s3://analytics-dev-raw-0001/orders/"
    assert arguments["--extra-py-files"] == f"s3://analytics-dev-scripts-0001/{helpers['key']}"
    assert (arguments["--metrics_stack"], arguments["--metrics_pipeline"]) == ("dev", "orders")


def container(run: dict[str, Any], job: str) -> dict[str, Any]:
    properties: dict[str, Any] = json.loads(named(run, f"{job}-definition")["inputs"]["containerProperties"])
    return properties


def test_batch_jobs_run_the_given_image_and_nothing_is_built(program_run: dict[str, Any]) -> None:
    assert not of_type(program_run, "docker:index/image:Image")
    report = container(program_run, "report")
    assert report["image"] == IMAGE
    assert report["command"] == ["orders-report", "--month", "Ref::month"]
    # The compute's execution role (the mocks give a role its resource name).
    assert report["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/jobs-execution-role"
    assert report["logConfiguration"]["options"] == {
        "awslogs-group": "/aws/batch/analytics-dev-jobs",
        "awslogs-region": REGION,
        "awslogs-stream-prefix": "report",
    }
    assert report["environment"] == [
        {"name": "METRICS_PIPELINE", "value": "orders"},
        {"name": "METRICS_STACK", "value": "dev"},
    ]


def test_a_batch_job_takes_its_environment_as_plain_values(program_run: dict[str, Any]) -> None:
    """A job on compute this program did not build: the image, execution role and log group as values."""
    export = container(program_run, "export")
    assert (export["image"], export["executionRoleArn"], export["logConfiguration"]["options"]["awslogs-group"]) == (
        IMAGE,
        SHARED_EXECUTION_ROLE,
        SHARED_LOG_GROUP,
    )


# --- the package's metadata and its Args ------------------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def test_package_dependencies_are_the_programs_ranges() -> None:
    """The package asks for exactly the ranges the program is locked from (requirements.in), and its
    version is the one `components.__version__` reports."""
    project = tomllib.loads((ROOT / "components" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "dataplatform-components"
    assert project["version"] == components.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["dependencies"] == ["job-runtime>=1,<2", *requirement_lines(ROOT / "requirements.in")]
    runtime = tomllib.loads((ROOT / "job_runtime" / "pyproject.toml").read_text())["project"]
    assert (runtime["name"], runtime["dependencies"]) == ("job-runtime", [])
    assert Requirement("job-runtime>=1,<2").specifier.contains(runtime["version"])
    assert project["requires-python"] == ">=3.11,<3.12"


def component_classes() -> list[type[pulumi.ComponentResource]]:
    found = []
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
        ]
    return found


def hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations of a class or function of a module with postponed annotations (pulumi.Input's
    own forward reference to Output included)."""
    return typing.get_type_hints(obj, vars(sys.modules[obj.__module__]), {"Output": pulumi.Output, "T": Any})


def resource_types_in(annotation: Any, seen: set[Any]) -> list[Any]:
    """Every pulumi.Resource subclass an annotation can hold, through unions, generics and nested dataclasses."""
    if annotation in seen:
        return []
    seen.add(annotation)
    if inspect.isclass(annotation) and issubclass(annotation, pulumi.Resource):
        return [annotation]
    found = []
    if inspect.isclass(annotation) and dataclasses.is_dataclass(annotation):
        for hint in hints(annotation).values():
            found += resource_types_in(hint, seen)
    for arg in typing.get_args(annotation):
        found += resource_types_in(arg, seen)
    return found


def test_every_component_takes_args_of_plain_values() -> None:
    """Each component is `Xxx(name, args: XxxArgs, opts)` with a frozen, keyword-only XxxArgs dataclass; no
    field of it (or of a dataclass inside it) can hold a resource: ids, ARNs, names and settings only."""
    classes = component_classes()
    # Every component, as components/README.md's table lists them.
    assert sorted(c.__name__ for c in classes) == [
        "AlertTopics",
        "BatchCompute",
        "BatchJob",
        "CatalogTable",
        "Crawler",
        "DataLake",
        "GithubDeployRole",
        "GlueJob",
        "GlueStateNotifications",
        "GlueWorkflow",
        "Monitoring",
        "Network",
        "ObjectCreatedRule",
        "QueryCatalog",
        "Schedule",
        "StateMachine",
        "StateTable",
        "Warehouse",
        "WarehouseAccess",
    ]
    for cls in classes:
        assert list(inspect.signature(cls.__init__).parameters) == ["self", "name", "args", "opts"], cls
        args_type = hints(cls.__init__)["args"]
        assert args_type.__name__ == f"{cls.__name__}Args", cls
        assert dataclasses.is_dataclass(args_type), cls
        assert vars(args_type)["__dataclass_params__"].frozen and dataclasses.fields(args_type), cls
        assert all(f.kw_only for f in dataclasses.fields(args_type)), cls
        assert resource_types_in(args_type, set()) == [], cls


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Inner:
    compute: BatchCompute


@dataclasses.dataclass(frozen=True, kw_only=True)
class _HoldsCompute:
    name: pulumi.Input[str]
    inner: tuple[_Inner, ...] | None = None


def test_the_introspection_finds_a_component_inside_args() -> None:
    """The check above finds a component however deep an Args holds it (here: in a dataclass in a tuple)."""
    assert resource_types_in(_HoldsCompute, set()) == [BatchCompute]


# --- the job contract: job_runtime, a dependency of the package -------------------------------------------


def test_glue_jobs_read_the_arguments_glue_job_sets() -> None:
    """glue_common takes a run's Stack and Pipeline from the default arguments GlueJob sets (the names in
    job_runtime.metrics, which both import)."""
    import glue_common

    run = glue_common.start_run([metrics.STACK_ARGUMENT, "dev", metrics.PIPELINE_ARGUMENT, "orders"])
    assert (run.stack, run.pipeline) == ("dev", "orders")
    assert (glue_common.start_run([]).stack, glue_common.start_run([]).pipeline) == (metrics.LOCAL_STACK, "")


def test_nothing_in_the_package_imports_the_program() -> None:
    """A component module imports only the standard library, its dependencies (job_runtime among them: the
    jobs' side of the contract) and other component modules."""
    program_packages = {"pipelines", "localrun", "glue_scripts", "batch_image", "ingestion", "tests"}
    for path in sorted((ROOT / "components").glob("*.py")):
        imported = set(re.findall(r"^\s*(?:from|import) ([a-z_]+)", path.read_text(), re.M))
        assert not imported & program_packages, path.name
