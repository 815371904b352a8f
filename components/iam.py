"""IAM building blocks: policy JSON from statements, and service roles with one inline policy.

Every policy is built from explicit actions and resources; `"*"` resources are allowed only for
actions AWS does not scope to a resource (tests/infra/test_iam.py keeps that list honest).
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


def assume_role_policy(service: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    # aws:SourceAccount stops another account's service from using this role (confused deputy).
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    )


def service_role(
    name: str,
    purpose: str,
    service: str,
    account_id: pulumi.Input[str],
    statements: list[dict[str, Any]],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role `service` can assume, holding exactly `statements` as its one inline policy."""
    role = aws.iam.Role(
        name,
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
    """ListBucket for Spark/Glue readers and writers. Not narrowed by s3:prefix: Hadoop also HEADs
    and lists parent "folders", and S3 answers a missing key with 403 (not 404) to a caller
    without ListBucket on it, which fails the job."""
    return statement(["s3:ListBucket"], list(bucket_arns))
