"""Run the Pulumi program (or one component) under mocks and record every resource it registers.

Mocks see a resource's inputs and provider; the stack transformation also records each resource's
options (protect, retain_on_delete, parent), which never reach the mock monitor.
"""

from __future__ import annotations

import asyncio
import json
import runpy
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
    provider: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    parent_type: str | None = None


@dataclass
class Estate:
    stack: str
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name_contains: str = "") -> Recorded:
        found = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(found) == 1, f"expected one {typ} named *{name_contains}*, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Recorded:
        return next(r for r in self.resources if r.name == name)


def _arn(typ: str, name: str) -> str:
    service = typ.split(":")[1]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{typ.split(':')[-1].lower()}/{name}"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, estate: Estate) -> None:
        self.estate = estate

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        prefix = inputs.get("namePrefix") or inputs.get("bucketPrefix")
        name = inputs.get("name") or (f"{prefix}20260101000000000000000001" if prefix else f"{args.name}-mock")
        outputs.setdefault("name", name)
        outputs.setdefault("arn", _arn(args.typ, name))
        extra = {
            "aws:s3/bucket:Bucket": {"bucket": name, "arn": f"arn:aws:s3:::{name}"},
            "aws:kms/key:Key": {"keyId": f"key-{args.name}", "arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{args.name}"},
            "aws:ecr/repository:Repository": {
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
                "registryId": ACCOUNT,
            },
            "aws:sqs/queue:Queue": {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"},
            "aws:redshiftserverless/namespace:Namespace": {
                "adminPasswordSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:redshift!{name}"
            },
            "aws:batch/jobDefinition:JobDefinition": {
                "arn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}:1"
            },
        }
        outputs.update(extra.get(args.typ, {}))
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            outputs.pop("source", None)  # assets are not plain values
        if args.typ != "pulumi:providers:aws":
            record = self.estate.named(args.name) if any(r.name == args.name for r in self.estate.resources) else None
            if record is None:
                record = Recorded(type=args.typ, name=args.name, inputs=inputs)
                self.estate.resources.append(record)
            record.type, record.inputs, record.provider = args.typ, inputs, args.provider or ""
        else:
            self.estate.resources.append(Recorded(type=args.typ, name=args.name, inputs=inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        answers = {
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
        return answers[args.token]


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
    pulumi.runtime.set_mocks(RecordingMocks(estate), project="dataplatform", stack=stack, preview=False)
    pulumi.runtime.set_all_config(config)

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        opts = args.opts
        estate.resources.append(
            Recorded(
                type=args.type_,
                name=args.name,
                inputs={},
                protect=bool(opts.protect),
                retain_on_delete=bool(opts.retain_on_delete),
                parent_type=getattr(opts.parent, "_type", None) if opts.parent else None,
            )
        )
        return None

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
