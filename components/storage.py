"""Storage: the estate's KMS key, the data-lake buckets, and DynamoDB tables for job state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.iam import document, objects, statement

ZONES = ("raw", "processed", "curated", "scripts", "query-results")
SCRATCH_PREFIX = "scratch/"  # in the processed zone: expires after DataLakeArgs.scratch_days


def s3_uri(bucket: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    """s3://bucket/prefix, the form Glue job arguments and crawler targets take."""
    return pulumi.Output.concat("s3://", bucket, "/", prefix)


def stateful(remove_data_on_destroy: bool, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of a resource holding data: protected and retained on destroy unless the stack's
    two-key removal setting (removeDataOnDestroy) allows deleting it."""
    keep = not remove_data_on_destroy
    return pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep)


@dataclass(frozen=True)
class LakeZone:
    """One bucket of the lake, and the IAM statements that grant access to key prefixes in it."""

    zone: str
    name: pulumi.Output[str]
    # One Output per bucket, shared by every statement: iam.hadoop_directories groups keys by it.
    arn: pulumi.Output[str]

    def uri(self, prefix: str) -> pulumi.Output[str]:
        """s3://<bucket>/<prefix>."""
        return s3_uri(self.name, prefix)

    def objects(self, *prefixes: str) -> list[pulumi.Output[str]]:
        """The ARNs of the objects under each prefix."""
        return objects(self.arn, *prefixes)

    def read(self, *prefixes: str) -> dict[str, Any]:
        """Read the objects under each prefix."""
        return statement(["s3:GetObject"], self.objects(*prefixes))

    def write(self, *prefixes: str) -> dict[str, Any]:
        """Read, write and replace the objects under each prefix (what a Spark job's output needs)."""
        return statement(["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], self.objects(*prefixes))

    def grant(self, actions: list[str], *prefixes: str) -> dict[str, Any]:
        """Exactly `actions` on the objects under each prefix (e.g. multipart uploads' abort)."""
        return statement(actions, self.objects(*prefixes))


@dataclass(frozen=True)
class Lake:
    """What pipelines use of the data lake: its key and its zones."""

    key_arn: pulumi.Output[str]
    raw: LakeZone
    processed: LakeZone
    curated: LakeZone
    scripts: LakeZone
    query_results: LakeZone


@dataclass(frozen=True, kw_only=True)
class DataLakeArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # Two-key data removal: only true lets `pulumi destroy` empty buckets; false protects them.
    remove_data_on_destroy: bool = False
    # Zones whose object events go to EventBridge (pipelines start from these).
    event_zones: tuple[str, ...] = ("raw",)
    # Days before objects move to Standard-IA / Glacier Instant Retrieval (raw, processed, curated).
    infrequent_access_days: int = 30
    archive_days: int = 90
    # Days a replaced or deleted object version is kept before it is expired.
    noncurrent_version_days: int = 30
    # Days Athena query results and S3 access logs are kept.
    query_results_days: int = 7
    access_log_days: int = 90
    # Objects under SCRATCH_PREFIX in the processed zone (per-run staging a pipeline writes once and
    # reads once, such as Athena UNLOAD output) expire after this many days.
    scratch_days: int = 7


class DataLake(pulumi.ComponentResource):
    """A customer-managed KMS key (rotated) and the lake's buckets.

    Every data bucket: SSE-KMS with a bucket key, versioning, lifecycle tiers, abort of incomplete
    multipart uploads after 7 days, a TLS-only policy, public access blocked, ACLs disabled and
    server access logging to the access-log bucket. The access-log bucket uses SSE-S3 because S3
    server access logging cannot deliver to SSE-KMS buckets.
    """

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    # The key and zones as pipelines use them (uris and grants by key prefix).
    zones: Lake
    access_log_bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:storage:DataLake", name, None, opts)
        kept = stateful(args.remove_data_on_destroy, self)

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Data-lake encryption key ({pulumi.get_project()}/{pulumi.get_stack()})",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=7 if args.remove_data_on_destroy else 30,
            policy=_key_policy(args.account_id, args.region),
            opts=kept,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{naming.physical('data', 250)}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self.key),
        )

        logs = self._bucket(f"{name}-access-logs", "access-logs", args, kept, kms=False)
        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=logs.id,
            policy=document(
                [
                    _deny_insecure_transport(logs.arn),
                    {
                        "Sid": "S3ServerAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(logs.arn, "/*"),
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    },
                ]
            ),
            opts=pulumi.ResourceOptions(parent=logs),
        )
        _lifecycle(
            f"{name}-access-logs", logs, expire_days=args.access_log_days, noncurrent_days=args.noncurrent_version_days
        )

        self.buckets: dict[str, aws.s3.Bucket] = {}
        for zone in ZONES:
            bucket = self._bucket(f"{name}-{zone}", zone, args, kept, kms=True)
            aws.s3.BucketPolicy(
                f"{name}-{zone}-policy",
                bucket=bucket.id,
                policy=document([_deny_insecure_transport(bucket.arn)]),
                opts=pulumi.ResourceOptions(parent=bucket),
            )
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=bucket.id,
                target_bucket=logs.id,
                target_prefix=f"{zone}/",
                opts=pulumi.ResourceOptions(parent=bucket),
            )
            if zone == "query-results":
                _lifecycle(f"{name}-{zone}", bucket, expire_days=args.query_results_days, noncurrent_days=1)
            elif zone == "scripts":
                _lifecycle(f"{name}-{zone}", bucket, noncurrent_days=args.noncurrent_version_days)
            else:
                _lifecycle(
                    f"{name}-{zone}",
                    bucket,
                    noncurrent_days=args.noncurrent_version_days,
                    tiers=(args.infrequent_access_days, args.archive_days),
                    scratch_days=args.scratch_days if zone == "processed" else None,
                )
            if zone in args.event_zones:
                aws.s3.BucketNotification(
                    f"{name}-{zone}-events",
                    bucket=bucket.id,
                    eventbridge=True,
                    opts=pulumi.ResourceOptions(parent=bucket),
                )
            self.buckets[zone] = bucket

        self.key_arn = self.key.arn
        self.key_id = self.key.key_id
        self.bucket_names = {zone: b.bucket for zone, b in self.buckets.items()}
        self.bucket_arns = {zone: b.arn for zone, b in self.buckets.items()}
        zones = {
            zone.replace("-", "_"): LakeZone(zone, self.bucket_names[zone], self.bucket_arns[zone]) for zone in ZONES
        }
        self.zones = Lake(key_arn=self.key_arn, **zones)
        self.access_log_bucket_name = logs.bucket
        self.register_outputs(
            {
                "key_arn": self.key_arn,
                "bucket_names": self.bucket_names,
                "access_log_bucket": self.access_log_bucket_name,
            }
        )

    def _bucket(
        self, resource_name: str, zone: str, args: DataLakeArgs, opts: pulumi.ResourceOptions, kms: bool
    ) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(
            resource_name,
            bucket_prefix=naming.bucket_prefix(zone),
            force_destroy=args.remove_data_on_destroy,
            opts=opts,
        )
        child = pulumi.ResourceOptions(parent=bucket)
        aws.s3.BucketPublicAccessBlock(
            f"{resource_name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{resource_name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketVersioning(
            f"{resource_name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        default: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": self.key.arn} if kms else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{resource_name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": default, "bucket_key_enabled": kms}],
            opts=child,
        )
        return bucket


def _deny_insecure_transport(bucket_arn: pulumi.Output[str]) -> dict:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _lifecycle(
    name: str,
    bucket: aws.s3.Bucket,
    noncurrent_days: int,
    expire_days: int | None = None,
    tiers: tuple[int, int] | None = None,
    scratch_days: int | None = None,
) -> None:
    rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
        "id": "tiering-and-cleanup",
        "status": "Enabled",
        "filter": {},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
    }
    if tiers:
        rule["transitions"] = [
            {"days": tiers[0], "storage_class": "STANDARD_IA"},
            {"days": tiers[1], "storage_class": "GLACIER_IR"},
        ]
    if expire_days:
        rule["expiration"] = {"days": expire_days}
    rules = [rule]
    if scratch_days:
        rules.append(
            {
                "id": "expire-scratch",
                "status": "Enabled",
                "filter": {"prefix": SCRATCH_PREFIX},
                "expiration": {"days": scratch_days},
                "noncurrent_version_expiration": {"noncurrent_days": 1},
            }
        )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle", bucket=bucket.id, rules=rules, opts=pulumi.ResourceOptions(parent=bucket)
    )


def alarm_source_arn(region: pulumi.Input[str], account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The aws:SourceArn CloudWatch sends when an alarm of this account and region publishes:
    arn:aws:cloudwatch:<region>:<account>:alarm:<name> (AWS re:Post Knowledge Center, "Why didn't I
    receive an SNS notification for my CloudWatch alarm trigger?",
    https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger); any alarm name."""
    return pulumi.Output.concat("arn:aws:cloudwatch:", region, ":", account_id, ":alarm:*")


def _key_policy(account_id: pulumi.Input[str], region: pulumi.Input[str]) -> pulumi.Output[str]:
    """Account administrators manage the key (so IAM policies grant its use to the estate's roles);
    AWS services that encrypt for us may use it: CloudWatch Logs for this account's log groups,
    EventBridge for this account's rules delivering to encrypted topics and dead-letter queues,
    CloudWatch for this account's alarms publishing to the encrypted alerts topic, and vended-log
    delivery for state machines encrypted with this key that log to an encrypted group.
    EventBridge Scheduler is not among them: it acts as each schedule's execution role."""
    root = pulumi.Output.concat("arn:aws:iam::", account_id, ":root")
    use = ["kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"]
    return document(
        [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogs",
                "Effect": "Allow",
                "Principal": {"Service": pulumi.Output.concat("logs.", region, ".amazonaws.com")},
                "Action": use,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                            "arn:aws:logs:", region, ":", account_id, ":*"
                        )
                    }
                },
            },
            {
                # No aws:SourceAccount/aws:SourceArn condition: EventBridge's key requests for an encrypted
                # topic do not carry them, so a condition on them drops every delivery (Amazon SNS, "Managing
                # Amazon SNS encryption keys": adding them to a KMS policy "is not supported for
                # EventBridge-to-encrypted topics", https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
                # The topic and queue policies carry the source conditions.
                "Sid": "EventDeliveryToEncryptedTopicsAndQueues",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
            {
                # CloudWatch alarms publish to the encrypted alerts topic as the service, which needs the
                # topic's key (Amazon SNS, "Managing Amazon SNS encryption keys", event sources from AWS
                # services: cloudwatch.amazonaws.com with kms:GenerateDataKey* and kms:Decrypt, conditioned on
                # aws:SourceAccount and aws:SourceArn; https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
                "Sid": "CloudWatchAlarmsToEncryptedTopics",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": alarm_source_arn(region, account_id)},
                },
            },
            {
                # Step Functions' encryption-at-rest guide (and AWS CDK) give the log delivery service
                # exactly this, unconditioned, for machines encrypted with a customer key that log.
                "Sid": "StateMachineLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ]
    )


@dataclass(frozen=True, kw_only=True)
class StateTableArgs:
    kms_key_arn: pulumi.Input[str]
    hash_key: str
    range_key: str | None = None
    # Attribute name -> DynamoDB type ("S", "N", "B") for the keys.
    attributes: dict[str, str] = field(default_factory=dict)
    # Only true allows `pulumi destroy` to delete the table; false sets deletion protection.
    remove_data_on_destroy: bool = False
    # Attribute holding an epoch-seconds expiry, or None for no TTL.
    ttl_attribute: str | None = None


class StateTable(pulumi.ComponentResource):
    """A DynamoDB table for job state (bookmarks, run logs): on-demand, KMS-encrypted with the
    estate key, point-in-time recovery on, deletion-protected unless the stack allows removal."""

    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StateTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:storage:StateTable", name, None, opts)
        missing = [k for k in (args.hash_key, args.range_key) if k and k not in args.attributes]
        if missing:
            raise ValueError(f"StateTable {name}: declare the type of key attribute(s) {missing} in attributes")
        table = aws.dynamodb.Table(
            f"{name}-table",
            name=naming.physical(name, 255),
            billing_mode="PAY_PER_REQUEST",
            hash_key=args.hash_key,
            range_key=args.range_key,
            attributes=[{"name": n, "type": t} for n, t in sorted(args.attributes.items())],
            server_side_encryption={"enabled": True, "kms_key_arn": args.kms_key_arn},
            point_in_time_recovery={"enabled": True},
            deletion_protection_enabled=not args.remove_data_on_destroy,
            ttl={"attribute_name": args.ttl_attribute, "enabled": True} if args.ttl_attribute else None,
            opts=stateful(args.remove_data_on_destroy, self),
        )
        self.table_name = table.name
        self.table_arn = table.arn
        self.register_outputs({"table_name": self.table_name, "table_arn": self.table_arn})
