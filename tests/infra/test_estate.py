"""The whole program under Pulumi mocks, for the dev and the prod stack configuration."""

from __future__ import annotations

import fnmatch
import json
import re
import runpy
from collections import Counter
from typing import Any
from unittest import mock

import parliament
import pulumi
import pytest
from guardrails import NAME_LIMITS  # (type, input) -> (maximum length, allowed characters)
from moto.events.models import EventPattern

from components import monitoring
from components.compute import CURRENT_IMAGE_TAG
from components.iam import RESOURCE_STAR_ONLY
from components.monitoring import Freshness
from pipelines.gharchive_queries import named_queries
from tests.infra.harness import ACCOUNT, REGION, ROOT, Estate, build_estate, repo_digest, run_under_mocks, stack_config

# The image tag: each build is pushed as its repository's current image (the next build's layer cache);
# the jobs run its digest (tests/infra/test_image.py).
IMAGE_TAG = CURRENT_IMAGE_TAG
NAMED_QUERIES = len(named_queries("gharchive_events"))

DEV_TAGS = {
    "project": "dataplatform",
    "stack": "dev",
    "managed-by": "pulumi",
    "owner": "data-platform",
    "cost-center": "unassigned",
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def estate(request: pytest.FixtureRequest, dev: Estate, prod: Estate) -> Estate:
    return dev if request.param == "dev" else prod


def registered(estate: Estate) -> list:
    return estate.resources


def policy(text: str) -> dict[str, Any]:
    return json.loads(text)


# --- what the estate contains ---------------------------------------------------------------------


def test_dev_estate_has_every_resource_family(dev: Estate) -> None:
    counts = Counter(r.type for r in dev.resources if r.type.startswith(("aws:", "docker:")))
    assert counts == {
        # storage: key + 6 buckets, each with 7 companions (logging only on the 5 data buckets)
        "aws:kms/key:Key": 1,
        "aws:kms/alias:Alias": 1,
        "aws:s3/bucket:Bucket": 6,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 6,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 6,
        "aws:s3/bucketVersioning:BucketVersioning": 6,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 6,
        "aws:s3/bucketPolicy:BucketPolicy": 6,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 6,
        "aws:s3/bucketLogging:BucketLogging": 5,
        "aws:s3/bucketNotification:BucketNotification": 1,
        # network: 3 zones x (public + private), no NAT in dev
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/subnet:Subnet": 6,
        "aws:ec2/routeTable:RouteTable": 2,
        "aws:ec2/routeTableAssociation:RouteTableAssociation": 6,
        "aws:ec2/internetGateway:InternetGateway": 1,
        "aws:ec2/vpcEndpoint:VpcEndpoint": 1,
        "aws:ec2/securityGroup:SecurityGroup": 2,
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": 1,
        "aws:ec2/flowLog:FlowLog": 1,
        # warehouse
        "aws:redshiftserverless/namespace:Namespace": 1,
        "aws:redshiftserverless/workgroup:Workgroup": 1,
        "aws:redshiftserverless/usageLimit:UsageLimit": 1,  # dev: 24 RPU-hours a day
        # the pipelines' database roles and grants: the procedure and its call (Data API, admin secret)
        "aws:redshiftdata/statement:Statement": 2,
        "aws:glue/catalogDatabase:CatalogDatabase": 1,
        # the tables whose schema is the estate's: sales Parquet, sensor time series, GH Archive events,
        # the 4 COVID-19 curated tables
        "aws:glue/catalogTable:CatalogTable": 7,
        "aws:athena/workgroup:Workgroup": 1,
        # Glue: 5 jobs (each script, glue_common and the job_runtime zip uploaded), 2 crawlers where the
        # input's schema is not ours (sales input, COVID-19 landing: one with a CSV classifier), a
        # security configuration each
        "aws:glue/job:Job": 5,
        "aws:glue/crawler:Crawler": 2,
        "aws:glue/classifier:Classifier": 1,
        "aws:glue/securityConfiguration:SecurityConfiguration": 7,
        "aws:s3/bucketObjectv2:BucketObjectv2": 15,
        # sales workflow: event start + 2 conditional triggers (crawl input -> convert -> load)
        "aws:glue/workflow:Workflow": 1,
        "aws:glue/trigger:Trigger": 3,
        # compute: Spot + on-demand fallback in dev
        "aws:ecr/repository:Repository": 1,
        "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
        "docker:index/image:Image": 1,
        "aws:batch/computeEnvironment:ComputeEnvironment": 2,
        "aws:batch/jobQueue:JobQueue": 1,
        "aws:batch/jobDefinition:JobDefinition": 3,  # render-summary, gharchive-ingest, copy-datasets
        # GH Archive: bookmark and run-log tables, Athena named queries
        "aws:dynamodb/table:Table": 2,
        "aws:athena/namedQuery:NamedQuery": NAMED_QUERIES,
        # topics: alerts, and notifications (dev keeps successNotifications' default, true)
        "aws:sns/topic:Topic": 2,
        "aws:sns/topicPolicy:TopicPolicy": 2,
        # orchestration
        "aws:sfn/stateMachine:StateMachine": 4,  # render-logs, sensor, gharchive, covid
        "aws:scheduler/schedule:Schedule": 3,  # sensor monthly, gharchive hourly, covid weekly
        # rules: 2 S3 uploads (render-logs, sales) + the sales crawler's and 2 jobs' failed and succeeded
        # runs (3 x 2), each with a target; the monitoring's failed Glue runs (sales, sensor, gharchive,
        # covid) and failed Batch jobs (render-logs, gharchive, covid), alarmed on, without targets
        "aws:cloudwatch/eventRule:EventRule": 2 + 3 * 2 + 4 + 3,
        "aws:cloudwatch/eventTarget:EventTarget": 2 + 3 * 2,
        # alarms: 6 dead-letter queues, 4 state machines x (failed, timed out, aborted), Glue failures of
        # 4 pipelines, Batch failures of 3, GH Archive freshness, 5 quarantine ratios; one dashboard
        "aws:cloudwatch/metricAlarm:MetricAlarm": 6 + 4 * 3 + 4 + 3 + 1 + 5,
        "aws:cloudwatch/dashboard:Dashboard": 1,
        # dead-letter queues: render-logs trigger, sales trigger, sales notifications, 3 schedules
        "aws:sqs/queue:Queue": 6,
        # EventBridge rules deliver dead letters as the service (a queue policy); Scheduler as its role (none).
        "aws:sqs/queuePolicy:QueuePolicy": 3,
        # flow logs, Batch, 4 state machines, 5 Glue jobs x (output, error), 2 crawlers
        "aws:cloudwatch/logGroup:LogGroup": 18,
        "aws:iam/role:Role": 22,
        # one per role, and each crawler's second one for its log group (named after the role)
        "aws:iam/rolePolicy:RolePolicy": 24,
    }


def test_prod_differs_from_dev_only_where_its_config_says(dev: Estate, prod: Estate) -> None:
    dev_types = Counter(r.type for r in registered(dev))
    prod_types = Counter(r.type for r in registered(prod))
    assert prod_types - dev_types == {
        "aws:ec2/eip:Eip": 1,
        "aws:ec2/natGateway:NatGateway": 1,
        "aws:sns/topicSubscription:TopicSubscription": 1,  # the on-call's e-mail on the alerts topic
    }
    # No Spot in prod; successNotifications false: no notifications topic, no sales success rules.
    assert dev_types - prod_types == {
        "aws:batch/computeEnvironment:ComputeEnvironment": 1,
        "aws:sns/topic:Topic": 1,
        "aws:sns/topicPolicy:TopicPolicy": 1,
        "aws:cloudwatch/eventRule:EventRule": 3,
        "aws:cloudwatch/eventTarget:EventTarget": 3,
    }


def test_components_parent_their_children(dev: Estate) -> None:
    top_level = {name for (typ, name), o in dev.options.items() if o.parent_type == "pulumi:pulumi:Stack"}
    platform = {"aws", "lake", "net", "warehouse", "warehouse-access", "catalog", "topics"}
    pipelines = {"batch", "render-logs", "sales", "sensor", "gharchive", "covid"}
    assert top_level == platform | pipelines | {"monitoring"}
    for (typ, name), o in dev.options.items():
        if typ.startswith(("aws:", "docker:")) and typ != "pulumi:providers:aws":
            assert o.parent_type and o.parent_type != "pulumi:pulumi:Stack", f"{name} ({typ}) is not inside a component"


# --- tags ---------------------------------------------------------------------------------------


def test_every_aws_resource_carries_the_estate_tags_through_the_provider(dev: Estate) -> None:
    provider = dev.one("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"]) == {"tags": DEV_TAGS}
    assert provider.inputs["region"] == "eu-west-1"
    provider_urn = "urn:pulumi:dev::dataplatform::pulumi:pulumi:Stack$pulumi:providers:aws::aws::aws-id"
    aws_resources = [r for r in dev.resources if r.type.startswith("aws:")]
    assert len(aws_resources) > 100
    for r in aws_resources:
        assert r.provider == provider_urn, f"{r.name} ({r.type}) does not use the tagging provider"
        # Explicit tags may only add a Name, or the database roles Redshift grants a role at sign-in;
        # they never override the estate tags.
        assert set(r.inputs.get("tags", {})) <= {"Name", "RedshiftDbRoles"}, r.name


def test_batch_jobs_inherit_tags(dev: Estate) -> None:
    assert all(r.inputs["propagateTags"] is True for r in dev.of_type("aws:batch/jobDefinition:JobDefinition"))
    for machine, step in (
        ("render-logs", "SummarizeRenderLogs"),
        ("gharchive", "IngestHours"),
        ("covid", "CopySources"),
    ):
        definition = policy(dev.one("aws:sfn/stateMachine:StateMachine", machine).inputs["definition"])
        assert definition["States"][step]["Parameters"]["PropagateTags"] is True


# --- IAM ----------------------------------------------------------------------------------------


def statements(estate: Estate) -> list[tuple[str, dict]]:
    return [
        (r.name, s)
        for r in estate.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in policy(r.inputs["policy"])["Statement"]
    ]


def test_no_wildcard_actions_and_star_resources_only_where_aws_requires(estate: Estate) -> None:
    found = statements(estate)
    assert len(found) >= 20
    for name, s in found:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert s["Effect"] == "Allow", name
        for action in actions:
            assert action != "*" and not action.endswith(":*") and "*" not in action.split(":")[1], (name, action)
        if "*" in resources:
            assert resources == ["*"], name
            assert set(actions) <= RESOURCE_STAR_ONLY, f"{name}: {actions} can be scoped to resources"
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:aws:"), (name, resource)


# parliament reads `job-definition/name:*` (any revision, the form AWS documents for Step Functions'
# Batch integration) as not matching `job-definition/*`: its matcher stops at the revision colon.
PARLIAMENT_KNOWN_FALSE_POSITIVES = {("batch:SubmitJob", "arn:*:batch:*:*:job-definition/*")}


def known_false_positive(detail: Any) -> bool:
    return (
        isinstance(detail, dict)
        and (detail.get("action"), detail.get("required_format")) in PARLIAMENT_KNOWN_FALSE_POSITIVES
    )


def test_every_policy_passes_parliament(estate: Estate) -> None:
    for r in estate.of_type("aws:iam/rolePolicy:RolePolicy"):
        problems = []
        for finding in parliament.analyze_policy_string(r.inputs["policy"]).findings:
            details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
            real = [d for d in details if not known_false_positive(d)]
            if real:
                problems.append((finding.issue, real))
        assert problems == [], f"{r.name}: {problems}"


def test_roles_trust_one_service_of_this_account_only(estate: Estate) -> None:
    expected_services = {
        "net-flow-logs-role": "vpc-flow-logs.amazonaws.com",
        "warehouse-copy-role": "redshift.amazonaws.com",
        "batch-execution-role": "ecs-tasks.amazonaws.com",
        "render-logs-job-role": "ecs-tasks.amazonaws.com",
        "render-logs-flow-role": "states.amazonaws.com",
        "render-logs-trigger-role": "events.amazonaws.com",
        "sales-input-crawler-role": "glue.amazonaws.com",
        "sales-convert-role": "glue.amazonaws.com",
        "sales-load-role": "glue.amazonaws.com",
        "sales-trigger-role": "events.amazonaws.com",
        "sensor-job-role": "glue.amazonaws.com",
        "sensor-flow-role": "states.amazonaws.com",
        "sensor-schedule-role": "scheduler.amazonaws.com",
        "gharchive-ingest-role": "ecs-tasks.amazonaws.com",
        "gharchive-events-role": "glue.amazonaws.com",
        "gharchive-flow-role": "states.amazonaws.com",
        "gharchive-schedule-role": "scheduler.amazonaws.com",
        "covid-copy-role": "ecs-tasks.amazonaws.com",
        "covid-landing-crawler-role": "glue.amazonaws.com",
        "covid-clean-role": "glue.amazonaws.com",
        "covid-flow-role": "states.amazonaws.com",
        "covid-schedule-role": "scheduler.amazonaws.com",
    }
    roles = {r.name: r for r in estate.of_type("aws:iam/role:Role")}
    assert set(roles) == set(expected_services)
    # aws:SourceAccount only where AWS documents the service sends it (components.iam tables; Glue and
    # Redshift document trust policies without it).
    unconditioned = {"glue.amazonaws.com", "redshift.amazonaws.com"}
    for name, role in roles.items():
        condition = (
            {}
            if expected_services[name] in unconditioned
            else {"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
        )
        assert policy(role.inputs["assumeRolePolicy"])["Statement"] == [
            {
                "Effect": "Allow",
                "Principal": {"Service": expected_services[name]},
                "Action": "sts:AssumeRole",
                **condition,
            }
        ]


def test_render_job_role_is_least_privilege(dev: Estate) -> None:
    raw = dev.one("aws:s3/bucket:Bucket", "lake-raw").inputs["bucketPrefix"] + "20260101000000000000000001"
    processed = dev.one("aws:s3/bucket:Bucket", "lake-processed").inputs["bucketPrefix"] + "20260101000000000000000001"
    workgroup = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/0b9f4c3e-dataplatform-dev-warehouse"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
    assert policy(dev.named("render-logs-job-role-policy").inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{raw}/render-logs/*"]},
        # A missing input is then NoSuchKey (bad input), not AccessDenied.
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{raw}"]},
        # The quarantine file and the Parquet stage (render_summary.warehouse) are multipart uploads
        # (AbortMultipartUpload when a run fails); the stage is deleted after the COPY.
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
            "Resource": [
                f"arn:aws:s3:::{processed}/quarantine/render-logs/*",
                f"arn:aws:s3:::{processed}/stage/render-logs/*",
            ],
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [key]},
        {
            "Effect": "Allow",
            "Action": ["redshift-data:BatchExecuteStatement", "redshift-data:ExecuteStatement"],
            "Resource": [workgroup],
        },
        {
            "Effect": "Allow",
            "Action": [
                "redshift-data:CancelStatement",
                "redshift-data:DescribeStatement",
                "redshift-data:GetStatementResult",
            ],
            "Resource": ["*"],
        },
        {"Effect": "Allow", "Action": ["redshift-serverless:GetCredentials"], "Resource": [workgroup]},
    ]


# --- names --------------------------------------------------------------------------------------


def physical_names(estate: Estate) -> dict[tuple[str, str, str], str]:
    names = {}
    for r in registered(estate):
        for (typ, field), _ in NAME_LIMITS.items():
            if r.type == typ:
                assert field in r.inputs, f"{r.name} ({typ}) sets no {field}: it would not carry the stack"
                names[(typ, field, r.name)] = r.inputs[field]
    return names


def check_names(estate: Estate, stack_marker: str) -> None:
    names = physical_names(estate)
    assert len(names) >= 25
    for (typ, field, resource), value in names.items():
        limit, chars = NAME_LIMITS[(typ, field)]
        length = len(value) + (26 if field in ("namePrefix", "bucketPrefix") else 0)
        assert length <= limit, f"{resource}: {value!r} is {length} long, {typ} allows {limit}"
        assert re.fullmatch(chars, value), f"{resource}: {value!r} has characters {typ} does not allow"
        assert stack_marker in value.replace("_", "-"), f"{resource}: {value!r} does not carry the stack"


def test_names_carry_project_and_stack_within_limits(dev: Estate, prod: Estate) -> None:
    check_names(dev, "dataplatform-dev")
    check_names(prod, "dataplatform-prod")


def test_a_long_pull_request_stack_still_fits_and_never_collides() -> None:
    one = build_estate("pr-4812-add-device-latency-percentiles-and-more", "Pulumi.dev.yaml")
    two = build_estate("pr-4812-add-device-latency-percentiles-and-less", "Pulumi.dev.yaml")
    check_names(one, "dataplatform-pr-4812")
    check_names(two, "dataplatform-pr-4812")
    assert set(physical_names(one).values()).isdisjoint(physical_names(two).values())


def test_two_stacks_share_no_physical_name(dev: Estate, prod: Estate) -> None:
    dev_names, prod_names = set(physical_names(dev).values()), set(physical_names(prod).values())
    assert dev_names.isdisjoint(prod_names)
    # Within one stack, names of one resource type are unique too (types are separate namespaces).
    per_type = {(typ, value) for (typ, _, _), value in physical_names(dev).items()}
    assert len(per_type) == len(physical_names(dev))


# --- data removal gate --------------------------------------------------------------------------

STATEFUL = (
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:ecr/repository:Repository",
    "aws:redshiftserverless/namespace:Namespace",
    "aws:dynamodb/table:Table",
)


def options(estate: Estate, typ: str) -> list:
    return [(name, o) for (t, name), o in estate.options.items() if t == typ]


def test_dev_lets_destroy_remove_data(dev: Estate) -> None:
    assert all(r.inputs["forceDestroy"] is True for r in dev.of_type("aws:s3/bucket:Bucket"))
    assert dev.one("aws:ecr/repository:Repository").inputs["forceDelete"] is True
    assert dev.one("aws:athena/workgroup:Workgroup").inputs["forceDestroy"] is True
    assert dev.one("aws:kms/key:Key").inputs["deletionWindowInDays"] == 7
    assert all(r.inputs["deletionProtectionEnabled"] is False for r in dev.of_type("aws:dynamodb/table:Table"))
    for typ in STATEFUL:
        for name, o in options(dev, typ):
            assert (o.protect, o.retain_on_delete) == (False, False), name


def test_prod_protects_and_retains_data(prod: Estate) -> None:
    assert all(r.inputs["forceDestroy"] is False for r in prod.of_type("aws:s3/bucket:Bucket"))
    assert prod.one("aws:ecr/repository:Repository").inputs["forceDelete"] is False
    assert prod.one("aws:athena/workgroup:Workgroup").inputs["forceDestroy"] is False
    assert prod.one("aws:kms/key:Key").inputs["deletionWindowInDays"] == 30
    assert all(r.inputs["deletionProtectionEnabled"] is True for r in prod.of_type("aws:dynamodb/table:Table"))
    protected = [r for typ in STATEFUL for r in options(prod, typ)]
    assert len(protected) == 11  # 6 buckets, key, repository, namespace, 2 GH Archive tables
    for name, o in protected:
        assert (o.protect, o.retain_on_delete) == (True, True), name


# --- secure defaults ----------------------------------------------------------------------------


def test_buckets_are_encrypted_private_versioned_tls_only_and_logged(dev: Estate) -> None:
    buckets = {r.name: r for r in dev.of_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {
        f"lake-{z}" for z in ("raw", "processed", "curated", "scripts", "query-results", "access-logs")
    }
    for name in buckets:
        enc = dev.named(f"{name}-encryption").inputs["rules"][0]
        if name == "lake-access-logs":  # S3 server access logging cannot target SSE-KMS buckets
            assert enc == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}
        else:
            key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
            assert enc == {
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key},
                "bucketKeyEnabled": True,
            }
            assert dev.named(f"{name}-logging").inputs["targetPrefix"] == name.removeprefix("lake-") + "/"
        block = dev.named(f"{name}-public-access").inputs
        assert {k: v for k, v in block.items() if k != "bucket"} == {
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        assert dev.named(f"{name}-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
        assert dev.named(f"{name}-ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
        deny = policy(dev.named(f"{name}-policy").inputs["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        rule = dev.named(f"{name}-lifecycle").inputs["rules"][0]
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    raw_rule = dev.named("lake-raw-lifecycle").inputs["rules"][0]
    assert raw_rule["transitions"] == [
        {"days": 30, "storageClass": "STANDARD_IA"},
        {"days": 90, "storageClass": "GLACIER_IR"},
    ]
    assert dev.named("lake-query-results-lifecycle").inputs["rules"][0]["expiration"] == {"days": 7}
    # Per-run staging in the processed zone's scratch/ area expires; nothing else in the lake does.
    assert dev.named("lake-processed-lifecycle").inputs["rules"][1] == {
        "id": "expire-scratch",
        "status": "Enabled",
        "filter": {"prefix": "scratch/"},
        "expiration": {"days": 7},
        "noncurrentVersionExpiration": {"noncurrentDays": 1},
    }
    assert [len(dev.named(f"lake-{zone}-lifecycle").inputs["rules"]) for zone in ("raw", "curated", "scripts")] == [
        1,
        1,
        1,
    ]
    # Only the raw zone sends object events (the pipelines start there).
    assert dev.one("aws:s3/bucketNotification:BucketNotification").name == "lake-raw-events"


def test_kms_key_rotates_and_lets_services_encrypt_only_for_this_account(dev: Estate) -> None:
    key = dev.one("aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True and key["rotationPeriodInDays"] == 365
    sids = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    assert set(sids) == {
        "AccountAdministration",
        "CloudWatchLogs",
        "EventDeliveryToEncryptedTopicsAndQueues",
        "CloudWatchAlarmsToEncryptedTopics",
        "StateMachineLogDelivery",
    }
    assert sids["AccountAdministration"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert sids["CloudWatchLogs"]["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}
    }


def test_warehouse_is_private_encrypted_with_a_managed_password(estate: Estate) -> None:
    ns = estate.one("aws:redshiftserverless/namespace:Namespace").inputs
    wg = estate.one("aws:redshiftserverless/workgroup:Workgroup").inputs
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
    assert ns["manageAdminPassword"] is True and "adminUserPassword" not in ns
    assert ns["kmsKeyId"] == key and ns["adminPasswordSecretKmsKeyId"] == key
    assert ns["logExports"] == ["connectionlog", "userlog", "useractivitylog"]
    assert wg["publiclyAccessible"] is False and wg["enhancedVpcRouting"] is True
    assert {"parameterKey": "require_ssl", "parameterValue": "true"} in wg["configParameters"]
    assert len(wg["subnetIds"]) == 3
    expected = {"dev": (8, 32), "prod": (32, 128)}[estate.stack]
    assert (wg["baseCapacity"], wg.get("maxCapacity")) == expected


def test_athena_enforces_encrypted_results(dev: Estate) -> None:
    config = dev.one("aws:athena/workgroup:Workgroup").inputs["configuration"]
    assert config["enforceWorkgroupConfiguration"] is True
    assert config["resultConfiguration"]["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS",
        "kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key",
    }
    assert config["resultConfiguration"]["outputLocation"].endswith("/athena/")


def test_logs_topics_queues_and_state_machines_use_the_estate_key(dev: Estate) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
    for group in dev.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["kmsKeyId"] == key and group.inputs["retentionInDays"] == 7, group.name
    assert all(t.inputs["kmsMasterKeyId"] == key for t in dev.of_type("aws:sns/topic:Topic"))
    for queue in dev.of_type("aws:sqs/queue:Queue"):
        assert queue.inputs["kmsMasterKeyId"] == key, queue.name
    for machine in dev.of_type("aws:sfn/stateMachine:StateMachine"):
        assert machine.inputs["encryptionConfiguration"]["kmsKeyId"] == key, machine.name
        assert machine.inputs["loggingConfiguration"]["includeExecutionData"] is False, machine.name
    assert all(s.inputs["kmsKeyArn"] == key for s in dev.of_type("aws:scheduler/schedule:Schedule"))
    for table in dev.of_type("aws:dynamodb/table:Table"):
        assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key}, table.name
        assert table.inputs["pointInTimeRecovery"] == {"enabled": True}, table.name
    assert dev.one("aws:ecr/repository:Repository").inputs["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": key}
    ]


def test_network_has_no_idle_cost_in_dev_and_admits_nothing_inbound_to_jobs(dev: Estate, prod: Estate) -> None:
    assert not dev.of_type("aws:ec2/natGateway:NatGateway")
    assert dev.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs["vpcEndpointType"] == "Gateway"
    jobs = dev.one("aws:ec2/securityGroup:SecurityGroup", "jobs").inputs
    assert jobs.get("ingress", []) == []
    warehouse = dev.one("aws:ec2/securityGroup:SecurityGroup", "warehouse").inputs
    assert [(r["fromPort"], r["securityGroups"]) for r in warehouse["ingress"]] == [(5439, ["net-jobs-sg-id"])]
    assert dev.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs.get("ingress", []) == []
    assert dev.one("aws:ec2/flowLog:FlowLog").inputs["trafficType"] == "REJECT"
    # Tasks get public IPs without NAT (dev) and run in private subnets with it (prod).
    for estate, public_ip in ((dev, "ENABLED"), (prod, "DISABLED")):
        for job in estate.of_type("aws:batch/jobDefinition:JobDefinition"):
            container = policy(job.inputs["containerProperties"])
            assert container["networkConfiguration"] == {"assignPublicIp": public_ip}, job.name


# --- the render-log pipeline --------------------------------------------------------------------


def test_render_job_definition(dev: Estate) -> None:
    job = dev.one("aws:batch/jobDefinition:JobDefinition", "render-logs").inputs
    assert job["platformCapabilities"] == ["FARGATE"] and job["type"] == "container"
    assert job["timeout"] == {"attemptDurationSeconds": 3600}
    assert job["retryStrategy"] == {
        "attempts": 3,
        "evaluateOnExits": [
            {"onExitCode": "4", "action": "RETRY"},
            {"onReason": "CannotPullContainerError*", "action": "RETRY"},
            {"onExitCode": "*", "action": "EXIT"},
        ],
    }
    container = policy(job["containerProperties"])
    repo = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch"
    # The pushed digest, not the tag (tests/infra/test_aws_rules.py says why).
    assert container["image"] == repo_digest(f"{repo}:{IMAGE_TAG}")
    assert container["command"] == ["render-summary", "--input", "Ref::input"]
    assert container["resourceRequirements"] == [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "1024"}]
    assert container["readonlyRootFilesystem"] is True
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/aws/batch/dataplatform-dev-batch"
    env = {e["name"]: e["value"] for e in container["environment"]}
    processed_prefix = dev.one("aws:s3/bucket:Bucket", "processed").inputs["bucketPrefix"]
    processed = f"s3://{processed_prefix}20260101000000000000000001"
    copy_role = f"arn:aws:iam::{ACCOUNT}:role/" + dev.one("aws:iam/role:Role", "warehouse-copy").inputs["namePrefix"]
    assert env.pop("REDSHIFT_COPY_ROLE_ARN").startswith(copy_role)  # the warehouse's role, which reads `processed`
    assert env == {
        "REDSHIFT_DATABASE": "analytics",
        "REDSHIFT_WORKGROUP": "dataplatform-dev-warehouse",
        "RENDER_SUMMARY_QUARANTINE": f"{processed}/quarantine/render-logs",
        "RENDER_SUMMARY_STAGE": f"{processed}/stage/render-logs",
        "SUMMARY_TABLE": "performance_summary",
        "WAREHOUSE_BACKEND": "redshift-data",
        # The Stack and Pipeline dimensions of the job's run metrics (job_runtime.metrics.dimensions_from_env).
        "METRICS_STACK": "dev",
        "METRICS_PIPELINE": "render-logs",
    }
    image = dev.one("docker:index/image:Image").inputs
    assert image["imageName"] == f"{repo}:{IMAGE_TAG}"
    assert image["build"]["context"] == "." and image["build"]["dockerfile"] == "batch_image/Dockerfile"
    assert image["build"]["platform"] == "linux/amd64" and image["buildOnPreview"] is False
    repository = dev.one("aws:ecr/repository:Repository").inputs
    assert repository["imageTagMutability"] == "MUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}


def test_compute_environments_spot_first_then_on_demand(dev: Estate) -> None:
    kinds = [
        r.inputs["computeResources"]["type"] for r in dev.of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    ]
    assert kinds == ["FARGATE_SPOT", "FARGATE"]
    orders = dev.one("aws:batch/jobQueue:JobQueue").inputs["computeEnvironmentOrders"]
    assert [o["order"] for o in orders] == [1, 2]
    assert all(
        r.inputs["computeResources"]["maxVcpus"] == 4
        for r in dev.of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    )


SUFFIX = "20260101000000000000000001"  # what the mocks append to a name prefix


def topic_arn(estate: Estate, kind: str) -> str:
    """The ARN of the stack's `alerts` or `notifications` topic, as the mocks name it."""
    prefix = estate.one("aws:sns/topic:Topic", f"topics-{kind}").inputs["namePrefix"]
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:{prefix}{SUFFIX}"


def machines(estate: Estate) -> dict[str, dict[str, Any]]:
    return {m.name: policy(m.inputs["definition"]) for m in estate.of_type("aws:sfn/stateMachine:StateMachine")}


def test_state_machine_every_task_retries_and_catches_to_a_notification(estate: Estate) -> None:
    definition = policy(estate.one("aws:sfn/stateMachine:StateMachine", "render-logs").inputs["definition"])
    states = definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    success = {"NotifySuccess"} if estate.stack == "dev" else set()
    assert set(tasks) == {"SummarizeRenderLogs", "NotifyFailure"} | success
    for name, task in tasks.items():
        assert task["Retry"] and all(r["MaxAttempts"] >= 1 for r in task["Retry"]), name
        assert task["Catch"] and task["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    assert tasks["SummarizeRenderLogs"]["Catch"][0]["Next"] == "NotifyFailure"
    # Prod has no notifications topic (successNotifications false): success ends in a Succeed state.
    assert tasks["SummarizeRenderLogs"]["Next"] == ("NotifySuccess" if success else "Succeeded")
    assert tasks["NotifyFailure"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    batch = tasks["SummarizeRenderLogs"]
    assert batch["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert batch["Parameters"]["Parameters"] == {"input.$": "$.source.input"}
    assert tasks["NotifyFailure"]["Parameters"]["TopicArn"] == topic_arn(estate, "alerts")
    assert tasks["NotifyFailure"]["Parameters"]["Message"]["error.$"] == "$.failure.Error"


def test_failures_go_to_alerts_and_successes_to_notifications_only_where_that_topic_exists(
    dev: Estate, prod: Estate
) -> None:
    """Dev keeps successNotifications' default (true): every machine ends by publishing its success to the
    notifications topic. Prod sets it false: no notifications topic, and the success path ends in a Succeed
    state without publishing. Either way every failure publishes to the alerts topic, and each machine's
    role may publish to exactly the topics its definition names."""
    for estate, with_news in ((dev, True), (prod, False)):
        alerts = topic_arn(estate, "alerts")
        notifications = topic_arn(estate, "notifications") if with_news else None
        topics = {t.name for t in estate.of_type("aws:sns/topic:Topic")}
        assert topics == ({"topics-alerts", "topics-notifications"} if with_news else {"topics-alerts"})
        found = machines(estate)
        assert set(found) == {f"{p}-flow-machine" for p in ("render-logs", "sensor", "gharchive", "covid")}
        for name, asl in found.items():
            states = asl["States"]
            assert states["NotifyFailure"]["Parameters"]["TopicArn"] == alerts, name
            success = "NotifySuccess" if with_news else "Succeeded"
            # The last step leads there (a Task by Next, a poll's Decide by a Choice).
            last = [
                s for s in states.values() if success in (s.get("Next"), *(c["Next"] for c in s.get("Choices", [])))
            ]
            if with_news:
                assert "Succeeded" not in states, name
                assert states["NotifySuccess"]["Parameters"]["TopicArn"] == notifications, name
                assert states["NotifySuccess"]["End"] is True
            else:
                assert "NotifySuccess" not in states, name
                assert states["Succeeded"] == {"Type": "Succeed"}, name
            assert last, name
            role = name.removesuffix("-machine")
            published = [
                st["Resource"]
                for st in policy(estate.named(f"{role}-role-policy").inputs["policy"])["Statement"]
                if "sns:Publish" in st["Action"]
            ]
            assert [sorted(resources) for resources in published] == [sorted(filter(None, [alerts, notifications]))]


# Each machine's TimeoutSeconds when its <prefix>RunTimeoutMinutes is 0 (the default): the longest its steps
# may take plus 30 minutes. render-logs: the job's 3 attempts of 60 minutes; sensor: the Glue job's run and
# its one retry of 60 minutes; gharchive: the ingest's 3 x 60 and the transform's 2 x 60; covid: the copy's
# 3 x 120, 4 Athena UNLOADs of at most 30 (Athena's default DML query timeout, Athena service quotas:
# https://docs.aws.amazon.com/athena/latest/ug/service-limits.html), the clean job's 2 x 60, and the crawl's
# and the load's polls of at most 60 each.
DERIVED_TIMEOUT_MINUTES = {
    "render-logs-flow-machine": 3 * 60 + 30,
    "sensor-flow-machine": 2 * 60 + 30,
    "gharchive-flow-machine": 3 * 60 + 2 * 60 + 30,
    "covid-flow-machine": 3 * 120 + 4 * 30 + 2 * 60 + 60 + 60 + 30,
}


def test_every_state_machine_is_bounded_by_timeout_seconds(dev: Estate, prod: Estate) -> None:
    """Without TimeoutSeconds an execution may run for the Standard maximum of a year ("State machine
    structure": TimeoutSeconds, https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html;
    service quotas: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)."""
    for estate in (dev, prod):
        timeouts = {name: asl["TimeoutSeconds"] for name, asl in machines(estate).items()}
        assert timeouts == {name: 60 * minutes for name, minutes in DERIVED_TIMEOUT_MINUTES.items()}


def test_run_timeouts_follow_their_settings_and_the_jobs_timeouts() -> None:
    estate = build_estate(
        "dev",
        "Pulumi.dev.yaml",
        {"dataplatform:renderLogsRunTimeoutMinutes": "45", "dataplatform:glueTimeoutMinutes": "30"},
    )
    timeouts = {name: asl["TimeoutSeconds"] for name, asl in machines(estate).items()}
    assert timeouts == {
        "render-logs-flow-machine": 45 * 60,  # as configured
        "sensor-flow-machine": (2 * 30 + 30) * 60,  # derived from the shorter Glue timeout
        "gharchive-flow-machine": (3 * 60 + 2 * 30 + 30) * 60,
        "covid-flow-machine": (3 * 120 + 4 * 30 + 2 * 30 + 60 + 60 + 30) * 60,
    }


def run_to_batch(definition: dict[str, Any], execution_input: dict[str, Any]) -> tuple[list[str], Any]:
    """Walk the render-log machine from StartAt to its Batch task as Step Functions would, for the states
    it starts with (Choice with IsPresent/IsString/StringMatches/And, Pass with Parameters and ResultPath,
    Fail), and return (states visited, the Batch job's `input` parameter, or the Fail state's Error)."""

    def path(document: Any, expression: str) -> Any:
        assert expression.startswith("$.")
        for part in expression[2:].split("."):
            if not isinstance(document, dict) or part not in document:
                return KeyError
            document = document[part]
        return document

    def rule(r: dict[str, Any], document: Any) -> bool:
        if "And" in r:
            return all(rule(inner, document) for inner in r["And"])
        value = path(document, r["Variable"])
        if "IsPresent" in r:
            return (value is not KeyError) == r["IsPresent"]
        if value is KeyError:  # what Step Functions raises as States.Runtime: the machine must never get here
            raise AssertionError(f"Choice on missing {r['Variable']} (States.Runtime)")
        if "IsString" in r:
            return isinstance(value, str) == r["IsString"]
        if "StringMatches" in r:
            return isinstance(value, str) and fnmatch.fnmatchcase(value, r["StringMatches"])
        raise AssertionError(f"rule not modelled: {r}")

    def evaluate(value: str, document: Any) -> Any:
        formatted = re.fullmatch(r"States\.Format\('([^']*)', (.*)\)", value)
        if not formatted:
            return path(document, value)
        arguments = [path(document, a.strip()) for a in formatted.group(2).split(",")]
        return formatted.group(1).format(*arguments)  # templates here have bare {} only

    states, name, visited, document = definition["States"], definition["StartAt"], [], execution_input
    while True:
        visited.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            name = next((c["Next"] for c in state["Choices"] if rule(c, document)), state["Default"])
        elif state["Type"] == "Pass":
            result = {k.removesuffix(".$"): evaluate(v, document) for k, v in state["Parameters"].items()}
            assert state["ResultPath"] == "$.source"
            document, name = {**document, "source": result}, state["Next"]
        elif state["Type"] == "Fail":
            return visited, state["Error"]
        else:
            assert state["Resource"] == "arn:aws:states:::batch:submitJob.sync"
            return visited, evaluate(state["Parameters"]["Parameters"]["input.$"], document)


@pytest.mark.parametrize(
    ("execution_input", "visited", "job_input"),
    [
        # The EventBridge S3 event (an upload)...
        (
            {"source": "aws.s3", "detail": {"bucket": {"name": "raw-b"}, "object": {"key": "render-logs/a.csv"}}},
            ["ChooseInput", "FromS3Event", "SummarizeRenderLogs"],
            "s3://raw-b/render-logs/a.csv",
        ),
        # ...and an operator's reprocessing request (`aws stepfunctions start-execution --input ...`).
        (
            {"input": "s3://raw-b/render-logs/2025/10/06/a.csv"},
            ["ChooseInput", "CheckInputUri", "FromInput", "SummarizeRenderLogs"],
            "s3://raw-b/render-logs/2025/10/06/a.csv",
        ),
        # Anything else fails as BadInput, never with the uncatchable States.Runtime of a missing path.
        ({"input": "raw-b/a.csv"}, ["ChooseInput", "CheckInputUri", "UnknownInput"], "BadInput"),
        ({"input": 3}, ["ChooseInput", "CheckInputUri", "UnknownInput"], "BadInput"),
        ({"detail": {"bucket": {"name": "raw-b"}}}, ["ChooseInput", "UnknownInput"], "BadInput"),
        ({}, ["ChooseInput", "UnknownInput"], "BadInput"),
    ],
)
def test_render_machine_takes_an_s3_event_or_an_input_uri(
    dev: Estate, execution_input: dict[str, Any], visited: list[str], job_input: str
) -> None:
    definition = policy(dev.one("aws:sfn/stateMachine:StateMachine", "render-logs").inputs["definition"])
    assert run_to_batch(definition, execution_input) == (visited, job_input)


@pytest.mark.parametrize("length", [113, 114])
def test_render_table_name_leaves_room_for_the_per_file_stage(length: int) -> None:
    """`<table>_by_file_stage` is the longest name a load uses; Redshift identifiers are at most 127 bytes
    (https://docs.aws.amazon.com/redshift/latest/dg/r_names.html)."""
    from pipelines import render_logs

    values = {s.key: s.default for s in render_logs.SETTINGS} | {"renderLogsTable": "t" * length}
    failed: list[tuple[str, str]] = []
    render_logs.validate(values, lambda ok, key, allowed: failed.extend([] if ok else [(key, allowed)]))
    assert len(f"{'t' * 113}_by_file_stage") == 127
    assert failed == ([] if length == 113 else [
        ("renderLogsTable", "must be at most 113 characters (<table>_by_file_stage must fit Redshift's 127)")
    ])  # fmt: skip


def s3_event(bucket: str, key: str) -> dict:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


def test_rule_starts_the_pipeline_for_csv_under_the_prefix_only(dev: Estate) -> None:
    rule = dev.one("aws:cloudwatch/eventRule:EventRule", "render-logs-trigger").inputs
    raw = dev.one("aws:s3/bucket:Bucket", "lake-raw").inputs["bucketPrefix"] + "20260101000000000000000001"
    pattern = EventPattern.load(rule["eventPattern"])  # moto's independent EventBridge matcher
    assert pattern.matches_event(s3_event(raw, "render-logs/2025/10/06/render_logs.csv"))
    assert pattern.matches_event(s3_event(raw, "render-logs/a.csv"))
    assert not pattern.matches_event(s3_event(raw, "render-logs/notes.txt"))
    assert not pattern.matches_event(s3_event(raw, "sales/input/render_logs.csv"))
    assert not pattern.matches_event(s3_event("someone-elses-bucket", "render-logs/a.csv"))
    assert not pattern.matches_event({**s3_event(raw, "render-logs/a.csv"), "detail-type": "Object Deleted"})
    target = dev.one("aws:cloudwatch/eventTarget:EventTarget", "render-logs-trigger").inputs
    assert target["arn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-dev-render-logs")
    assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 10}
    assert target["deadLetterConfig"]["arn"].startswith(f"arn:aws:sqs:{REGION}:{ACCOUNT}:dataplatform-dev")


SNAKE_KEY = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")


def untranslated_keys(value: Any, path: str = "") -> list[str]:
    """Snake-case keys that reached the engine: a misspelt nested field the provider would ignore."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if path.endswith(".tags") or path.endswith(".defaultTags"):
                continue
            if SNAKE_KEY.match(key):
                found.append(f"{path}.{key}")
            found += untranslated_keys(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += untranslated_keys(inner, f"{path}[{i}]")
    return found


def test_every_nested_input_key_reached_the_provider_translated(estate: Estate) -> None:
    problems = [(r.name, k) for r in estate.resources for k in untranslated_keys(r.inputs)]
    assert problems == []


# --- what the monitoring watches ------------------------------------------------------------------


def watched(stack: str, stack_file: str, overrides: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The program under mocks, and each pipeline's PipelineWatch as it reached Monitoring, resolved."""
    captured: list[monitoring.MonitoringArgs] = []
    resolved: dict[str, dict[str, Any]] = {}
    real = monitoring.Monitoring

    def spy(name: str, args: monitoring.MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> Any:
        captured.append(args)
        return real(name, args, opts)

    def program() -> None:
        with mock.patch.object(monitoring, "Monitoring", spy):
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        (args,) = captured
        pulumi.Output.from_input(
            {
                "stack": args.stack,
                "region": args.region,
                "warehouse": args.warehouse_workgroup,
                "alerts": args.alerts_topic_arn,
            }
        ).apply(lambda v: resolved.__setitem__("stack", v))
        for w in args.pipelines:
            pulumi.Output.from_input(
                {
                    "state_machine_arns": list(w.state_machine_arns),
                    "dead_letter_queues": [{"name": d.name, "holds": d.holds} for d in w.dead_letter_queues],
                    "glue_job_names": list(w.glue_job_names),
                    "batch_job_definition_names": list(w.batch_job_definition_names),
                }
            ).apply(
                lambda v, w=w: resolved.__setitem__(
                    w.pipeline,
                    {
                        **v,
                        "quarantine_jobs": w.quarantine_jobs,
                        "quarantine_ratio_threshold": w.quarantine_ratio_threshold,
                        "freshness": w.freshness,
                    },
                )
            )

    run_under_mocks(stack, {**stack_config(stack_file), **(overrides or {})}, program)
    return resolved


def expected_watches(stack: str, ratios: dict[str, float], freshness_hours: int) -> dict[str, dict[str, Any]]:
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-{stack}-{{}}-flow-{SUFFIX}"
    queue = f"dataplatform-{stack}-{{}}-dlq-{SUFFIX}"
    job = f"dataplatform-{stack}-{{}}"
    return {
        "stack": {
            "stack": stack,
            "region": REGION,
            "warehouse": f"dataplatform-{stack}-warehouse",
            "alerts": f"arn:aws:sns:{REGION}:{ACCOUNT}:dataplatform-{stack}-alerts-{SUFFIX}",
        },
        "render-logs": {
            "state_machine_arns": [machine.format("render-logs")],
            "dead_letter_queues": [
                {
                    "name": queue.format("render-logs-trigger"),
                    "holds": "S3 upload events under render-logs/ that did not start a render-logs run",
                }
            ],
            "glue_job_names": [],
            "batch_job_definition_names": [job.format("render-logs-job")],
            "quarantine_jobs": ("render_summary",),
            "quarantine_ratio_threshold": ratios["render-logs"],
            "freshness": None,
        },
        "sales": {
            # A Glue workflow, no state machine: its failures are announced by rule and alarmed as Glue runs.
            "state_machine_arns": [],
            "dead_letter_queues": [
                {
                    "name": queue.format("sales-trigger"),
                    "holds": "S3 upload events under sales/input/ that did not start the sales workflow",
                },
                {
                    "name": queue.format("sales-notify"),
                    "holds": "announcements of sales crawler and job runs that EventBridge could not publish to SNS",
                },
            ],
            "glue_job_names": [job.format("sales-convert"), job.format("sales-load")],
            "batch_job_definition_names": [],
            "quarantine_jobs": ("sales_csv_to_parquet",),
            "quarantine_ratio_threshold": ratios["sales"],
            "freshness": None,
        },
        "sensor-timeseries": {
            "state_machine_arns": [machine.format("sensor")],
            "dead_letter_queues": [
                {
                    "name": queue.format("sensor-schedule"),
                    "holds": "scheduled starts of the sensor-timeseries run that could not start it",
                }
            ],
            "glue_job_names": [job.format("sensor-job")],
            "batch_job_definition_names": [],
            "quarantine_jobs": ("sensor_timeseries",),
            "quarantine_ratio_threshold": ratios["sensor-timeseries"],
            "freshness": None,
        },
        "gharchive": {
            "state_machine_arns": [machine.format("gharchive")],
            "dead_letter_queues": [
                {
                    "name": queue.format("gharchive-schedule"),
                    "holds": "scheduled starts of the gharchive run that could not start it",
                }
            ],
            "glue_job_names": [job.format("gharchive-events")],
            "batch_job_definition_names": [job.format("gharchive-ingest")],
            "quarantine_jobs": ("gharchive_events",),
            "quarantine_ratio_threshold": ratios["gharchive"],
            # New hour files the transform loaded (job_runtime.metrics.FILES), summed per hour.
            "freshness": Freshness(job="gharchive_events", metric="Files", hours=freshness_hours),
        },
        "covid19": {
            "state_machine_arns": [machine.format("covid")],
            "dead_letter_queues": [
                {
                    "name": queue.format("covid-schedule"),
                    "holds": "scheduled starts of the covid19 run that could not start it",
                }
            ],
            "glue_job_names": [job.format("covid-clean")],
            "batch_job_definition_names": [job.format("covid-copy")],
            "quarantine_jobs": ("covid_clean",),
            "quarantine_ratio_threshold": ratios["covid19"],
            "freshness": None,
        },
    }


DEFAULT_RATIOS = dict.fromkeys(("render-logs", "sales", "sensor-timeseries", "gharchive", "covid19"), 0.05)


def test_each_pipeline_tells_the_monitoring_what_to_watch(dev: Estate) -> None:
    """Every state machine, dead-letter queue, Glue job and Batch job definition of the estate is watched,
    each by the pipeline it belongs to, with the Job names (job_runtime.metrics) of the jobs that quarantine."""
    watches = watched("dev", "Pulumi.dev.yaml")
    assert watches == expected_watches("dev", DEFAULT_RATIOS, 3)
    pipelines = [w for name, w in watches.items() if name != "stack"]
    queues = {q["name"] for w in pipelines for q in w["dead_letter_queues"]}
    assert queues == {r.inputs["namePrefix"] + SUFFIX for r in dev.of_type("aws:sqs/queue:Queue")}
    assert {m for w in pipelines for m in w["state_machine_arns"]} == {
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{m.inputs['namePrefix']}{SUFFIX}"
        for m in dev.of_type("aws:sfn/stateMachine:StateMachine")
    }
    glue_jobs = {j.inputs["name"] for j in dev.of_type("aws:glue/job:Job")}
    assert {j for w in pipelines for j in w["glue_job_names"]} == glue_jobs
    assert {d for w in pipelines for d in w["batch_job_definition_names"]} == {
        d.inputs["name"] for d in dev.of_type("aws:batch/jobDefinition:JobDefinition")
    }


def test_quarantine_thresholds_and_freshness_follow_their_settings() -> None:
    overrides = {
        "dataplatform:salesQuarantineAlarmRatio": "0.2",
        "dataplatform:covidQuarantineAlarmRatio": "0",
        "dataplatform:gharchiveFreshnessHours": "6",
    }
    ratios = {**DEFAULT_RATIOS, "sales": 0.2, "covid19": 0.0}
    assert watched("prod", "Pulumi.prod.yaml", overrides) == expected_watches("prod", ratios, 6)
