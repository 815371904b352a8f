"""The policy pack (policy/) on the mocked dev, prod and long pull-request estates, and on broken resources.

The adapter below hands each policy what the engine would: PolicyResource objects whose props are the
resolved camelCase inputs behind pulumi_policy's unknown-checking proxy, the aws provider (defaultTags as
the JSON string the engine sends), parent, dependencies and property dependencies as resource objects.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import keyword
import re
import runpy
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import guardrails
import pulumi_policy.policy
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from components.aws_limits import LOG_RETENTION_DAYS
from tests.infra.harness import ROOT, Estate, Recorded, build_estate

Violation = tuple[str, str]  # (policy name, message)
LONG_PR_STACK = "pr-4812-add-device-latency-percentiles-and-more"


# --- the engine's view of an estate ---------------------------------------------------------------


def engine_props(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Inputs as the SDK hands them to a policy: secrets unwrapped, behind the unknown-checking proxy."""
    return unknown_checking_proxy(deserialize_properties(copy.deepcopy(dict(inputs))))


def policy_resources(recorded: list[Recorded]) -> list[PolicyResource]:
    providers = {
        r.urn: PolicyProviderResource(r.type, engine_props(r.inputs), r.urn, r.name)
        for r in recorded
        if r.type.startswith("pulumi:providers:")
    }
    resources: dict[str, PolicyResource] = {}
    for r in recorded:
        # The options the estate's policies do not read stay at the engine's defaults.
        opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], r.parent or None)
        provider = providers.get(r.provider.rpartition("::")[0])  # Recorded.provider is "<urn>::<id>"
        resources[r.urn] = PolicyResource(r.type, engine_props(r.inputs), r.urn, r.name, opts, provider, None, [], {})
    for r in recorded:  # like the SDK, references to resources outside the list are dropped
        resource = resources[r.urn]
        resource.parent = resources.get(r.parent)
        resource.dependencies = [resources[u] for u in r.dependencies if u in resources]
        resource.property_dependencies = {
            key: [resources[u] for u in urns if u in resources] for key, urns in r.property_dependencies.items()
        }
    return list(resources.values())


def violations(resources: list[PolicyResource]) -> list[Violation]:
    """Every policy of the pack: resource policies per resource, stack policies once."""
    found: list[Violation] = []
    for policy in guardrails.POLICIES:

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            found.append((name, message))

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                policy.validate(
                    ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider), report
                )
        else:
            assert isinstance(policy, StackValidationPolicy)
            policy.validate(StackValidationArgs(resources), report)
    return found


def check(estate: Estate, *recorded: Recorded) -> list[Violation]:
    """Every policy on these resources, each with the estate's aws provider (as a small preview sends them)."""
    return violations(policy_resources([estate.one("pulumi:providers:aws"), *recorded]))


def broken(original: Recorded, **changes: Any) -> Recorded:
    """A copy of a real resource with some inputs changed; None removes an input (the engine omits unset ones)."""
    inputs = copy.deepcopy(original.inputs)
    for key, value in changes.items():
        if value is None:
            inputs.pop(key, None)
        else:
            inputs[key] = value
    return replace(original, inputs=inputs)


@pytest.fixture(scope="module")
def with_ci_role() -> Estate:
    ci = {"dataplatform:ciRoleEnabled": "true", "dataplatform:ciGithubRepository": "acme/dataplatform"}
    return build_estate("prod", "Pulumi.prod.yaml", ci)


@pytest.fixture(scope="module")
def long_pr() -> Estate:
    return build_estate(LONG_PR_STACK, "Pulumi.dev.yaml")


# --- the estates ----------------------------------------------------------------------------------


def test_the_adapter_sees_each_resource_with_its_own_urn_and_links(dev: Estate) -> None:
    resources = {r.name: r for r in policy_resources(dev.resources)}
    assert len(resources) == len(dev.resources)  # logical names are unique in this estate
    for r in resources.values():
        assert r.urn.endswith(f"{r.resource_type}::{r.name}"), r.name
    block = resources["lake-raw-public-access"]
    assert [b.name for b in block.property_dependencies["bucket"]] == ["lake-raw"]
    assert block.parent is resources["lake-raw"] and block.provider is not None
    assert block.provider.props["defaultTags"] == dev.one("pulumi:providers:aws").inputs["defaultTags"]


def test_every_estate_passes_every_policy(dev: Estate, prod: Estate, long_pr: Estate, with_ci_role: Estate) -> None:
    for estate in (dev, prod, long_pr, with_ci_role):
        assert violations(policy_resources(estate.resources)) == [], estate.stack


def test_only_the_bucket_receiving_access_logs_may_use_sse_s3(dev: Estate) -> None:
    """S3 server access logging cannot deliver to an SSE-KMS bucket: its target uses AES256, and only it."""
    logs, raw = dev.named("lake-access-logs-encryption"), dev.named("lake-raw-encryption")
    assert logs.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    loggings = dev.of_type("aws:s3/bucketLogging:BucketLogging")
    assert len(loggings) == 5
    # The log bucket with all its companions, its encryption switched to the estate's KMS rule.
    bucket = [r for r in dev.resources if r.name.startswith("lake-access-logs") and r is not logs]
    assert len(bucket) == 6  # the bucket, its policy, public access block, ownership, versioning, lifecycle
    assert check(dev, *bucket, *loggings, broken(logs, rules=raw.inputs["rules"])) == [
        (
            "s3-bucket-encryption-kms",
            "bucket encryption lake-access-logs-encryption: rules[0].applyServerSideEncryptionByDefault.sseAlgorithm "
            'is "aws:kms"; set it to "AES256": this bucket receives S3 server access logs, which S3 cannot deliver '
            "to an SSE-KMS bucket",
        )
    ]
    # Without the BucketLogging that names it, the same SSE-S3 bucket is an ordinary bucket and must use KMS.
    assert check(dev, *bucket, logs) == [
        (
            "s3-bucket-encryption-kms",
            "bucket encryption lake-access-logs-encryption: rules[0].applyServerSideEncryptionByDefault.sseAlgorithm "
            'is "AES256"; set it to "aws:kms" (or "aws:kms:dsse") with the estate\'s KMS key as kmsMasterKeyId',
        ),
        (
            "s3-bucket-encryption-kms",
            "bucket encryption lake-access-logs-encryption: rules[0].bucketKeyEnabled is false; set it to true "
            "(an S3 Bucket Key cuts KMS requests and their cost)",
        ),
    ]


def test_every_policy_examines_resources_of_the_dev_estate(dev: Estate) -> None:
    counts = {name: sum(r.type in types for r in dev.resources) for name, types in guardrails.POLICY_TYPES.items()}
    assert counts == {
        "s3-bucket-encryption-kms": 6,
        "s3-bucket-policy-tls-only": 6,
        "s3-public-access-blocked": 6,
        "kms-key-rotation": 1,
        "redshift-private-managed-password": 2,
        "glue-security-configuration": 7,  # 5 jobs, 2 crawlers (sales input, COVID-19 landing)
        "glue-job-bounded-runs": 5,
        "batch-job-bounded-runs": 3,
        "sfn-tasks-retry-and-catch": 4,
        "log-group-retention-and-kms": 18,  # flow logs, Batch, 4 state machines, 5 Glue jobs x 2, 2 crawlers
        # the taggable types of test_estate.py's resource families, with 31 alarms, 2 topics, 15 rules
        "estate-tags": 159,
        "physical-name-limits": 143,
        # 3 schedules, 15 rules (3 start runs, 5 announce Glue steps, 7 count failed jobs), 3 Glue
        # triggers, 2 crawlers
        "schedule-expressions-valid": 23,
    }
    # The stack policies: companions look at the buckets, encryption at the configurations (counted above).
    assert {p.name for p in guardrails.POLICIES} == set(counts) | {"s3-bucket-companions"}
    assert len(dev.of_type(guardrails.BUCKET)) == 6


# --- 1. S3 buckets --------------------------------------------------------------------------------

COMPANION_MESSAGES = {
    "encryption": (
        "bucket lake-raw: no aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration "
        "has this bucket as its bucket input; add one (bucket=<this bucket>.id) for default encryption with the "
        "estate's KMS key"
    ),
    "policy": (
        "bucket lake-raw: no aws:s3/bucketPolicy:BucketPolicy has this bucket as its bucket input; add one "
        "(bucket=<this bucket>.id) for a bucket policy denying requests without TLS"
    ),
    "public-access": (
        "bucket lake-raw: no aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock has this bucket as its bucket "
        "input; add one (bucket=<this bucket>.id) for all four public-access blocks"
    ),
}


@pytest.mark.parametrize("missing", sorted(COMPANION_MESSAGES))
def test_a_bucket_without_a_companion(dev: Estate, missing: str) -> None:
    companions = [dev.named(f"lake-raw-{c}") for c in COMPANION_MESSAGES if c != missing]
    assert check(dev, dev.named("lake-raw"), *companions) == [("s3-bucket-companions", COMPANION_MESSAGES[missing])]


def test_companions_count_through_dependencies_not_values(dev: Estate) -> None:
    # During preview the bucket name is unknown; the dependency on the bucket is known.
    companions = [broken(dev.named(f"lake-raw-{c}"), bucket=UNKNOWN_STRING_VALUE) for c in COMPANION_MESSAGES]
    assert check(dev, dev.named("lake-raw"), *companions) == []
    # Another bucket's companions do not count.
    others = [dev.named(f"lake-curated-{c}") for c in COMPANION_MESSAGES]
    assert check(dev, dev.named("lake-raw"), *others) == [
        ("s3-bucket-companions", COMPANION_MESSAGES[c]) for c in COMPANION_MESSAGES
    ]


def test_bucket_encryption_needs_a_kms_key_and_a_bucket_key(dev: Estate) -> None:
    encryption = dev.named("lake-raw-encryption")
    no_key = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": True}]
    assert check(dev, broken(encryption, rules=no_key)) == [
        (
            "s3-bucket-encryption-kms",
            "bucket encryption lake-raw-encryption: rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId is "
            "not set; set it to the estate's KMS key (not the aws/s3 key)",
        )
    ]
    assert check(dev, broken(encryption, rules=None)) == [
        (
            "s3-bucket-encryption-kms",
            "bucket encryption lake-raw-encryption: rules is not set; add a rule with sseAlgorithm aws:kms, "
            "a kmsMasterKeyId and bucketKeyEnabled",
        )
    ]
    dsse = copy.deepcopy(encryption.inputs["rules"])
    dsse[0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] = "aws:kms:dsse"
    assert check(dev, broken(encryption, rules=dsse)) == []


TLS_ONLY_MESSAGE = (
    "s3-bucket-policy-tls-only",
    "bucket policy lake-raw-policy: no statement denies requests without TLS; add "
    '{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [<bucket ARN>, <bucket ARN>/*], '
    '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}',
)


def tls_statement(dev: Estate) -> dict[str, Any]:
    statement = json.loads(dev.named("lake-raw-policy").inputs["policy"])["Statement"][0]
    assert statement["Sid"] == "DenyInsecureTransport"
    return statement


def with_statement(dev: Estate, **changes: Any) -> Recorded:
    document = json.loads(dev.named("lake-raw-policy").inputs["policy"])
    document["Statement"][0] = {**document["Statement"][0], **changes}
    return broken(dev.named("lake-raw-policy"), policy=json.dumps(document))


def test_bucket_policy_must_deny_insecure_transport_to_bucket_and_objects(dev: Estate) -> None:
    bucket_arn, objects_arn = tls_statement(dev)["Resource"]
    assert objects_arn == f"{bucket_arn}/*"
    weakened: dict[str, Any]
    for weakened in (
        {"Effect": "Allow"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {"Action": "s3:GetObject"},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {}},
        {"Resource": [bucket_arn]},  # objects still reachable over HTTP
        {"Resource": objects_arn},
    ):
        assert check(dev, with_statement(dev, **weakened)) == [TLS_ONLY_MESSAGE], weakened
    for equivalent in (
        {"Principal": {"AWS": "*"}},
        {"Action": ["s3:*"]},
        {"Condition": {"Bool": {"aws:SecureTransport": False}}},
        {"Resource": "*"},
    ):
        assert check(dev, with_statement(dev, **equivalent)) == [], equivalent
    assert check(dev, broken(dev.named("lake-raw-policy"), policy="{not json")) == [
        (
            "s3-bucket-policy-tls-only",
            "bucket policy lake-raw-policy: policy is not valid JSON; give it an IAM policy document",
        )
    ]


def test_public_access_block_sets_all_four(dev: Estate) -> None:
    block = broken(dev.named("lake-raw-public-access"), blockPublicPolicy=False, restrictPublicBuckets=None)
    assert check(dev, block) == [
        (
            "s3-public-access-blocked",
            "public access block lake-raw-public-access: blockPublicPolicy is false; set it to true",
        ),
        (
            "s3-public-access-blocked",
            "public access block lake-raw-public-access: restrictPublicBuckets is not set; set it to true",
        ),
    ]


# --- 2. KMS, 3. Redshift --------------------------------------------------------------------------


def test_symmetric_keys_rotate(dev: Estate) -> None:
    key = dev.one(guardrails.KMS_KEY)
    message = (
        "KMS key lake-key: enableKeyRotation is {}; set it to true so AWS rotates the key material "
        "(yearly, or every rotationPeriodInDays)"
    )
    assert check(dev, broken(key, enableKeyRotation=False)) == [("kms-key-rotation", message.format("false"))]
    assert check(dev, broken(key, enableKeyRotation=None)) == [("kms-key-rotation", message.format("not set"))]
    # AWS cannot rotate asymmetric or HMAC keys.
    assert check(dev, broken(key, enableKeyRotation=False, keySpec="RSA_2048")) == []
    assert check(dev, broken(key, enableKeyRotation=None, customerMasterKeySpec="HMAC_256")) == []
    assert check(dev, broken(key, enableKeyRotation=False, keySpec="SYMMETRIC_DEFAULT")) == [
        ("kms-key-rotation", message.format("false"))
    ]


def test_warehouse_is_private_with_a_managed_password(dev: Estate) -> None:
    workgroup = dev.one(guardrails.REDSHIFT_WORKGROUP)
    public = (
        "Redshift workgroup warehouse-workgroup: publiclyAccessible is {}; set it to false explicitly "
        "(jobs reach the warehouse inside the VPC or through the Data API)"
    )
    assert check(dev, broken(workgroup, publiclyAccessible=True)) == [
        ("redshift-private-managed-password", public.format("true"))
    ]
    assert check(dev, broken(workgroup, publiclyAccessible=None)) == [
        ("redshift-private-managed-password", public.format("not set"))
    ]
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2-Secret"}
    namespace = broken(dev.one(guardrails.REDSHIFT_NAMESPACE), adminUserPassword=secret, manageAdminPassword=None)
    found = check(dev, namespace)
    assert found == [
        (
            "redshift-private-managed-password",
            "Redshift namespace warehouse-namespace: manageAdminPassword is not set; set it to true so Secrets "
            "Manager creates and rotates the admin password",
        ),
        (
            "redshift-private-managed-password",
            "Redshift namespace warehouse-namespace: adminUserPassword is set; remove it (a password in code or "
            "config ends up in state) and set manageAdminPassword to true",
        ),
    ]
    assert not any("hunter2" in message for _, message in found)


# --- 4. Glue, 5. Batch ----------------------------------------------------------------------------

GLUE_SECURITY = (
    "securityConfiguration is not set; set it to a Glue security configuration that encrypts S3 output, "
    "CloudWatch logs and job bookmarks with the estate's KMS key"
)


def test_glue_jobs_have_a_security_configuration_and_bounded_runs(dev: Estate) -> None:
    job = dev.named("sales-convert-job")
    assert check(dev, broken(job, securityConfiguration=None, maxRetries=10)) == [
        ("glue-security-configuration", f"Glue job sales-convert-job: {GLUE_SECURITY}"),
        (
            "glue-job-bounded-runs",
            "Glue job sales-convert-job: maxRetries is 10; set it between 0 and 3 (each retry reruns the whole job)",
        ),
    ]
    timeout = "Glue job sales-convert-job: timeout is {}; set it between 1 and 2880 minutes so a hung run is stopped"
    for value, shown in ((None, "not set"), (0, "0"), (2881, "2881")):
        assert check(dev, broken(job, timeout=value)) == [("glue-job-bounded-runs", timeout.format(shown))], value
    assert check(dev, broken(job, timeout=2880, maxRetries=0)) == []
    assert check(dev, broken(job, maxRetries=None)) == [
        (
            "glue-job-bounded-runs",
            "Glue job sales-convert-job: maxRetries is not set; set it between 0 and 3 (each retry reruns the "
            "whole job)",
        )
    ]


def test_glue_crawlers_have_a_security_configuration(dev: Estate) -> None:
    crawler = broken(dev.named("sales-input-crawler-crawler"), securityConfiguration="")
    assert check(dev, crawler) == [
        ("glue-security-configuration", f"Glue crawler sales-input-crawler-crawler: {GLUE_SECURITY}")
    ]


def test_batch_job_definitions_have_an_attempt_timeout_and_bounded_attempts(dev: Estate) -> None:
    job = dev.named("render-logs-job-definition")
    assert check(dev, broken(job, timeout=None)) == [
        (
            "batch-job-bounded-runs",
            "Batch job definition render-logs-job-definition: timeout.attemptDurationSeconds is not set; set it to "
            "at least 60 seconds (Batch's minimum) so a hung attempt is stopped",
        )
    ]
    assert check(dev, broken(job, timeout={"attemptDurationSeconds": 59})) == [
        (
            "batch-job-bounded-runs",
            "Batch job definition render-logs-job-definition: timeout.attemptDurationSeconds is 59; set it to "
            "at least 60 seconds (Batch's minimum) so a hung attempt is stopped",
        )
    ]
    attempts = "Batch job definition render-logs-job-definition: retryStrategy.attempts is {}; set it between 1 and 10"
    assert check(dev, broken(job, retryStrategy={"attempts": 11})) == [
        ("batch-job-bounded-runs", attempts.format("11"))
    ]
    assert check(dev, broken(job, retryStrategy=None)) == [("batch-job-bounded-runs", attempts.format("not set"))]


# --- 6. Step Functions ----------------------------------------------------------------------------


def test_every_task_retries_and_catches_states_all_even_in_parallel_branches_and_maps(dev: Estate) -> None:
    machine = dev.named("render-logs-flow-machine")
    definition = json.loads(machine.inputs["definition"])
    task = definition["States"]["SummarizeRenderLogs"]  # a real Task: Retry 3 times, Catch States.ALL
    uncaught = {k: v for k, v in task.items() if k != "Catch"} | {"End": True}
    zero_retries = {**task, "Retry": [{**task["Retry"][0], "MaxAttempts": 0}], "End": True}
    narrow_catch = {**task, "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Done"}], "End": True}
    no_retry = {k: v for k, v in task.items() if k != "Retry"} | {"End": True}
    definition["States"]["Fan"] = {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "Uncaught", "States": {"Uncaught": uncaught}},
            {
                "StartAt": "PerFile",
                "States": {
                    "PerFile": {
                        "Type": "Map",
                        "ItemProcessor": {"StartAt": "ZeroRetries", "States": {"ZeroRetries": zero_retries}},
                        "End": True,
                    }
                },
            },
        ],
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
        "End": True,
    }
    definition["States"]["Legacy"] = {
        "Type": "Map",
        "Iterator": {"StartAt": "NarrowCatch", "States": {"NarrowCatch": narrow_catch}},
        "End": True,
    }
    definition["States"]["NoRetry"] = no_retry
    what = "state machine render-logs-flow-machine"
    assert check(dev, broken(machine, definition=json.dumps(definition))) == [
        (
            "sfn-tasks-retry-and-catch",
            f"{what}: Task state Uncaught (in Fan.Branches[0]) has no Catch; add a Catch ending with ErrorEquals "
            '["States.ALL"] that leads to the failure notification',
        ),
        (
            "sfn-tasks-retry-and-catch",
            f"{what}: Task state ZeroRetries (in Fan.Branches[1].PerFile.ItemProcessor): Retry[0].MaxAttempts is 0; "
            "set it between 1 and 10",
        ),
        (
            "sfn-tasks-retry-and-catch",
            f"{what}: Task state NarrowCatch (in Legacy.Iterator): the last Catch does not match States.ALL; end "
            'Catch with ErrorEquals ["States.ALL"] so no error escapes unreported',
        ),
        (
            "sfn-tasks-retry-and-catch",
            f"{what}: Task state NoRetry has no Retry; add a Retry for its transient errors (MaxAttempts 1-10)",
        ),
    ]
    assert check(dev, broken(machine, definition="{")) == [
        (
            "sfn-tasks-retry-and-catch",
            f"{what}: definition is not valid JSON; give it an Amazon States Language document",
        )
    ]


# --- 7. log groups, 8. tags, 9. names -------------------------------------------------------------

RETENTIONS = "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"


def test_retention_days_are_the_ones_cloudwatch_accepts() -> None:
    assert guardrails.LOG_RETENTION_DAYS == LOG_RETENTION_DAYS
    assert ", ".join(map(str, LOG_RETENTION_DAYS)) == RETENTIONS


def test_log_groups_have_an_accepted_retention_and_a_key(dev: Estate) -> None:
    group = dev.named("net-flow-logs")
    assert check(dev, broken(group, kmsKeyId=None, retentionInDays=10)) == [
        (
            "log-group-retention-and-kms",
            "log group net-flow-logs: retentionInDays is 10, which CloudWatch Logs does not accept; "
            f"use one of {RETENTIONS}",
        ),
        (
            "log-group-retention-and-kms",
            "log group net-flow-logs: kmsKeyId is not set; set it to the estate's KMS key (its key policy lets "
            "CloudWatch Logs use it)",
        ),
    ]
    assert check(dev, broken(group, retentionInDays=None)) == [
        (
            "log-group-retention-and-kms",
            "log group net-flow-logs: retentionInDays is not set; "
            f"set a retention CloudWatch Logs accepts ({RETENTIONS})",
        )
    ]
    assert check(dev, broken(group, retentionInDays=3653)) == []


def with_provider(dev: Estate, resource: Recorded, **provider_inputs: Any) -> list[Recorded]:
    """`resource` created with another aws provider (inputs changed as in `broken`)."""
    provider = broken(dev.one("pulumi:providers:aws"), **provider_inputs)
    provider = replace(provider, name="other", urn=provider.urn.removesuffix("::aws") + "::other")
    return [provider, replace(resource, provider=f"{provider.urn}::other-id")]


def test_taggable_resources_carry_the_estate_tags(dev: Estate) -> None:
    own = {"project": "dataplatform", "stack": "dev", "managed-by": "pulumi", "cost-center": "unassigned"}
    queue = broken(dev.named("render-logs-trigger-dlq"), tags=own)
    assert violations(policy_resources(with_provider(dev, queue, defaultTags=None))) == [
        (
            "estate-tags",
            "aws:sqs/queue:Queue render-logs-trigger-dlq: estate tag owner is missing or empty in its tags and its "
            "provider's defaultTags.tags; create it with the estate's aws provider (whose defaultTags carry them) or "
            "set them in tags",
        )
    ]
    # An empty own tag overrides the provider's, as the provider merges them.
    emptied = broken(dev.named("render-logs-trigger-dlq"), tags={"owner": "", "cost-center": ""})
    assert check(dev, emptied) == [
        (
            "estate-tags",
            "aws:sqs/queue:Queue render-logs-trigger-dlq: estate tags owner, cost-center are missing or empty in its "
            "tags and its provider's defaultTags.tags; create it with the estate's aws provider (whose defaultTags "
            "carry them) or set them in tags",
        )
    ]
    # Default tags as an object (not the JSON string the engine sends) count the same.
    as_object = json.loads(dev.one("pulumi:providers:aws").inputs["defaultTags"])
    untagged = dev.named("render-logs-trigger-dlq")
    assert violations(policy_resources(with_provider(dev, untagged, defaultTags=as_object))) == []
    # Types without tags are not asked for them.
    assert violations(policy_resources(with_provider(dev, dev.named("lake-raw-policy"), defaultTags=None))) == []


def sdk_class(token: str) -> type:
    """The SDK class of a type token: aws:s3/bucket:Bucket -> pulumi_aws.s3.Bucket."""
    package, module_path, name = token.split(":")
    module = module_path.split("/")[0]
    module = f"{module}_" if keyword.iskeyword(module) else module  # aws:lambda/... -> pulumi_aws.lambda_
    return getattr(importlib.import_module(f"pulumi_{package}" + ("" if module == "index" else f".{module}")), name)


def takes_tags(token: str) -> bool:
    return "tags" in inspect.signature(sdk_class(token)._internal_init).parameters  # type: ignore[attr-defined]


def test_taggable_types_are_exactly_those_whose_sdk_class_takes_tags(
    dev: Estate, prod: Estate, with_ci_role: Estate
) -> None:
    estates = (dev, prod, with_ci_role)
    types = {r.type for estate in estates for r in estate.resources if r.type.startswith(("aws:", "docker:"))}
    # with the CI role's OIDC provider and policy attachment, the Redshift usage limit and Data API statements
    assert len(types) == 60  # 57 + the Glue catalog tables, the alarms and the dashboard
    assert {t for t in types if takes_tags(t)} == types & guardrails.TAGGABLE_TYPES
    assert [t for t in sorted(guardrails.TAGGABLE_TYPES) if not takes_tags(t)] == []


def test_physical_names_fit_aws_limits(dev: Estate) -> None:
    role = dev.named("render-logs-job-role")
    long_prefix = "dataplatform-pr-4812-add-device-latency-percentiles-"  # 52 + 26 > 64
    assert check(dev, broken(role, namePrefix=long_prefix)) == [
        (
            "physical-name-limits",
            f'aws:iam/role:Role render-logs-job-role: namePrefix "{long_prefix}" gives a 78-character name with the '
            "26-character suffix the provider appends, AWS allows 64; shorten it to at most 38 characters",
        )
    ]
    named = "dataplatform dev render logs job role for the render summary batch job"
    assert check(dev, broken(role, namePrefix=None, name=named)) == [
        (
            "physical-name-limits",
            f'aws:iam/role:Role render-logs-job-role: name "{named}" gives a 70-character name, AWS allows 64; '
            "shorten it to at most 64 characters",
        ),
        (
            "physical-name-limits",
            f'aws:iam/role:Role render-logs-job-role: name "{named}" does not match [\\w+=,.@-]+; use only what AWS '
            "accepts",
        ),
    ]
    bucket = broken(dev.named("lake-raw"), bucketPrefix="dataplatform-dev-Raw-")
    assert check(dev, bucket, *[dev.named(f"lake-raw-{c}") for c in COMPANION_MESSAGES]) == [
        (
            "physical-name-limits",
            'aws:s3/bucket:Bucket lake-raw: bucketPrefix "dataplatform-dev-Raw-" does not match [a-z0-9-]+; use only '
            "what AWS accepts",
        )
    ]


def test_the_estate_tests_and_the_pack_share_one_name_limit_table() -> None:
    estate_tests = ast.parse((ROOT / "tests" / "infra" / "test_estate.py").read_text())
    imports = [(n.module, [a.name for a in n.names]) for n in estate_tests.body if isinstance(n, ast.ImportFrom)]
    assert ("guardrails", ["NAME_LIMITS"]) in imports
    targets = [t for n in estate_tests.body if isinstance(n, ast.Assign) for t in n.targets]
    targets += [n.target for n in estate_tests.body if isinstance(n, ast.AnnAssign)]
    assert "NAME_LIMITS" not in {ast.unparse(t) for t in targets}  # the table lives in guardrails only
    assert guardrails.OTHER_NAME_LIMITS == {("aws:iam/role:Role", "name"): (64, r"[\w+=,.@-]+")}
    assert not any(
        typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider" for typ, _ in guardrails.ALL_NAME_LIMITS
    )


# --- 10. schedules --------------------------------------------------------------------------------

ACCEPTED = [
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(7 days)",
    "cron(0 2 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(*/5 8-17 ? * MON-FRI *)",
    "cron(15 10 ? * 6L *)",
    "cron(0 0 L * ? *)",
    "cron(0 8 3W * ? 2026-2030)",
    "cron(0 12 ? * 3#2 *)",
    "cron(30 6 ? JAN,jul SUN,SAT 2199)",
    "at(2026-01-31T23:59:00)",
]
REJECTED = [
    ("rate(1 hours)", "uses hours with the value 1; write rate(1 hour)"),
    ("rate(5 minute)", "uses minute with the value 5; write rate(5 minutes)"),
    ("rate(0 days)", "has the value 0; rate() takes a positive whole number"),
    ("rate(2 weeks)", "has the unit weeks; rate() takes minute(s), hour(s) or day(s)"),
    ("cron(0 12 * * * *)", "sets both day-of-month (*) and day-of-week (*); set exactly one of them to ?"),
    ("cron(0 12 ? * ? *)", "has ? in both day-of-month and day-of-week; give one of them a value"),
    ("cron(0 25 * * ? *)", "has an invalid hours field 25: 25 is outside 0-23"),
    ("cron(0 ? * * ? *)", "has an invalid hours field ?: ? is not a number"),
    ("cron(0 1 LW * ? *)", "has an invalid day-of-month field LW: LW is not a number"),  # undocumented for AWS
    ("cron(60 1 * * ? *)", "has an invalid minutes field 60: 60 is outside 0-59"),
    ("cron(0 1 0 * ? *)", "has an invalid day-of-month field 0: 0 is outside 1-31"),
    ("cron(0 1 1 13 ? *)", "has an invalid month field 13: 13 is outside 1-12"),
    ("cron(0 1 1 FOO ? *)", "has an invalid month field FOO: FOO is not a number or a name"),
    ("cron(0 1 ? * 0 *)", "has an invalid day-of-week field 0: 0 is outside 1-7"),
    ("cron(0 1 ? * MON#6 *)", "has an invalid day-of-week field MON#6: #6 is outside #1-#5"),
    ("cron(0 1 ? * */2 *)", "has an invalid day-of-week field */2: / is not allowed in day-of-week"),
    ("cron(0 1 * * ? 1969)", "has an invalid year field 1969: 1969 is outside 1970-2199"),
    ("cron(0/0 1 * * ? *)", "has an invalid minutes field 0/0: the increment 0 is not a positive number"),
    ("cron(1-2-3 1 * * ? *)", "has an invalid minutes field 1-2-3: 1-2-3 is not a value or a range"),
    ("cron(0 12 * * ?)", "has 5 fields; cron() takes 6: minutes hours day-of-month month day-of-week year"),
    ("at(2026-02-30T00:00:00)", "is not a valid at(yyyy-mm-ddThh:mm:ss) time"),
    ("every day", "is not rate(...) or cron(...) or at(...)"),
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_schedules_accept_what_aws_accepts(dev: Estate, expression: str) -> None:
    assert check(dev, broken(dev.named("sensor-schedule-schedule"), scheduleExpression=expression)) == []


@pytest.mark.parametrize(("expression", "problem"), REJECTED)
def test_schedules_reject_what_aws_rejects(dev: Estate, expression: str, problem: str) -> None:
    schedule = broken(dev.named("sensor-schedule-schedule"), scheduleExpression=expression)
    assert check(dev, schedule) == [
        (
            "schedule-expressions-valid",
            f'schedule sensor-schedule-schedule: scheduleExpression "{expression}" {problem}',
        )
    ]


def test_schedule_time_zones_are_iana_names(dev: Estate) -> None:
    schedule = dev.named("sensor-schedule-schedule")
    assert check(dev, broken(schedule, scheduleExpressionTimezone="Europe/Paris")) == []
    assert check(dev, broken(schedule, scheduleExpressionTimezone="CEST")) == [
        (
            "schedule-expressions-valid",
            'schedule sensor-schedule-schedule: scheduleExpressionTimezone "CEST" is not an IANA time zone; use a '
            "name such as UTC or Europe/Paris",
        )
    ]


def test_event_rules_and_glue_take_their_own_forms(dev: Estate) -> None:
    rule = dev.named("render-logs-trigger-rule")
    assert check(dev, broken(rule, scheduleExpression="rate(15 minutes)")) == []
    assert check(dev, broken(rule, scheduleExpression="at(2026-01-31T23:59:00)")) == [
        (
            "schedule-expressions-valid",
            'event rule render-logs-trigger-rule: scheduleExpression "at(2026-01-31T23:59:00)" uses at(), which is '
            "not accepted here; use rate() or cron()",
        )
    ]
    trigger = broken(dev.named("sales-workflow-start"), type="SCHEDULED", schedule="rate(1 day)")
    assert check(dev, trigger) == [
        (
            "schedule-expressions-valid",
            'Glue trigger sales-workflow-start: schedule "rate(1 day)" uses rate(), which is not accepted here; '
            "use cron()",
        )
    ]
    assert check(dev, broken(trigger, schedule=None)) == [
        ("schedule-expressions-valid", "Glue trigger sales-workflow-start: schedule null is not cron(...)")
    ]
    crawler = broken(dev.named("sales-input-crawler-crawler"), schedule="cron(0 25 * * ? *)")
    assert check(dev, crawler) == [
        (
            "schedule-expressions-valid",
            'Glue crawler sales-input-crawler-crawler: schedule "cron(0 25 * * ? *)" has an invalid hours field 25: '
            "25 is outside 0-23",
        )
    ]


# --- preview --------------------------------------------------------------------------------------


def test_during_preview_unknown_but_present_values_count_as_set(dev: Estate) -> None:
    # The key of a key being created is unknown during preview; the log group does set one.
    group = broken(dev.named("net-flow-logs"), kmsKeyId=UNKNOWN_STRING_VALUE)
    job = broken(dev.named("sales-convert-job"), securityConfiguration=UNKNOWN_STRING_VALUE)
    assert check(dev, group, job) == []


def test_during_preview_a_rule_that_must_read_an_unknown_value_defers_to_the_sdk(dev: Estate) -> None:
    # The SDK turns UnknownValueError into an advisory "can't run policy ... during preview".
    bucket_policy = broken(dev.named("lake-raw-policy"), policy=UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        check(dev, bucket_policy)


# --- the pack -------------------------------------------------------------------------------------

POLICY_DIR = ROOT / "policy"


class Served(Exception):
    """Raised where the real PolicyPack would start serving the engine (and block forever)."""


def test_main_builds_the_mandatory_pack_of_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    # PolicyPack() validates its arguments, then builds the analyzer servicer and serves it until killed:
    # stop it there and look at what it was given. run_path on the directory is how the SDK runs a pack.
    def servicer(*args: Any) -> None:
        raise Served(*args)

    monkeypatch.setattr(pulumi_policy.policy, "_PolicyAnalyzerServicer", servicer)
    with pytest.raises(Served) as served:
        runpy.run_path(str(POLICY_DIR), run_name="__main__")
    name, _version, policies, enforcement, *_ = served.value.args
    assert (name, enforcement) == ("dataplatform-guardrails", EnforcementLevel.MANDATORY)
    assert policies is guardrails.POLICIES
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == 14
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", n) for n in names), names
    assert all(p.enforcement_level is None for p in policies)  # the pack's MANDATORY applies to each


def test_the_pack_has_its_own_runtime_and_requirements() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert project["version"] == "0.1.0"
    requirements = [
        line for line in (POLICY_DIR / "requirements.in").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert requirements == ["pulumi-policy>=1.21,<2", "pulumi>=3,<4", "tzdata>=2024.1"]


def test_the_pack_imports_only_the_stdlib_and_the_policy_sdk() -> None:
    for path in POLICY_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        outside = imported - set(sys.stdlib_module_names) - {"pulumi_policy", "guardrails"}
        assert outside == set(), path.name
