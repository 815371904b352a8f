"""Run the Pulumi program (or one component) under mocks and record every resource it registers.

Mocks see a resource's inputs and provider; the stack transformation also records each resource's
options (protect, retain_on_delete, parent, aliases), which never reach the mock monitor.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str = ""  # "<provider urn>::<provider id>"
    # What the engine knows of the registration and hands to a policy pack:
    urn: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    protect: bool
    retain_on_delete: bool
    parent_type: str | None
    aliases: tuple[str, ...] = ()  # each alias's name (or URN, for an alias given as one)


@dataclass
class Estate:
    stack: str
    resources: list[Recorded] = field(default_factory=list)  # what the mock monitor registered
    options: dict[tuple[str, str], Options] = field(default_factory=dict)  # (type, name) -> options

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name_contains: str = "") -> Recorded:
        found = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(found) == 1, f"expected one {typ} named *{name_contains}*, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Recorded:
        return next(r for r in self.resources if r.name == name)


# Real ARN shapes, so parliament judges the policies as it would in an account.
_ARN_FORMATS = {
    "aws:sns/topic:Topic": "arn:aws:sns:{r}:{a}:{n}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{r}:{a}:{n}",
    "aws:sfn/stateMachine:StateMachine": "arn:aws:states:{r}:{a}:stateMachine:{n}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{r}:{a}:log-group:{n}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{r}:{a}:rule/{n}",
    "aws:batch/jobQueue:JobQueue": "arn:aws:batch:{r}:{a}:job-queue/{n}",
    "aws:batch/computeEnvironment:ComputeEnvironment": "arn:aws:batch:{r}:{a}:compute-environment/{n}",
    "aws:batch/jobDefinition:JobDefinition": "arn:aws:batch:{r}:{a}:job-definition/{n}:1",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{r}:{a}:repository/{n}",
    "aws:redshiftserverless/workgroup:Workgroup": "arn:aws:redshift-serverless:{r}:{a}:workgroup/0b9f4c3e-{n}",
    "aws:redshiftserverless/namespace:Namespace": "arn:aws:redshift-serverless:{r}:{a}:namespace/5d2e-{n}",
    "aws:iam/role:Role": "arn:aws:iam::{a}:role/{n}",
    "aws:glue/job:Job": "arn:aws:glue:{r}:{a}:job/{n}",
    "aws:scheduler/schedule:Schedule": "arn:aws:scheduler:{r}:{a}:schedule/default/{n}",
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:{r}:{a}:table/{n}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{n}",
}


def _arn(typ: str, name: str) -> str:
    service = typ.split(":")[1].split("/")[0]
    default = "arn:aws:" + service + ":{r}:{a}:" + typ.rsplit(":", 1)[-1].lower() + "/{n}"
    return _ARN_FORMATS.get(typ, default).format(r=REGION, a=ACCOUNT, n=name)


def repo_digest(image_name: str) -> str:
    """What the mocked registry answers for a push of `<repository>:<tag>`: `<repository>@sha256:<hex>`,
    a digest that differs with the tag, as a real push's does with the content."""
    return f"{image_name.rpartition(':')[0]}@sha256:{hashlib.sha256(image_name.encode()).hexdigest()}"


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The mock monitor, also keeping each registration's URN, parent and (property) dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.mocks: RecordingMocks = mocks

    def RegisterResource(self, request: Any) -> Any:
        # Registrations run on a thread pool: take this thread's record, not the list's last entry.
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            recorded = self.mocks.registering.recorded
            recorded.urn = response.urn
            recorded.parent = request.parent
            recorded.dependencies = list(request.dependencies)
            recorded.property_dependencies = {k: list(v.urns) for k, v in request.propertyDependencies.items()}
        return response


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.registering = threading.local()  # the Recorded new_resource made on this thread

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        prefix = inputs.get("namePrefix") or inputs.get("bucketPrefix")
        given = inputs.get("name") or inputs.get("workgroupName") or inputs.get("namespaceName")
        name = given or (f"{prefix}20260101000000000000000001" if prefix else f"{args.name}-mock")
        outputs.setdefault("name", name)
        outputs.setdefault("arn", _arn(args.typ, name))
        extra = {
            "aws:s3/bucket:Bucket": {"bucket": name},
            "aws:kms/key:Key": {"keyId": f"key-{args.name}", "arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{args.name}"},
            "aws:ecr/repository:Repository": {
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
                "registryId": ACCOUNT,
            },
            "aws:sqs/queue:Queue": {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"},
            "aws:redshiftserverless/namespace:Namespace": {
                "adminPasswordSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:redshift!{name}"
            },
            # The AWS-managed prefix list of the S3 gateway endpoint (pl-6da54004 is S3's in eu-west-1).
            "aws:ec2/vpcEndpoint:VpcEndpoint": {"prefixListId": "pl-6da54004"},
            "docker:index/image:Image": {"repoDigest": repo_digest(str(inputs.get("imageName", "")))},
            # IAM names an OIDC provider after its URL without the scheme.
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider": {
                "arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{str(inputs.get('url', '')).removeprefix('https://')}"
            },
        }
        outputs.update(extra.get(args.typ, {}))
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            outputs.pop("source", None)  # assets are not plain values
            inputs["source"] = {"file": inputs["source"].path}  # recorded as the file it uploads
        recorded = Recorded(type=args.typ, name=args.name, inputs=inputs, provider=args.provider or "")
        self.registering.recorded = recorded
        self.estate.resources.append(recorded)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                "userId": "AIDA",
                "id": ACCOUNT,
            },
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION, "id": REGION},
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
                "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"],
            },
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
                "userName": "AWS",
                "password": "token",
                "authorizationToken": "QVdTOnRva2Vu",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
            },
        }
        if args.token not in answers:
            raise AssertionError(f"the program invoked {args.token}, which the mocks do not answer")
        return answers[args.token], []  # no check failures


def stack_config(file: str) -> dict[str, str]:
    """A stack file's config as Pulumi hands it to the program: strings, with lists as JSON."""
    data = yaml.safe_load((ROOT / file).read_text())["config"]

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return str(value)

    return {k: text(v) for k, v in data.items()}


def run_under_mocks(stack: str, config: dict[str, str], program: Callable[[], Any]) -> Estate:
    """Run `program` as stack `stack` under mocks; returns every resource with its resolved inputs."""
    estate = Estate(stack=stack)
    # Mocks bind to the current event loop: give each build a fresh one before set_mocks.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A fresh root stack per build, else the previous build's stack (and its transformations) lingers.
    pulumi.runtime.settings.ROOT.set(None)
    mocks = RecordingMocks(estate)
    pulumi.runtime.set_mocks(mocks, project="dataplatform", stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(config)

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        opts = args.opts
        # No parent at this point means the stack itself will be the parent.
        parent_type = getattr(opts.parent, "_type", None) if opts.parent else "pulumi:pulumi:Stack"
        aliases = tuple(str(a.name) if isinstance(a, pulumi.Alias) else str(a) for a in opts.aliases or [])
        estate.options[(args.type_, args.name)] = Options(
            bool(opts.protect), bool(opts.retain_on_delete), parent_type, aliases
        )

    @pulumi.runtime.test
    def body() -> None:
        pulumi.runtime.register_stack_transformation(record_options)
        program()

    try:
        body()
    finally:
        loop.close()
    return estate


def build_estate(stack: str, stack_file: str, overrides: dict[str, str] | None = None) -> Estate:
    """The whole program (__main__.py) for a stack file's config."""
    config = {**stack_config(stack_file), **(overrides or {})}
    return run_under_mocks(stack, config, lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
