"""The estate's guarantees as mandatory Pulumi policies, checked on every preview and update of every stack.

The components are secure by default; these rules catch a caller or a later change that weakens them.
Importable without side effects (the tests call every policy on the mocked estates). The pack runs in its
own virtualenv (requirements.txt beside this file), so this module imports only the stdlib and pulumi_policy.

Props are the engine's camelCase inputs behind pulumi_policy's unknown-checking proxy: reading a value that
is unknown during preview raises UnknownValueError, which the SDK reports as "can't run during preview".
Presence checks therefore look at the keys only (an ARN of a resource being created is unknown, but set).
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from datetime import datetime
from typing import Any

from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
KMS_KEY = "aws:kms/key:Key"
REDSHIFT_WORKGROUP = "aws:redshiftserverless/workgroup:Workgroup"
REDSHIFT_NAMESPACE = "aws:redshiftserverless/namespace:Namespace"
GLUE_JOB = "aws:glue/job:Job"
GLUE_CRAWLER = "aws:glue/crawler:Crawler"
GLUE_TRIGGER = "aws:glue/trigger:Trigger"
BATCH_JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
SCHEDULE = "aws:scheduler/schedule:Schedule"

# CloudWatch Logs accepts only these retention periods (components/config.py has the same list; a test
# keeps them equal, this pack cannot import the program).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

ESTATE_TAGS = ("project", "stack", "managed-by", "owner", "cost-center")

# Types whose pulumi_aws/pulumi_docker class takes `tags` (a test introspects the SDKs for every type the
# estate registers, and checks each entry here). The provider's default tags reach exactly these.
TAGGABLE_TYPES = frozenset(
    {
        "aws:athena/workgroup:Workgroup",
        "aws:batch/computeEnvironment:ComputeEnvironment",
        "aws:batch/jobDefinition:JobDefinition",
        "aws:batch/jobQueue:JobQueue",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:dynamodb/table:Table",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ecr/repository:Repository",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/crawler:Crawler",
        "aws:glue/job:Job",
        "aws:glue/trigger:Trigger",
        "aws:glue/workflow:Workflow",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:redshiftserverless/namespace:Namespace",
        "aws:redshiftserverless/workgroup:Workgroup",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "aws:sfn/stateMachine:StateMachine",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
        # Common types the estate does not use (yet).
        "aws:ec2/instance:Instance",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/service:Service",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:glue/connection:Connection",
        "aws:iam/policy:Policy",
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
        "aws:kinesis/stream:Stream",
        "aws:lambda/function:Function",
        "aws:rds/instance:Instance",
        "aws:redshift/cluster:Cluster",
        "aws:secretsmanager/secret:Secret",
    }
)

# (type, input) -> (maximum length, allowed characters): every name input the estate sets (tests/infra/
# test_estate.py asserts each is set, so every name carries the stack). Prefix inputs are checked with
# the 26-character unique suffix the provider appends.
NAME_LIMITS: dict[tuple[str, str], tuple[int, str]] = {
    ("aws:s3/bucket:Bucket", "bucketPrefix"): (63, r"[a-z0-9-]+"),
    ("aws:kms/alias:Alias", "name"): (256, r"alias/[a-zA-Z0-9/_-]+"),
    ("aws:iam/role:Role", "namePrefix"): (64, r"[\w+=,.@-]+"),
    ("aws:ec2/securityGroup:SecurityGroup", "namePrefix"): (255, r"[a-zA-Z0-9 ._:/()#,@\[\]+=&;{}!$*-]+"),
    ("aws:cloudwatch/logGroup:LogGroup", "name"): (512, r"[\w/.#-]+"),
    # PutMetricAlarm AlarmName: 1-255, no ASCII control characters; PutDashboard DashboardName: 1-255 of
    # A-Z a-z 0-9 - _.
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "name"): (255, r"[^\x00-\x1f\x7f]+"),
    ("aws:cloudwatch/dashboard:Dashboard", "dashboardName"): (255, r"[A-Za-z0-9_-]+"),
    ("aws:redshiftserverless/namespace:Namespace", "namespaceName"): (64, r"[a-z0-9-]{3,}"),
    ("aws:redshiftserverless/workgroup:Workgroup", "workgroupName"): (64, r"[a-z0-9-]{3,}"),
    ("aws:glue/catalogDatabase:CatalogDatabase", "name"): (255, r"[a-z0-9_]+"),
    ("aws:athena/workgroup:Workgroup", "name"): (128, r"[a-zA-Z0-9._-]+"),
    ("aws:sns/topic:Topic", "namePrefix"): (256, r"[a-zA-Z0-9_-]+"),
    ("aws:sqs/queue:Queue", "namePrefix"): (80, r"[a-zA-Z0-9_-]+"),
    ("aws:ecr/repository:Repository", "name"): (256, r"[a-z0-9._/-]+"),
    ("aws:batch/computeEnvironment:ComputeEnvironment", "namePrefix"): (128, r"[a-zA-Z0-9_-]+"),
    ("aws:batch/jobQueue:JobQueue", "name"): (128, r"[a-zA-Z0-9_-]+"),
    ("aws:batch/jobDefinition:JobDefinition", "name"): (128, r"[a-zA-Z0-9_-]+"),
    ("aws:sfn/stateMachine:StateMachine", "namePrefix"): (80, r"[a-zA-Z0-9_-]+"),
    ("aws:cloudwatch/eventRule:EventRule", "namePrefix"): (64, r"[.\-_A-Za-z0-9]+"),
    ("aws:scheduler/schedule:Schedule", "namePrefix"): (64, r"[0-9a-zA-Z-_.]+"),
    ("aws:glue/job:Job", "name"): (255, r"[\w.-]+"),
    ("aws:glue/crawler:Crawler", "name"): (255, r"[\w.-]+"),
    ("aws:glue/workflow:Workflow", "name"): (255, r"[\w.-]+"),
    ("aws:glue/trigger:Trigger", "name"): (255, r"[\w.-]+"),
    ("aws:glue/securityConfiguration:SecurityConfiguration", "name"): (255, r"[\w.-]+"),
    ("aws:glue/classifier:Classifier", "name"): (255, r"[\w.-]+"),
    ("aws:dynamodb/table:Table", "name"): (255, r"[a-zA-Z0-9_.-]{3,}"),
}
# Name inputs the estate does not use, which a resource may set instead of the one above.
OTHER_NAME_LIMITS: dict[tuple[str, str], tuple[int, str]] = {
    ("aws:iam/role:Role", "name"): (64, r"[\w+=,.@-]+"),
}
NAME_PREFIX_SUFFIX = 26
PREFIX_INPUTS = ("namePrefix", "bucketPrefix")

# Resource policy name -> the types it examines (filled by _resource_policy; the tests count them).
POLICY_TYPES: dict[str, frozenset[str]] = {"s3-bucket-encryption-kms": frozenset({BUCKET_ENCRYPTION})}

Check = Callable[[ResourceValidationArgs], Iterable[str]]


# --- reading props --------------------------------------------------------------------------------


def _is_set(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` has a non-empty value; a value unknown during preview counts as set."""
    if key not in list(props):  # iterating keys never trips the unknown-checking proxy
        return False
    try:
        value = props[key]
    except UnknownValueError:
        return True
    return value is not None and not (isinstance(value, Sized) and len(value) == 0)


def _json(value: Any) -> Any:
    """Nested values arrive as JSON strings in some places (policies, definitions, provider props)."""
    return json.loads(value) if isinstance(value, str) else value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _is(path: str, value: Any) -> str:
    """`path is <value>` in JSON literals (how the value reads in any language), or `path is not set`."""
    if value is None:
        return f"{path} is not set"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{path} is {json.dumps(value, default=str)}"


def _resource_policy(name: str, description: str, types: Iterable[str], check: Check) -> ResourceValidationPolicy:
    """A policy running `check` on resources of `types`, reporting each message it yields."""
    wanted = frozenset(types)
    POLICY_TYPES[name] = wanted

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args):
                report(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


# --- 1. S3 buckets ---------------------------------------------------------------------------------

BUCKET_COMPANIONS = {
    BUCKET_ENCRYPTION: "default encryption with the estate's KMS key",
    BUCKET_POLICY: "a bucket policy denying requests without TLS",
    PUBLIC_ACCESS_BLOCK: "all four public-access blocks",
}
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
BUCKET_ARN = re.compile(r"arn:aws[a-z-]*:s3:::[^/*]+")


def _bucket_companions(args: StackValidationArgs, report: ReportViolation) -> None:
    # Linked through the `bucket` input's dependencies: bucket names are unknown during preview.
    attached = {
        (r.resource_type, bucket.urn) for r in args.resources for bucket in r.property_dependencies.get("bucket", [])
    }
    for bucket in (r for r in args.resources if r.resource_type == BUCKET):
        for typ, purpose in BUCKET_COMPANIONS.items():
            if (typ, bucket.urn) not in attached:
                report(
                    f"bucket {bucket.name}: no {typ} has this bucket as its bucket input; add one "
                    f"(bucket=<this bucket>.id) for {purpose}",
                    bucket.urn,
                )


def _bucket_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    # A stack policy because of one exception: S3 server access logging cannot deliver to a bucket with
    # SSE-KMS default encryption, so a bucket some BucketLogging names as its targetBucket uses SSE-S3.
    log_targets = {
        bucket.urn
        for r in args.resources
        if r.resource_type == BUCKET_LOGGING
        for bucket in r.property_dependencies.get("targetBucket", [])
    }
    for r in args.resources:
        if r.resource_type == BUCKET_ENCRYPTION:
            log_target = any(bucket.urn in log_targets for bucket in r.property_dependencies.get("bucket", []))
            for message in _check_encryption(r.name, r.props, log_target):
                report(message, r.urn)


def _check_encryption(name: str, props: Mapping[str, Any], log_target: bool) -> Iterator[str]:
    what = f"bucket encryption {name}"
    rules = props.get("rules") or []
    if not rules:
        yield f"{what}: rules is not set; add a rule with sseAlgorithm aws:kms, a kmsMasterKeyId and bucketKeyEnabled"
    for i, rule in enumerate(rules):
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        path = f"rules[{i}].applyServerSideEncryptionByDefault"
        algorithm = default.get("sseAlgorithm")
        if log_target:
            if algorithm != "AES256":
                yield (
                    f'{what}: {_is(path + ".sseAlgorithm", algorithm)}; set it to "AES256": this bucket receives '
                    "S3 server access logs, which S3 cannot deliver to an SSE-KMS bucket"
                )
            continue
        if algorithm not in KMS_ALGORITHMS:
            yield (
                f'{what}: {_is(path + ".sseAlgorithm", algorithm)}; set it to "aws:kms" (or "aws:kms:dsse") '
                "with the estate's KMS key as kmsMasterKeyId"
            )
        elif not _is_set(default, "kmsMasterKeyId"):
            yield f"{what}: {path}.kmsMasterKeyId is not set; set it to the estate's KMS key (not the aws/s3 key)"
        if rule.get("bucketKeyEnabled") is not True:
            yield (
                f"{what}: {_is(f'rules[{i}].bucketKeyEnabled', rule.get('bucketKeyEnabled'))}; set it to true "
                "(an S3 Bucket Key cuts KMS requests and their cost)"
            )


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, Mapping)) else list(value or [])


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, Mapping) and _as_list(principal.get("AWS")) == ["*"])
    insecure = (statement.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
    resources = _as_list(statement.get("Resource"))
    buckets = [r for r in resources if isinstance(r, str) and BUCKET_ARN.fullmatch(r)]
    covered = "*" in resources or any(f"{bucket}/*" in resources for bucket in buckets)
    return (
        statement.get("Effect") == "Deny"
        and everyone
        and bool({"s3:*", "*"} & set(_as_list(statement.get("Action"))))
        and str(insecure).lower() == "false"
        and covered
    )


def _check_bucket_policy(args: ResourceValidationArgs) -> Iterator[str]:
    try:
        document = _json(args.props.get("policy"))
    except ValueError:
        yield f"bucket policy {args.name}: policy is not valid JSON; give it an IAM policy document"
        return
    if not any(_denies_insecure_transport(s) for s in _as_list((document or {}).get("Statement"))):
        yield (
            f"bucket policy {args.name}: no statement denies requests without TLS; add "
            '{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [<bucket ARN>, <bucket ARN>/*], '
            '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}'
        )


def _check_public_access_block(args: ResourceValidationArgs) -> Iterator[str]:
    for flag in PUBLIC_ACCESS_FLAGS:
        if args.props.get(flag) is not True:
            yield f"public access block {args.name}: {_is(flag, args.props.get(flag))}; set it to true"


# --- 2. KMS, 3. Redshift Serverless ---------------------------------------------------------------


def _check_key_rotation(args: ResourceValidationArgs) -> Iterator[str]:
    spec = args.props.get("keySpec") or args.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and args.props.get("enableKeyRotation") is not True:  # AWS rotates only these
        yield (
            f"KMS key {args.name}: {_is('enableKeyRotation', args.props.get('enableKeyRotation'))}; set it to true "
            "so AWS rotates the key material (yearly, or every rotationPeriodInDays)"
        )


def _check_redshift(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == REDSHIFT_WORKGROUP and props.get("publiclyAccessible") is not False:
        yield (
            f"Redshift workgroup {args.name}: {_is('publiclyAccessible', props.get('publiclyAccessible'))}; set it "
            "to false explicitly (jobs reach the warehouse inside the VPC or through the Data API)"
        )
    if args.resource_type == REDSHIFT_NAMESPACE:
        if props.get("manageAdminPassword") is not True:
            yield (
                f"Redshift namespace {args.name}: {_is('manageAdminPassword', props.get('manageAdminPassword'))}; "
                "set it to true so Secrets Manager creates and rotates the admin password"
            )
        if _is_set(props, "adminUserPassword"):  # never read it: the message must not show a password
            yield (
                f"Redshift namespace {args.name}: adminUserPassword is set; remove it (a password in code or "
                "config ends up in state) and set manageAdminPassword to true"
            )


# --- 4. Glue, 5. Batch ----------------------------------------------------------------------------


def _check_glue_security(args: ResourceValidationArgs) -> Iterator[str]:
    if not _is_set(args.props, "securityConfiguration"):
        kind = "job" if args.resource_type == GLUE_JOB else "crawler"
        yield (
            f"Glue {kind} {args.name}: securityConfiguration is not set; set it to a Glue security configuration "
            "that encrypts S3 output, CloudWatch logs and job bookmarks with the estate's KMS key"
        )


def _out_of(value: Any, low: float, high: float) -> bool:
    number = _number(value)
    return number is None or not low <= number <= high


def _check_glue_job_runs(args: ResourceValidationArgs) -> Iterator[str]:
    timeout, retries = args.props.get("timeout"), args.props.get("maxRetries")
    if _out_of(timeout, 1, 2880):
        yield (
            f"Glue job {args.name}: {_is('timeout', timeout)}; set it between 1 and 2880 minutes so a hung run "
            "is stopped"
        )
    if _out_of(retries, 0, 3):
        yield (
            f"Glue job {args.name}: {_is('maxRetries', retries)}; set it between 0 and 3 "
            "(each retry reruns the whole job)"
        )


def _check_batch_job_runs(args: ResourceValidationArgs) -> Iterator[str]:
    duration = (args.props.get("timeout") or {}).get("attemptDurationSeconds")
    attempts = (args.props.get("retryStrategy") or {}).get("attempts")
    if _out_of(duration, 60, float("inf")):
        yield (
            f"Batch job definition {args.name}: {_is('timeout.attemptDurationSeconds', duration)}; set it to at "
            "least 60 seconds (Batch's minimum) so a hung attempt is stopped"
        )
    if _out_of(attempts, 1, 10):
        yield f"Batch job definition {args.name}: {_is('retryStrategy.attempts', attempts)}; set it between 1 and 10"


# --- 6. Step Functions ----------------------------------------------------------------------------


def _task_states(states: Mapping[str, Any], inside: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, state) of every Task, including those in Parallel branches and Map processors."""
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield (f"{name} (in {inside})" if inside else name), state
        here = f"{inside}.{name}" if inside else name
        for i, branch in enumerate(state.get("Branches") or []):
            yield from _task_states(branch.get("States") or {}, f"{here}.Branches[{i}]")
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _task_states(state[key].get("States") or {}, f"{here}.{key}")


def _check_state_machine(args: ResourceValidationArgs) -> Iterator[str]:
    what = f"state machine {args.name}"
    try:
        definition = _json(args.props.get("definition")) or {}
    except ValueError:
        yield f"{what}: definition is not valid JSON; give it an Amazon States Language document"
        return
    for label, task in _task_states(definition.get("States") or {}):
        retry, catch = task.get("Retry") or [], task.get("Catch") or []
        if not retry:
            yield f"{what}: Task state {label} has no Retry; add a Retry for its transient errors (MaxAttempts 1-10)"
        for i, retrier in enumerate(retry):
            attempts = retrier.get("MaxAttempts", 3)  # 3: the ASL default
            if _out_of(attempts, 1, 10):
                yield f"{what}: Task state {label}: {_is(f'Retry[{i}].MaxAttempts', attempts)}; set it between 1 and 10"
        if not catch:
            yield (
                f'{what}: Task state {label} has no Catch; add a Catch ending with ErrorEquals ["States.ALL"] '
                "that leads to the failure notification"
            )
        elif "States.ALL" not in (catch[-1].get("ErrorEquals") or []):
            yield (
                f"{what}: Task state {label}: the last Catch does not match States.ALL; end Catch with "
                'ErrorEquals ["States.ALL"] so no error escapes unreported'
            )


# --- 7. Logs, 8. tags, 9. names -------------------------------------------------------------------


def _check_log_group(args: ResourceValidationArgs) -> Iterator[str]:
    days = args.props.get("retentionInDays")
    accepted = ", ".join(map(str, LOG_RETENTION_DAYS))
    if days is None:
        yield f"log group {args.name}: retentionInDays is not set; set a retention CloudWatch Logs accepts ({accepted})"
    elif days not in LOG_RETENTION_DAYS:
        yield (
            f"log group {args.name}: {_is('retentionInDays', days)}, which CloudWatch Logs does not accept; "
            f"use one of {accepted}"
        )
    if not _is_set(args.props, "kmsKeyId"):
        yield (
            f"log group {args.name}: kmsKeyId is not set; set it to the estate's KMS key "
            "(its key policy lets CloudWatch Logs use it)"
        )


def _default_tags(args: ResourceValidationArgs) -> Mapping[str, Any]:
    """The provider's defaultTags.tags; the engine passes a provider's nested props as JSON strings."""
    default_tags = _json(args.provider.props.get("defaultTags")) if args.provider else None
    return _json((default_tags or {}).get("tags")) or {}


def _check_tags(args: ResourceValidationArgs) -> Iterator[str]:
    tags = {**_default_tags(args), **(args.props.get("tags") or {})}  # the provider merges them the same way
    missing = [key for key in ESTATE_TAGS if not tags.get(key)]
    if missing:
        several = len(missing) > 1
        yield (
            f"{args.resource_type} {args.name}: estate tag{'s' if several else ''} {', '.join(missing)} "
            f"{'are' if several else 'is'} missing or empty in its tags and its provider's defaultTags.tags; "
            "create it with the estate's aws provider (whose defaultTags carry them) or set them in tags"
        )


ALL_NAME_LIMITS = {**NAME_LIMITS, **OTHER_NAME_LIMITS}


def _check_names(args: ResourceValidationArgs) -> Iterator[str]:
    for (typ, field), (limit, allowed) in ALL_NAME_LIMITS.items():
        if typ != args.resource_type or not _is_set(args.props, field):
            continue
        value = str(args.props[field])
        prefix = field in PREFIX_INPUTS
        length = len(value) + (NAME_PREFIX_SUFFIX if prefix else 0)
        if length > limit:
            room = limit - NAME_PREFIX_SUFFIX if prefix else limit
            with_suffix = f" with the {NAME_PREFIX_SUFFIX}-character suffix the provider appends" if prefix else ""
            yield (
                f"{typ} {args.name}: {field} {json.dumps(value)} gives a {length}-character name{with_suffix}, "
                f"AWS allows {limit}; shorten it to at most {room} characters"
            )
        if not re.fullmatch(allowed, value):
            yield f"{typ} {args.name}: {field} {json.dumps(value)} does not match {allowed}; use only what AWS accepts"


# --- 10. schedules --------------------------------------------------------------------------------

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, range, names, whether `/` is allowed (AWS's cron reference: day-of-week takes `L` and `#` instead)
CRON_FIELDS = (
    ("minutes", 0, 59, (), True),
    ("hours", 0, 23, (), True),
    ("day-of-month", 1, 31, (), True),
    ("month", 1, 12, MONTHS, True),
    ("day-of-week", 1, 7, DAYS, False),
    ("year", 1970, 2199, (), True),
)
RATE_UNITS = {"minute": "minutes", "hour": "hours", "day": "days"}


def _cron_value(token: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    if token.upper() in names:
        return None
    if not token.isdigit():
        return f"{token} is not a number{' or a name' if names else ''}"
    return None if low <= int(token) <= high else f"{token} is outside {low}-{high}"


def _cron_item(item: str, field: tuple[str, int, int, tuple[str, ...], bool]) -> str | None:
    """What is wrong with one comma-separated item of a cron field, or None."""
    name, low, high, names, steps = field
    if name == "day-of-month" and (item == "L" or re.fullmatch(r"\d+W", item)):
        return None if item == "L" else _cron_value(item[:-1], low, high, names)
    if name == "day-of-week":
        if item == "L":
            return None
        if m := re.fullmatch(r"(\w+)#(\w+)", item):
            nth_ok = m[2].isdigit() and 1 <= int(m[2]) <= 5
            return _cron_value(m[1], low, high, names) or (None if nth_ok else f"#{m[2]} is outside #1-#5")
        if re.fullmatch(r"\w+L", item):
            return _cron_value(item[:-1], low, high, names)
    base, slash, step = item.partition("/")
    if slash and not steps:
        return "/ is not allowed in day-of-week"
    if slash and not (step.isdigit() and int(step) > 0):
        return f"the increment {step} is not a positive number"
    if base == "*":
        return None
    bounds = base.split("-")
    if len(bounds) > 2 or "" in bounds:
        return f"{base} is not a value or a range"
    return next((p for p in (_cron_value(b, low, high, names) for b in bounds) if p), None)


def _cron_problem(body: str) -> str | None:
    fields = body.split()
    if len(fields) != len(CRON_FIELDS):
        return f"has {len(fields)} fields; cron() takes 6: minutes hours day-of-month month day-of-week year"
    day_of_month, day_of_week = fields[2], fields[4]
    if day_of_month == "?" and day_of_week == "?":
        return "has ? in both day-of-month and day-of-week; give one of them a value"
    if "?" not in (day_of_month, day_of_week):
        return f"sets both day-of-month ({day_of_month}) and day-of-week ({day_of_week}); set exactly one of them to ?"
    for field, text in zip(CRON_FIELDS, fields, strict=True):
        if text == "?" and field[0] in ("day-of-month", "day-of-week"):
            continue
        problem = next((p for p in (_cron_item(item, field) for item in text.split(",")) if p), None)
        if problem:
            return f"has an invalid {field[0]} field {text}: {problem}"
    return None


def _rate_problem(body: str) -> str | None:
    value, _, unit = body.partition(" ")
    if not (value.isdigit() and int(value) > 0):
        return f"has the value {value}; rate() takes a positive whole number"
    singular = {plural: one for one, plural in RATE_UNITS.items()}.get(unit, unit)
    if singular not in RATE_UNITS:
        return f"has the unit {unit}; rate() takes minute(s), hour(s) or day(s)"
    right = singular if int(value) == 1 else RATE_UNITS[singular]
    return None if unit == right else f"uses {unit} with the value {value}; write rate({value} {right})"


def _at_problem(body: str) -> str | None:
    try:
        datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return "is not a valid at(yyyy-mm-ddThh:mm:ss) time"
    return None


SCHEDULE_FORMS: dict[str, Callable[[str], str | None]] = {
    "rate": _rate_problem,
    "cron": _cron_problem,
    "at": _at_problem,
}


def _schedule_problem(expression: Any, forms: tuple[str, ...]) -> str | None:
    m = re.fullmatch(r"(\w+)\((.*)\)", expression) if isinstance(expression, str) else None
    if not m or m[1] not in SCHEDULE_FORMS:
        return "is not " + " or ".join(f"{f}(...)" for f in forms)
    if m[1] not in forms:
        return f"uses {m[1]}(), which is not accepted here; use " + " or ".join(f"{f}()" for f in forms)
    return SCHEDULE_FORMS[m[1]](m[2].strip())


def _valid_zone(name: Any) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def _check_schedules(args: ResourceValidationArgs) -> Iterator[str]:
    typ, props = args.resource_type, args.props
    checks: list[tuple[str, str, tuple[str, ...]]] = []  # (noun, input, accepted forms)
    if typ == SCHEDULE:
        checks.append(("schedule", "scheduleExpression", ("rate", "cron", "at")))
        zone = props.get("scheduleExpressionTimezone")
        if zone is not None and not _valid_zone(zone):
            yield (
                f"schedule {args.name}: scheduleExpressionTimezone {json.dumps(zone)} is not an IANA time zone; "
                "use a name such as UTC or Europe/Paris"
            )
    if typ == EVENT_RULE and _is_set(props, "scheduleExpression"):  # EventBridge rules have no at()
        checks.append(("event rule", "scheduleExpression", ("rate", "cron")))
    if typ == GLUE_TRIGGER and props.get("type") == "SCHEDULED":  # Glue schedules are cron only
        checks.append(("Glue trigger", "schedule", ("cron",)))
    if typ == GLUE_CRAWLER and _is_set(props, "schedule"):
        checks.append(("Glue crawler", "schedule", ("cron",)))
    for noun, field, forms in checks:
        expression = props.get(field)
        problem = _schedule_problem(expression, forms)
        if problem:
            yield f"{noun} {args.name}: {field} {json.dumps(expression)} {problem}"


# --- the pack -------------------------------------------------------------------------------------

POLICIES: list[Policy] = [
    StackValidationPolicy(
        name="s3-bucket-companions",
        description="Every S3 bucket has an SSE configuration, a bucket policy and a public access block.",
        validate=_bucket_companions,
    ),
    StackValidationPolicy(
        name="s3-bucket-encryption-kms",
        description="Bucket default encryption uses SSE-KMS with a customer key and an S3 Bucket Key "
        "(SSE-S3 for a bucket receiving S3 server access logs).",
        validate=_bucket_encryption,
    ),
    _resource_policy(
        "s3-bucket-policy-tls-only",
        "Bucket policies deny every request made without TLS, to the bucket and its objects.",
        [BUCKET_POLICY],
        _check_bucket_policy,
    ),
    _resource_policy(
        "s3-public-access-blocked",
        "Bucket public access blocks set all four settings.",
        [PUBLIC_ACCESS_BLOCK],
        _check_public_access_block,
    ),
    _resource_policy("kms-key-rotation", "Symmetric KMS keys rotate.", [KMS_KEY], _check_key_rotation),
    _resource_policy(
        "redshift-private-managed-password",
        "Redshift Serverless is not publicly accessible and its admin password is managed by Secrets Manager.",
        [REDSHIFT_WORKGROUP, REDSHIFT_NAMESPACE],
        _check_redshift,
    ),
    _resource_policy(
        "glue-security-configuration",
        "Glue jobs and crawlers run with a security configuration.",
        [GLUE_JOB, GLUE_CRAWLER],
        _check_glue_security,
    ),
    _resource_policy(
        "glue-job-bounded-runs",
        "Glue jobs have a timeout of 1-2880 minutes and at most 3 retries.",
        [GLUE_JOB],
        _check_glue_job_runs,
    ),
    _resource_policy(
        "batch-job-bounded-runs",
        "Batch job definitions have an attempt timeout of at least 60 seconds and 1-10 attempts.",
        [BATCH_JOB_DEFINITION],
        _check_batch_job_runs,
    ),
    _resource_policy(
        "sfn-tasks-retry-and-catch",
        "Every Step Functions Task state retries (1-10 attempts) and catches States.ALL last.",
        [STATE_MACHINE],
        _check_state_machine,
    ),
    _resource_policy(
        "log-group-retention-and-kms",
        "CloudWatch log groups have a retention CloudWatch accepts and a KMS key.",
        [LOG_GROUP],
        _check_log_group,
    ),
    _resource_policy(
        "estate-tags",
        "Every taggable resource carries the estate tags (own tags plus the provider's default tags).",
        TAGGABLE_TYPES,
        _check_tags,
    ),
    _resource_policy(
        "physical-name-limits",
        "Physical names fit AWS's length and character limits (name prefixes with the provider's suffix).",
        {typ for typ, _ in ALL_NAME_LIMITS},
        _check_names,
    ),
    _resource_policy(
        "schedule-expressions-valid",
        "Schedule expressions are rate(), cron() or at() forms AWS accepts, in an IANA time zone.",
        [SCHEDULE, EVENT_RULE, GLUE_TRIGGER, GLUE_CRAWLER],
        _check_schedules,
    ),
]
