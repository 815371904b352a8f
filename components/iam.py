"""IAM building blocks: policy JSON from statements, and service roles with one inline policy.

Every policy is built from explicit actions and resources; `"*"` resources are allowed only for
actions AWS does not scope to a resource (tests/infra/test_estate.py keeps that list honest).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming

# Actions that AWS only authorises on Resource "*" (no resource-level permissions).
RESOURCE_STAR_ONLY = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "redshift-data:DescribeStatement",
        "redshift-data:GetStatementResult",
        "redshift-data:CancelStatement",
        "batch:DescribeJobs",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "cloudwatch:PutMetricData",
    }
)


def statement(
    actions: list[str], resources: list[Any], condition: dict | None = None, sid: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        body["Condition"] = condition
    if sid:
        body["Sid"] = sid
    return body


def document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """Policy JSON; Outputs inside statements resolve first, so no resource is created in an apply."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


# Service principals whose AssumeRole request AWS documents to carry aws:SourceAccount, with the page
# that shows the condition in the role's trust policy (cross-service confused deputy prevention).
SOURCE_ACCOUNT_IN_TRUST: dict[str, str] = {
    "states.amazonaws.com": "https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html",
    "scheduler.amazonaws.com": "https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html",
    "events.amazonaws.com": "https://docs.aws.amazon.com/eventbridge/latest/userguide/policy-keys-eventbridge.html",
    "ecs-tasks.amazonaws.com": "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html",
    "vpc-flow-logs.amazonaws.com": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html",
}
# Service principals whose documented trust policy has no aws:SourceAccount: a condition on a key the
# service may not send would lock it out of its own role, so their trust names the service only.
NO_SOURCE_ACCOUNT_IN_TRUST: dict[str, str] = {
    "glue.amazonaws.com": "https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html",
    "redshift.amazonaws.com": "https://docs.aws.amazon.com/redshift/latest/mgmt/authorizing-redshift-service.html",
}


def assume_role_policy(service: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust for one service principal, with aws:SourceAccount (confused deputy) where AWS documents
    that the service sends it; a service in neither table above is refused, so each is looked up."""
    if service in SOURCE_ACCOUNT_IN_TRUST:
        condition: dict[str, Any] = {"Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}
    elif service in NO_SOURCE_ACCOUNT_IN_TRUST:
        condition = {}
    else:
        raise ValueError(f"{service}: add it to SOURCE_ACCOUNT_IN_TRUST or NO_SOURCE_ACCOUNT_IN_TRUST (with the doc)")
    return document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole", **condition}])


def service_role(
    name: str,
    purpose: str,
    service: str,
    account_id: pulumi.Input[str],
    statements: list[dict[str, Any]],
    parent: pulumi.Resource,
    tags: dict[str, str] | None = None,
) -> aws.iam.Role:
    """A role `service` can assume, holding exactly `statements` as its one inline policy (and `tags`,
    e.g. the database roles Redshift grants it: components/warehouse_access.py)."""
    role = aws.iam.Role(
        name,
        tags=tags,
        name_prefix=naming.physical_prefix(purpose, 64),
        description=f"{purpose} ({pulumi.get_project()}/{pulumi.get_stack()})",
        assume_role_policy=assume_role_policy(service, account_id),
        max_session_duration=3600,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=document(statements),
        opts=pulumi.ResourceOptions(parent=role),
    )
    return role


def objects(bucket_arn: pulumi.Input[str], *prefixes: str) -> list[pulumi.Output[str]]:
    """Object ARNs under each key prefix of a bucket."""
    return [pulumi.Output.concat(bucket_arn, "/", prefix, "*") for prefix in prefixes]


def list_buckets(*bucket_arns: pulumi.Input[str]) -> dict[str, Any]:
    """ListBucket for readers and writers that must see a missing key as 404, not 403: S3 answers 404
    only to a caller with s3:ListBucket on the bucket (Spark/Glue then fail on a 403 probe, and the
    render-summary job could not tell a vanished input from a permission problem). Not narrowed by
    s3:prefix: Hadoop also lists parent "folders", and AWS does not document that the 404 check
    evaluates an s3:prefix condition."""
    return statement(["s3:ListBucket"], list(bucket_arns))


def _directories(prefix: str) -> list[str]:
    """The "directories" a key prefix names, outermost first: "a/b/" -> ["a", "a/b"]."""
    parts = prefix.strip("/").split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def hadoop_directories(
    reads: list[tuple[pulumi.Input[str], str]], writes: list[tuple[pulumi.Input[str], str]]
) -> list[dict[str, Any]]:
    """What a Glue Spark job's S3 file system does outside `prefix/*` for the (bucket ARN, prefix) pairs
    it reads and writes. Whether s3:// is EMRFS or, on runtimes from EMR 7.10, S3A, it probes each
    directory of a prefix, parents included, as the key without the trailing slash (HEAD, so
    s3:GetObject: without it S3 answers 403, not 404, and the job fails); EMRFS also probes and, when it
    creates a directory to write into, writes the `<dir>_$folder$` marker (s3:PutObject on the written
    markers). S3A's own `<dir>/` markers lie under `prefix/*` already."""

    def keys(pairs: list[tuple[pulumi.Input[str], str]], suffixes: tuple[str, ...]) -> list[pulumi.Output[str]]:
        # Prefixes of one bucket share parents: each key once (a bucket is the same input object).
        found: dict[tuple[int, str], pulumi.Output[str]] = {}
        for bucket_arn, prefix in pairs:
            for key in (d + suffix for d in _directories(prefix) for suffix in suffixes):
                found.setdefault((id(bucket_arn), key), pulumi.Output.concat(bucket_arn, "/", key))
        return list(found.values())

    return [
        statement(["s3:GetObject"], keys([*reads, *writes], ("", "_$folder$"))),
        statement(["s3:PutObject"], keys(writes, ("_$folder$",))),
    ]
