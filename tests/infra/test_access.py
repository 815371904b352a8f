"""The access model of the dev estate: every runtime call AWS will see, checked against the policies the
estate records, with a small IAM evaluator. Mocks accept anything; AWS evaluates these documents.

For each runtime principal (EventBridge rule roles, Scheduler execution roles, state machine roles, Glue
job and crawler roles, Batch task roles, the Redshift COPY role) the tables below list each call it makes
(action and resource ARNs, written out) and the resource policies the call passes through (KMS key, SQS
queue, SNS topic, S3 bucket policies). Calls that a service makes as itself (EventBridge delivering to a
queue or topic, vended-log delivery, CloudWatch Logs) are checked against the resource policy alone.

The evaluator implements the part of IAM policy evaluation the estate uses (AWS IAM User Guide, "Policy
evaluation logic", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise an Allow is needed; Action, Resource and ArnLike/StringLike match with
`*` and `?` wildcards (actions case-insensitively); StringEquals, StringLike, ArnEquals, ArnLike and Bool
conditions, every key present in the request context, any listed value matching. A KMS key policy that
allows the account root delegates to IAM policies (AWS KMS Developer Guide, "Default key policy",
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from components.iam import NO_SOURCE_ACCOUNT_IN_TRUST, SOURCE_ACCOUNT_IN_TRUST, assume_role_policy
from components.orchestration import ObjectCreatedRule, ObjectCreatedRuleArgs
from tests.infra.harness import ACCOUNT, REGION, Estate, run_under_mocks

SUFFIX = "20260101000000000000000001"  # what the mocks append to a name prefix
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
RAW = f"arn:aws:s3:::dataplatform-dev-raw-{SUFFIX}"
PROCESSED = f"arn:aws:s3:::dataplatform-dev-processed-{SUFFIX}"
CURATED = f"arn:aws:s3:::dataplatform-dev-curated-{SUFFIX}"
SCRIPTS = f"arn:aws:s3:::dataplatform-dev-scripts-{SUFFIX}"
RESULTS = f"arn:aws:s3:::dataplatform-dev-query-results-{SUFFIX}"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:dataplatform-dev-notifications-{SUFFIX}"
ALERTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:dataplatform-dev-alerts-{SUFFIX}"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
BATCH = f"arn:aws:batch:{REGION}:{ACCOUNT}"
WAREHOUSE = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/0b9f4c3e-dataplatform-dev-warehouse"
DATABASE = "dataplatform_dev_catalog"
LOG_GROUPS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"


def machine(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-dev-{name}-flow-{SUFFIX}"


def queue(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:dataplatform-dev-{name}-dlq-{SUFFIX}"


def rule(name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/dataplatform-dev-{name}-{SUFFIX}"


def schedule(name: str) -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/dataplatform-dev-{name}-schedule-{SUFFIX}"


# --- the documented rules each call depends on ---------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """An AWS rule a call depends on: a short tag (in each test id), what AWS says, and the page."""

    tag: str
    says: str
    url: str


SFN_CMK = Rule(
    "sfn-cmk-caller",
    "Step Functions, 'Data at rest encryption': with a customer managed key, StartExecution also needs "
    "kms:GenerateDataKey and kms:Decrypt on the key",
    "https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html",
)
SCHEDULER_CMK = Rule(
    "scheduler-cmk-payload",
    "EventBridge Scheduler, 'Encryption at rest': with a customer managed key the execution role decrypts the payload",
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/encryption-rest.html",
)
SCHEDULER_DLQ = Rule(
    "scheduler-dlq-as-role",
    "EventBridge Scheduler, 'Configuring a dead-letter queue': the execution role sends dead letters",
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html",
)
SQS_SSE = Rule(
    "sqs-sse-producer",
    "Amazon SQS, 'Key management': a producer to an SSE-KMS queue needs kms:GenerateDataKey and kms:Decrypt",
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html",
)
EVENTS_DLQ = Rule(
    "events-dlq-as-service",
    "EventBridge, 'Using dead-letter queues': EventBridge sends to the queue as the service (queue policy with "
    "the rule as aws:SourceArn) and needs the queue key",
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html",
)
EVENTS_SNS = Rule(
    "events-sns-as-service",
    "EventBridge, 'Permissions for Amazon SNS': EventBridge publishes as the service (topic policy); an encrypted "
    "topic's key must admit events.amazonaws.com",
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html",
)
SFN_LOGS_CMK = Rule(
    "sfn-logs-cmk",
    "Step Functions, 'Data at rest encryption', CloudWatch Logs with a customer managed key: the key policy "
    "lets delivery.logs.amazonaws.com decrypt",
    "https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html",
)
LOGS_CMK = Rule(
    "logs-cmk",
    "CloudWatch Logs, 'Encrypt log data using AWS KMS': the key admits logs.<region> with the log group as "
    "kms:EncryptionContext:aws:logs:arn",
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
)
ALARMS_SNS = Rule(
    "alarms-sns-as-service",
    "Amazon SNS, 'Managing Amazon SNS encryption keys' (event sources from AWS services): CloudWatch alarms publish "
    "as cloudwatch.amazonaws.com with aws:SourceAccount and aws:SourceArn arn:aws:cloudwatch:<region>:<account>:"
    "alarm:<name>; the topic policy admits them and the topic key allows kms:GenerateDataKey* and kms:Decrypt",
    "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
)
ATHENA_DEFAULT_DB = Rule(
    "athena-default-database",
    "Athena, 'Fine-grained access to databases and tables in the AWS Glue Data Catalog': GetDatabase and "
    "CreateDatabase on the catalog and the default database are mandatory",
    "https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html",
)
S3_404 = Rule(
    "s3-404-needs-listbucket",
    "Amazon S3, GetObject/HeadObject: a missing key is 404 only with s3:ListBucket on the bucket, else 403",
    "https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html",
)
EMRFS_DIRS = Rule(
    "hadoop-directory-probes",
    "Glue's s3:// file system (EMRFS; S3A from EMR 7.10 runtimes) HEADs each directory as a key without the "
    "trailing slash, and EMRFS also as <dir>_$folder$, which it writes on mkdirs; a HEAD the role may not make "
    "is 403, which fails the job (EMR, 'Why are there _$folder$ files' and 'Migration Guide: EMRFS to S3A')",
    "https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-s3a-migrate.html",
)
TASK = Rule(
    "sfn-integration",
    "The service integration's documented IAM permissions",
    "https://docs.aws.amazon.com/step-functions/latest/dg/service-integration-iam-templates.html",
)
MULTIPART = Rule(
    "s3-multipart-abort",
    "Amazon S3, 'Multipart upload API and permissions': aborting an upload (a writer that fails midway) needs "
    "s3:AbortMultipartUpload on the object",
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions",
)
GLUE_ANCESTORS = Rule(
    "glue-catalog-ancestors",
    "AWS Glue, 'Specifying AWS Glue resource ARNs': an operation on a Data Catalog resource needs permission on "
    "it and on every ancestor (creating a table's partitions: the table, its database and the catalog)",
    "https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html",
)
FARGATE_PULL = Rule(
    "fargate-execution-role",
    "Amazon ECS, 'Amazon ECS task execution IAM role': Fargate pulls a private ECR image (ecr:GetAuthorizationToken, "
    "then ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository) and sends awslogs logs as the "
    "task's execution role",
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html",
)
RUNS = Rule(
    "job-io",
    "What the job's code calls on its inputs and outputs",
    "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html",
)


@dataclass(frozen=True)
class Call:
    """One runtime call: `principal` is a role's logical name (the role calls) or a service principal."""

    principal: str
    action: str
    resources: tuple[str, ...]
    rule: Rule
    context: dict[str, str] = field(default_factory=dict)

    def id(self) -> str:
        """`[rule] principal action resource`, the resource without its ARN prefix and mock suffix."""
        short = re.sub(r"^arn:aws:[a-z0-9-]*:[a-z0-9-]*:[0-9]*:|dataplatform-dev-|-?" + SUFFIX, "", self.resources[0])
        return f"[{self.rule.tag}] {self.principal} {self.action} {short.removeprefix(':::')}"


def calls_to_start(principal: str, target: str) -> list[Call]:
    return [
        Call(principal, "states:StartExecution", (machine(target),), SFN_CMK),
        Call(principal, "kms:GenerateDataKey", (KEY,), SFN_CMK),
        Call(principal, "kms:Decrypt", (KEY,), SFN_CMK),
    ]


def calls_of_schedule(name: str) -> list[Call]:
    return [
        *calls_to_start(f"{name}-schedule-role", name),
        Call(f"{name}-schedule-role", "kms:Decrypt", (KEY,), SCHEDULER_CMK),
        Call(f"{name}-schedule-role", "sqs:SendMessage", (queue(f"{name}-schedule"),), SCHEDULER_DLQ),
        Call(f"{name}-schedule-role", "kms:GenerateDataKey", (KEY,), SQS_SSE),
    ]


def calls_of_state_machine(role: str) -> list[Call]:
    """What every pipeline state machine does: run encrypted (its own key), log to a group encrypted with
    that key (the role makes the data key, bound to the logs service), publish failures to the encrypted
    alerts topic and (dev: successNotifications true) successes to the encrypted notifications topic."""
    return [
        Call(role, "kms:GenerateDataKey", (KEY,), SFN_CMK),
        Call(role, "kms:Decrypt", (KEY,), SFN_CMK),
        Call(
            role,
            "kms:GenerateDataKey",
            (KEY,),
            SFN_LOGS_CMK,
            {"kms:EncryptionContext:SourceArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"},
        ),
        Call(role, "sns:Publish", (ALERTS_TOPIC, TOPIC), TASK),
        Call(role, "logs:CreateLogDelivery", ("*",), TASK),
    ]


def calls_of_batch_step(role: str, definition: str) -> list[Call]:
    return [
        Call(
            role,
            "batch:SubmitJob",
            (f"{BATCH}:job-queue/dataplatform-dev-batch", f"{BATCH}:job-definition/dataplatform-dev-{definition}:1"),
            TASK,
        ),
        Call(role, "batch:DescribeJobs", ("*",), TASK),
        Call(
            role,
            "events:PutRule",
            (f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForBatchJobsRule",),
            TASK,
        ),
    ]


def calls_of_glue_job(
    role: str, script: str, reads: list[tuple[str, str]], writes: list[tuple[str, str]]
) -> list[Call]:
    """A Glue Spark job: its script, its objects, and EMRFS's directory probes and markers for each
    (bucket ARN, directory without trailing slash) it reads or writes, parents included."""
    calls = [
        Call(role, "s3:GetObject", (f"{SCRIPTS}/glue/{script}/0123456789abcdef.py",), RUNS),
        Call(role, "kms:Decrypt", (KEY,), RUNS),
        Call(role, "kms:GenerateDataKey", (KEY,), RUNS),
    ]
    for bucket, directory in reads + writes:
        calls.append(Call(role, "s3:ListBucket", (bucket,), RUNS))
        calls.append(Call(role, "s3:GetObject", (f"{bucket}/{directory}/part-00000.data",), RUNS))
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            probed = "/".join(parts[:depth])
            calls.append(Call(role, "s3:GetObject", (f"{bucket}/{probed}", f"{bucket}/{probed}_$folder$"), EMRFS_DIRS))
    for bucket, directory in writes:
        calls.append(Call(role, "s3:PutObject", (f"{bucket}/{directory}/part-00000.data",), RUNS))
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            calls.append(Call(role, "s3:PutObject", (f"{bucket}/{'/'.join(parts[:depth])}_$folder$",), EMRFS_DIRS))
    # Prefixes of a bucket share parents: each call once.
    return list({(c.action, c.resources): c for c in calls}.values())


def calls_of_crawler(role: str, bucket: str, prefix: str, table: str) -> list[Call]:
    return [
        Call(role, "s3:ListBucket", (bucket,), RUNS),
        Call(role, "s3:GetObject", (f"{bucket}/{prefix}part-00000.data",), RUNS),
        Call(role, "kms:Decrypt", (KEY,), RUNS),
        Call(role, "glue:GetDatabase", (f"{GLUE}:catalog", f"{GLUE}:database/{DATABASE}"), RUNS),
        Call(
            role,
            "glue:CreateTable",
            (f"{GLUE}:catalog", f"{GLUE}:database/{DATABASE}", f"{GLUE}:table/{DATABASE}/{table}"),
            RUNS,
        ),
        Call(role, "glue:BatchCreatePartition", (f"{GLUE}:table/{DATABASE}/{table}",), RUNS),
    ]


ROLE_CALLS: list[Call] = [
    # EventBridge rule roles: start the render-logs machine (encrypted) / notify the sales workflow.
    *calls_to_start("render-logs-trigger-role", "render-logs"),
    Call("sales-trigger-role", "glue:NotifyEvent", (f"{GLUE}:workflow/dataplatform-dev-sales-workflow",), RUNS),
    # Scheduler execution roles.
    *calls_of_schedule("sensor"),
    *calls_of_schedule("gharchive"),
    *calls_of_schedule("covid"),
    # State machine roles.
    *calls_of_state_machine("render-logs-flow-role"),
    *calls_of_batch_step("render-logs-flow-role", "render-logs-job"),
    *calls_of_state_machine("sensor-flow-role"),
    Call("sensor-flow-role", "glue:StartJobRun", (f"{GLUE}:job/dataplatform-dev-sensor-job",), TASK),
    *calls_of_state_machine("gharchive-flow-role"),
    *calls_of_batch_step("gharchive-flow-role", "gharchive-ingest"),
    Call("gharchive-flow-role", "glue:StartJobRun", (f"{GLUE}:job/dataplatform-dev-gharchive-events",), TASK),
    *calls_of_state_machine("covid-flow-role"),
    *calls_of_batch_step("covid-flow-role", "covid-copy"),
    Call("covid-flow-role", "glue:StartJobRun", (f"{GLUE}:job/dataplatform-dev-covid-clean",), TASK),
    Call("covid-flow-role", "glue:StartCrawler", (f"{GLUE}:crawler/dataplatform-dev-covid-landing-crawler",), TASK),
    # Athena runs the staging UNLOADs with the caller's rights.
    Call(
        "covid-flow-role",
        "athena:StartQueryExecution",
        (f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/dataplatform-dev-catalog",),
        TASK,
    ),
    Call("covid-flow-role", "glue:GetDatabase", (f"{GLUE}:catalog", f"{GLUE}:database/default"), ATHENA_DEFAULT_DB),
    Call("covid-flow-role", "glue:CreateDatabase", (f"{GLUE}:catalog", f"{GLUE}:database/default"), ATHENA_DEFAULT_DB),
    Call("covid-flow-role", "glue:GetDatabase", (f"{GLUE}:database/{DATABASE}",), ATHENA_DEFAULT_DB),
    Call(
        "covid-flow-role",
        "glue:GetTable",
        (f"{GLUE}:catalog", f"{GLUE}:database/{DATABASE}", f"{GLUE}:table/{DATABASE}/covid_landing_cases"),
        ATHENA_DEFAULT_DB,
    ),
    Call("covid-flow-role", "s3:GetObject", (f"{RAW}/covid/landing/cases/part.csv",), RUNS),
    Call("covid-flow-role", "s3:PutObject", (f"{PROCESSED}/scratch/covid/staging/run-1/cases/part.parquet",), RUNS),
    Call("covid-flow-role", "s3:PutObject", (f"{RESULTS}/athena/query-1.csv",), RUNS),
    Call("covid-flow-role", "s3:ListBucket", (RAW, PROCESSED, RESULTS), RUNS),
    Call("covid-flow-role", "redshift-data:BatchExecuteStatement", (WAREHOUSE,), TASK),
    Call("covid-flow-role", "redshift-data:DescribeStatement", ("*",), TASK),
    # Glue jobs (EMRFS): read and write their prefixes, probe and mark their directories.
    *calls_of_glue_job(
        "sales-convert-role",
        "sales_csv_to_parquet",
        reads=[(RAW, "sales/input")],
        writes=[(PROCESSED, "sales/parquet"), (PROCESSED, "sales/state"), (PROCESSED, "quarantine/sales")],
    ),
    # ...and registers the partitions it wrote in the stack's catalog table (drops those a file lost).
    *[
        Call(
            "sales-convert-role",
            action,
            (f"{GLUE}:catalog", f"{GLUE}:database/{DATABASE}", f"{GLUE}:table/{DATABASE}/sales_orders"),
            GLUE_ANCESTORS,
        )
        for action in ("glue:GetTable", "glue:BatchCreatePartition", "glue:BatchDeletePartition")
    ],
    *calls_of_glue_job(
        "sales-load-role",
        "sales_load_warehouse",
        reads=[(PROCESSED, "sales/parquet")],
        writes=[(PROCESSED, "sales/state"), (PROCESSED, "sales/stage")],
    ),
    *calls_of_glue_job(
        "sensor-job-role",
        "sensor_timeseries",
        # sensor/raw covers the upload CLI's month index (sensor/raw/_index/...); sensor/state is the job's.
        reads=[(RAW, "sensor/raw")],
        writes=[(PROCESSED, "sensor/timeseries"), (PROCESSED, "quarantine/sensor"), (PROCESSED, "sensor/state")],
    ),
    Call("sensor-job-role", "s3:GetObject", (f"{RAW}/sensor/raw/_index/month=2026-01/x-0123.csv.json",), RUNS),
    # The month record the empty-month rule compares with (glue_scripts/sensor_timeseries.py): read, then replaced.
    Call("sensor-job-role", "s3:GetObject", (f"{PROCESSED}/sensor/state/months/month=2025-12.json",), RUNS),
    Call("sensor-job-role", "s3:PutObject", (f"{PROCESSED}/sensor/state/months/month=2026-01.json",), RUNS),
    *calls_of_glue_job(
        "gharchive-events-role",
        "gharchive_events",
        reads=[(RAW, "gharchive/raw")],
        writes=[(PROCESSED, "gharchive/events"), (PROCESSED, "quarantine/gharchive"), (PROCESSED, "gharchive/state")],
    ),
    *calls_of_glue_job(
        "covid-clean-role",
        "covid_clean",
        reads=[(PROCESSED, "scratch/covid/staging")],
        writes=[(CURATED, "covid/curated"), (PROCESSED, "quarantine/covid")],
    ),
    # Crawlers.
    *calls_of_crawler("sales-input-crawler-role", RAW, "sales/input/", "sales_input"),
    *calls_of_crawler("covid-landing-crawler-role", RAW, "covid/landing/", "covid_landing_cases"),
    # The Batch tasks' execution role: the image pull and the awslogs driver (before and around the job).
    Call("batch-execution-role", "ecr:GetAuthorizationToken", ("*",), FARGATE_PULL),
    *[
        Call(
            "batch-execution-role",
            action,
            (f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/dataplatform-dev-batch",),
            FARGATE_PULL,
        )
        for action in ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
    ],
    *[
        Call(
            "batch-execution-role",
            action,
            (f"{LOG_GROUPS}/aws/batch/dataplatform-dev-batch:log-stream:render-logs/default/0f1e",),
            FARGATE_PULL,
        )
        for action in ("logs:CreateLogStream", "logs:PutLogEvents")
    ],
    # Batch task roles.
    Call("render-logs-job-role", "s3:GetObject", (f"{RAW}/render-logs/2026/frames.csv",), RUNS),
    Call("render-logs-job-role", "s3:ListBucket", (RAW,), S3_404),
    Call("render-logs-job-role", "s3:PutObject", (f"{PROCESSED}/quarantine/render-logs/frames.csv",), RUNS),
    Call(
        "render-logs-job-role",
        "s3:AbortMultipartUpload",
        (f"{PROCESSED}/quarantine/render-logs/frames.csv",),
        MULTIPART,
    ),
    # The Parquet stage of the load: uploaded (multipart above 8 MB), COPYed by Redshift, deleted.
    Call("render-logs-job-role", "s3:PutObject", (f"{PROCESSED}/stage/render-logs/0f1e/part-0.parquet",), RUNS),
    Call(
        "render-logs-job-role",
        "s3:AbortMultipartUpload",
        (f"{PROCESSED}/stage/render-logs/0f1e/part-0.parquet",),
        MULTIPART,
    ),
    Call("render-logs-job-role", "s3:DeleteObject", (f"{PROCESSED}/stage/render-logs/0f1e/part-0.parquet",), RUNS),
    Call("render-logs-job-role", "kms:Decrypt", (KEY,), RUNS),
    Call("render-logs-job-role", "kms:GenerateDataKey", (KEY,), RUNS),
    Call("render-logs-job-role", "redshift-data:ExecuteStatement", (WAREHOUSE,), RUNS),
    Call("render-logs-job-role", "redshift-serverless:GetCredentials", (WAREHOUSE,), RUNS),
    Call("gharchive-ingest-role", "s3:PutObject", (f"{RAW}/gharchive/raw/date=2026-01-01/2026-01-01-0.json.gz",), RUNS),
    Call("gharchive-ingest-role", "kms:GenerateDataKey", (KEY,), RUNS),
    Call(
        "gharchive-ingest-role",
        "dynamodb:UpdateItem",
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dataplatform-dev-gharchive-jobs",),
        RUNS,
    ),
    Call(
        "gharchive-ingest-role",
        "dynamodb:PutItem",
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dataplatform-dev-gharchive-job-run-details",),
        RUNS,
    ),
    # The seed's run log for the transform too: one job_run_details row per run (RUNNING, then its outcome).
    Call(
        "gharchive-events-role",
        "dynamodb:PutItem",
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/dataplatform-dev-gharchive-job-run-details",),
        RUNS,
    ),
    Call("covid-copy-role", "s3:ListBucket", ("arn:aws:s3:::covid19-lake",), RUNS),
    Call("covid-copy-role", "s3:GetObject", ("arn:aws:s3:::covid19-lake/enigma-jhu/csv/Enigma-JHU.csv.gz",), RUNS),
    Call("covid-copy-role", "s3:PutObject", (f"{RAW}/covid/landing/cases/Enigma-JHU.csv.gz",), RUNS),
    Call("covid-copy-role", "kms:GenerateDataKey", (KEY,), RUNS),
    # Redshift's COPY role reads the staged and curated Parquet.
    Call("warehouse-copy-role", "s3:ListBucket", (PROCESSED, CURATED), RUNS),
    Call("warehouse-copy-role", "s3:GetObject", (f"{PROCESSED}/sales/stage/part-00000.parquet",), RUNS),
    Call("warehouse-copy-role", "s3:GetObject", (f"{PROCESSED}/stage/render-logs/0f1e/part-0.parquet",), RUNS),
    Call("warehouse-copy-role", "s3:GetObject", (f"{CURATED}/covid/curated/fact_cases/part-00000.parquet",), RUNS),
    Call("warehouse-copy-role", "kms:Decrypt", (KEY,), RUNS),
]

SOURCE = {"aws:SourceAccount": ACCOUNT}
SERVICE_CALLS: list[Call] = [
    # EventBridge rules deliver their dead letters as the service, to SSE-KMS queues.
    *[
        c
        for name in ("render-logs-trigger", "sales-trigger")
        for c in (
            Call(
                "events.amazonaws.com",
                "sqs:SendMessage",
                (queue(name),),
                EVENTS_DLQ,
                {**SOURCE, "aws:SourceArn": rule(name)},
            ),
            Call(
                "events.amazonaws.com",
                "kms:GenerateDataKey",
                (KEY,),
                EVENTS_DLQ,
                {**SOURCE, "aws:SourceArn": rule(name)},
            ),
            Call("events.amazonaws.com", "kms:Decrypt", (KEY,), EVENTS_DLQ, {**SOURCE, "aws:SourceArn": rule(name)}),
        )
    ],
    # The sales announcement rules (crawl, convert, load) publish failed runs to the encrypted alerts topic
    # and successful ones to the encrypted notifications topic, and dead-letter to one queue.
    *[
        c
        for i in range(1, 4)
        for outcome, topic in (("fail", ALERTS_TOPIC), ("ok", TOPIC))
        for c in (
            Call(
                "events.amazonaws.com",
                "sns:Publish",
                (topic,),
                EVENTS_SNS,
                {**SOURCE, "aws:SourceArn": rule(f"sales-notify-{i}-{outcome}")},
            ),
            Call(
                "events.amazonaws.com",
                "kms:GenerateDataKey",
                (KEY,),
                EVENTS_SNS,
                {**SOURCE, "aws:SourceArn": rule(f"sales-notify-{i}-{outcome}")},
            ),
            Call(
                "events.amazonaws.com",
                "sqs:SendMessage",
                (queue("sales-notify"),),
                EVENTS_DLQ,
                {**SOURCE, "aws:SourceArn": rule(f"sales-notify-{i}-{outcome}")},
            ),
        )
    ],
    # State machines encrypted with the key log to groups encrypted with it.
    Call("delivery.logs.amazonaws.com", "kms:Decrypt", (KEY,), SFN_LOGS_CMK),
    *[
        Call(
            f"logs.{REGION}.amazonaws.com",
            "kms:GenerateDataKey",
            (KEY,),
            LOGS_CMK,
            {"kms:EncryptionContext:aws:logs:arn": f"{LOG_GROUPS}/aws/vendedlogs/states/dataplatform-dev-{name}-flow"},
        )
        for name in ("render-logs", "sensor", "gharchive", "covid")
    ],
    # Every CloudWatch alarm of the stack publishes ALARM and OK to the encrypted alerts topic.
    *[
        Call(
            "cloudwatch.amazonaws.com",
            action,
            (resource,),
            ALARMS_SNS,
            {
                **SOURCE,
                "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:dataplatform-dev-sales-dlq-1-not-empty",
            },
        )
        for action, resource in (("sns:Publish", ALERTS_TOPIC), ("kms:GenerateDataKey", KEY), ("kms:Decrypt", KEY))
    ],
]


# --- the evaluator -------------------------------------------------------------------------------------


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


OPERATORS = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": glob,
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": glob,
    "Bool": lambda want, got: str(want).lower() == str(got).lower(),
}


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        test = OPERATORS[operator]  # a KeyError names an operator this evaluator does not know yet
        for key, wanted in keys.items():
            if key not in context or not any(test(str(w), context[key]) for w in as_list(wanted)):
                return False
    return True


def principal_matches(statement: dict[str, Any], principal: dict[str, str] | None) -> bool:
    if principal is None:  # an identity policy: no Principal element
        return True
    named = statement.get("Principal")
    if named == "*":
        return True
    ((kind, value),) = principal.items()
    listed = as_list(named.get(kind, [])) if isinstance(named, dict) else []
    # The account root in a resource policy hands the decision to the account's IAM policies.
    return value in listed or (kind == "AWS" and ROOT in listed)


def applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, str], principal: dict | None
) -> bool:
    return (
        principal_matches(statement, principal)
        and any(glob(a, action, ignore_case=True) for a in as_list(statement["Action"]))
        # A trust policy has no Resource element: it is the role's own.
        and any(glob(r, resource) for r in as_list(statement.get("Resource", resource)))
        and condition_holds(statement.get("Condition", {}), context)
    )


def decision(
    statements: list[dict], action: str, resource: str, context: dict[str, str], principal: dict | None = None
) -> str:
    """ "Deny" (an explicit Deny applies), "Allow", or "ImplicitDeny"."""
    matching = [s for s in statements if applies(s, action, resource, context, principal)]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    return "Allow" if matching else "ImplicitDeny"


# --- the estate's recorded policies ------------------------------------------------------------------


def statements(text: str) -> list[dict[str, Any]]:
    return as_list(json.loads(text)["Statement"])


@dataclass
class Policies:
    roles: dict[str, list[dict]]  # role logical name -> its inline policy's statements
    trust: dict[str, list[dict]]  # role logical name -> trust policy statements
    role_arns: dict[str, str]
    key: list[dict]
    queues: dict[str, list[dict]]  # queue ARN -> queue policy statements
    topics: dict[str, list[dict]]  # topic ARN -> topic policy statements
    buckets: list[dict]  # every bucket policy statement (each names its own bucket)

    def resource_policy(self, resource: str) -> list[dict] | None:
        if resource.startswith("arn:aws:kms:"):
            return self.key
        if resource.startswith("arn:aws:sqs:"):
            return self.queues.get(resource, [])
        if resource.startswith("arn:aws:sns:"):
            return self.topics.get(resource, [])
        if resource.startswith("arn:aws:s3:::"):
            return self.buckets
        return None


@pytest.fixture(scope="module")
def policies(dev: Estate) -> Policies:
    roles = {r.name: r for r in dev.of_type("aws:iam/role:Role")}
    inline = {
        p.name.removesuffix("-policy"): statements(p.inputs["policy"])
        for p in dev.of_type("aws:iam/rolePolicy:RolePolicy")
    }
    queue_arns = {
        q.inputs.get("url", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{q.inputs['namePrefix']}{SUFFIX}"): (
            f"arn:aws:sqs:{REGION}:{ACCOUNT}:{q.inputs['namePrefix']}{SUFFIX}"
        )
        for q in dev.of_type("aws:sqs/queue:Queue")
    }
    return Policies(
        roles={name: inline[name] for name in roles},
        trust={name: statements(r.inputs["assumeRolePolicy"]) for name, r in roles.items()},
        role_arns={name: f"arn:aws:iam::{ACCOUNT}:role/{r.inputs['namePrefix']}{SUFFIX}" for name, r in roles.items()},
        key=statements(dev.one("aws:kms/key:Key").inputs["policy"]),
        queues={
            queue_arns[p.inputs["queueUrl"]]: statements(p.inputs["policy"])
            for p in dev.of_type("aws:sqs/queuePolicy:QueuePolicy")
        },
        topics={
            p.inputs["arn"]: statements(p.inputs["policy"]) for p in dev.of_type("aws:sns/topicPolicy:TopicPolicy")
        },
        buckets=[s for p in dev.of_type("aws:s3/bucketPolicy:BucketPolicy") for s in statements(p.inputs["policy"])],
    )


def test_queue_urls_of_the_mocks_name_the_queues(dev: Estate) -> None:
    """The fixture maps queue policies to queues by URL: the mocks give every queue one."""
    for q in dev.of_type("aws:sqs/queue:Queue"):
        assert "namePrefix" in q.inputs, q.name
    for p in dev.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        assert p.inputs["queueUrl"].startswith(f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/"), p.name


# --- the evaluator itself --------------------------------------------------------------------------------


def test_evaluator_denies_wins_wildcards_and_conditions() -> None:
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/in/*"}
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/in/secret*"}
    tls = {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert decision([allow], "S3:GetObject", "arn:aws:s3:::b/in/x", {}) == "Allow"
    assert (
        decision([allow], "s3:GetObject", "arn:aws:s3:::b/in", {}) == "ImplicitDeny"
    )  # prefix/* is not the prefix key
    assert decision([allow, deny], "s3:GetObject", "arn:aws:s3:::b/in/secret.csv", {}) == "Deny"
    assert decision([allow, tls], "s3:GetObject", "arn:aws:s3:::b/in/x", {"aws:SecureTransport": "false"}) == "Deny"
    assert decision([allow, tls], "s3:GetObject", "arn:aws:s3:::b/in/x", {"aws:SecureTransport": "true"}) == "Allow"
    source = {
        **allow,
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": "arn:aws:events:*"}},
    }
    assert decision([source], "s3:GetObject", "arn:aws:s3:::b/in/x", {}) == "ImplicitDeny"  # a key never sent fails
    full = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": "arn:aws:events:r:a:rule/x"}
    assert decision([source], "s3:GetObject", "arn:aws:s3:::b/in/x", full) == "Allow"
    service = {**allow, "Principal": {"Service": ["events.amazonaws.com"]}}
    assert (
        decision([service], "s3:GetObject", "arn:aws:s3:::b/in/x", {}, {"Service": "events.amazonaws.com"}) == "Allow"
    )
    assert (
        decision([service], "s3:GetObject", "arn:aws:s3:::b/in/x", {}, {"Service": "scheduler.amazonaws.com"})
        == "ImplicitDeny"
    )


# --- role calls --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ROLE_CALLS, ids=Call.id)
def test_each_runtime_role_may_make_each_call_it_makes(policies: Policies, call: Call) -> None:
    """The caller's role policy allows the call on every resource, no resource policy denies it, and a KMS
    call passes the key policy (which delegates to IAM). The rule and its AWS page are the call's `rule`."""
    context = {"aws:SecureTransport": "true", "aws:PrincipalAccount": ACCOUNT, **call.context}
    role = {"AWS": policies.role_arns[call.principal]}
    for resource in call.resources:
        assert decision(policies.roles[call.principal], call.action, resource, context) == "Allow", (call, call.rule)
        resource_policy = policies.resource_policy(resource)
        if resource_policy is not None:
            verdict = decision(resource_policy, call.action, resource, context, role)
            assert verdict != "Deny", (call, resource)
            if resource.startswith("arn:aws:kms:"):
                assert verdict == "Allow", (call, "the key policy does not delegate to IAM")


@pytest.mark.parametrize("call", SERVICE_CALLS, ids=Call.id)
def test_each_service_delivery_is_admitted_by_the_resource_policy(policies: Policies, call: Call) -> None:
    """A service acting as itself (not as a role) is admitted by the resource's own policy alone, with only
    the request context AWS documents it sends. The rule and its AWS page are the call's `rule`."""
    context = {"aws:SecureTransport": "true", **call.context}
    for resource in call.resources:
        resource_policy = policies.resource_policy(resource)
        assert resource_policy is not None
        assert decision(resource_policy, call.action, resource, context, {"Service": call.principal}) == "Allow", (
            call,
            call.rule,
        )


def test_a_rule_that_starts_a_state_machine_must_name_its_key() -> None:
    """Every StateMachine here is encrypted with a customer key, and StartExecution needs that key
    (Step Functions, "Data at rest encryption",
    https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html): a rule that starts one
    without naming the key is refused at construction, not at the first upload."""
    args = ObjectCreatedRuleArgs(
        account_id=ACCOUNT,
        kms_key_arn=KEY,
        bucket_name="raw",
        key_prefix="in/",
        target_arn=machine("render-logs"),
    )
    with pytest.raises(ValueError, match="ObjectCreatedRule start: give target_kms_key_arn"):
        run_under_mocks("dev", {"aws:region": REGION}, lambda: ObjectCreatedRule("start", args))


def test_the_model_covers_every_runtime_role(policies: Policies) -> None:
    """Every role of the estate that AWS assumes at run time has calls in the model (the Batch execution
    role and the flow-log role act for ECS and VPC; they are checked by their own tests)."""
    modelled = {c.principal for c in ROLE_CALLS}
    assert set(policies.roles) - modelled == {"net-flow-logs-role"}


def test_scheduler_uses_no_resource_policy(dev: Estate, policies: Policies) -> None:
    """EventBridge Scheduler delivers dead letters as the execution role, never as scheduler.amazonaws.com
    (EventBridge Scheduler user guide, "Configuring a dead-letter queue",
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html): no queue or key
    policy names it, and each schedule's queue has no queue policy at all."""
    everything = [*policies.key, *[s for q in policies.queues.values() for s in q]]
    assert not any("scheduler.amazonaws.com" in json.dumps(s.get("Principal")) for s in everything)
    for name in ("sensor", "gharchive", "covid"):
        assert queue(f"{name}-schedule") not in policies.queues
        target = dev.one("aws:scheduler/schedule:Schedule", f"{name}-schedule").inputs["target"]
        assert target["deadLetterConfig"] == {"arn": queue(f"{name}-schedule")}
        assert target["roleArn"] == policies.role_arns[f"{name}-schedule-role"]


# --- trust -----------------------------------------------------------------------------------------------

# What each service principal sends when it assumes a role, as AWS documents it (components.iam tables).
SENT_ON_ASSUME_ROLE = {
    "states.amazonaws.com": {**SOURCE, "aws:SourceArn": machine("covid")},
    "scheduler.amazonaws.com": {**SOURCE, "aws:SourceArn": schedule("covid")},
    "events.amazonaws.com": {**SOURCE, "aws:SourceArn": rule("render-logs-trigger")},
    "ecs-tasks.amazonaws.com": {
        **SOURCE,
        "aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/dataplatform-dev/0f1e",
    },
    "vpc-flow-logs.amazonaws.com": {**SOURCE, "aws:SourceArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/fl-0123"},
    # Glue and Redshift document trust policies without these keys: nothing is assumed sent.
    "glue.amazonaws.com": {},
    "redshift.amazonaws.com": {},
}


def test_every_role_trusts_its_service_with_what_the_service_sends(policies: Policies) -> None:
    """A trust condition on a key the service is not documented to send locks it out of its own role:
    aws:SourceAccount only for principals AWS documents it for (states, scheduler, events, ecs-tasks,
    vpc-flow-logs), none for glue.amazonaws.com (AWS Glue, "Create an IAM role for AWS Glue") and
    redshift.amazonaws.com (Amazon Redshift, "Authorizing Amazon Redshift to access other AWS services",
    https://docs.aws.amazon.com/redshift/latest/mgmt/authorizing-redshift-service.html)."""
    for name, trust in policies.trust.items():
        (service,) = {s["Principal"]["Service"] for s in trust}
        assert (
            decision(
                trust, "sts:AssumeRole", policies.role_arns[name], SENT_ON_ASSUME_ROLE[service], {"Service": service}
            )
            == "Allow"
        ), name
        # ...and another account's use of the same service is refused where AWS sends the account.
        if SENT_ON_ASSUME_ROLE[service]:
            other = {**SENT_ON_ASSUME_ROLE[service], "aws:SourceAccount": "210987654321"}
            assert (
                decision(trust, "sts:AssumeRole", policies.role_arns[name], other, {"Service": service}) != "Allow"
            ), name


def test_trust_table_cites_a_page_for_every_service_and_refuses_unknown_ones() -> None:
    assert set(SOURCE_ACCOUNT_IN_TRUST) | set(NO_SOURCE_ACCOUNT_IN_TRUST) == set(SENT_ON_ASSUME_ROLE)
    assert not set(SOURCE_ACCOUNT_IN_TRUST) & set(NO_SOURCE_ACCOUNT_IN_TRUST)
    for url in [*SOURCE_ACCOUNT_IN_TRUST.values(), *NO_SOURCE_ACCOUNT_IN_TRUST.values()]:
        assert url.startswith("https://docs.aws.amazon.com/"), url
    with pytest.raises(ValueError, match=r"lambda\.amazonaws\.com: add it to"):
        assume_role_policy("lambda.amazonaws.com", ACCOUNT)


# --- state machines: Choice paths ----------------------------------------------------------------------------


def definitions(dev: Estate) -> dict[str, dict[str, Any]]:
    return {m.name: json.loads(m.inputs["definition"]) for m in dev.of_type("aws:sfn/stateMachine:StateMachine")}


def compared(rule: dict[str, Any]) -> set[str]:
    """The paths a Choice rule compares (reads a value of); an IsPresent test reads none."""
    nested = [*rule.get("And", []), *rule.get("Or", []), *([rule["Not"]] if "Not" in rule else [])]
    own = {rule["Variable"]} if "Variable" in rule and "IsPresent" not in rule else set()
    return own.union(*(compared(r) for r in nested))


def _written(result_path: Any, fields: list[str]) -> tuple[str | None, set[str]]:
    """What a state writes on its way out: (the path it replaces, or None for the whole state when the
    result replaces it, or "" for nothing), and the paths then known present."""
    if result_path is None:  # JSON null: the result is discarded, the input passes through
        return "", set()
    if result_path == "$":
        return None, {f"$.{f}" for f in fields}
    return result_path, {result_path, *(f"{result_path}.{f}" for f in fields)}


def _after(known: set[str], replaced: str | None, gained: set[str]) -> set[str]:
    if replaced is None:
        return set(gained)
    if replaced == "":
        return set(known)
    return {p for p in known if p != replaced and not p.startswith(replaced + ".")} | gained


def _edges(state: dict[str, Any], known: set[str]) -> list[tuple[str, set[str]]]:
    """Where a state may go next, with the paths known present on arrival."""
    edges: list[tuple[str, set[str]]] = []
    for catch in state.get("Catch", []):
        replaced, gained = _written(catch.get("ResultPath", "$"), ["Error", "Cause"])
        edges.append((catch["Next"], _after(known, replaced, gained)))
    if state["Type"] == "Choice":
        for choice in state["Choices"]:
            rules = choice.get("And", [choice])
            edges.append((choice["Next"], known | {r["Variable"] for r in rules if r.get("IsPresent") is True}))
        if "Default" in state:
            edges.append((state["Default"], set(known)))
    elif "Next" in state:
        out = known
        if state["Type"] in ("Pass", "Task"):
            given = state.get("Parameters", state.get("Result"))
            written = state["Type"] == "Pass" and isinstance(given, dict)
            fields = [k.removesuffix(".$") for k in given] if written else []
            out = _after(known, *_written(state.get("ResultPath", "$"), fields))
        if state.get("OutputPath", "$") != "$":
            out = set()
        edges.append((state["Next"], out))
    return edges


def present_on_arrival(states: dict[str, Any], start: str) -> dict[str, set[str]]:
    """Per reachable state, the paths present on every way into it: a must-analysis to a fixed point over
    the paths IsPresent Choices established and Pass and Task states wrote (a ResultPath replaces what was
    under it; an OutputPath or a result at $ replaces everything). The execution input is unknown."""
    arrival: dict[str, set[str]] = {start: set()}
    changed = True
    while changed:
        changed = False
        for name in list(arrival):
            for target, known in _edges(states[name], arrival[name]):
                merged = known if target not in arrival else arrival[target] & known
                if target not in arrival or merged != arrival[target]:
                    arrival[target] = merged if target != start else set()
                    changed = True
    return arrival


def math_reads(state: dict[str, Any]) -> set[str]:
    """The paths a Pass state's States.MathAdd reads (a missing one is States.Runtime too)."""
    values = state.get("Parameters", {}).values() if state["Type"] == "Pass" else []
    return {m for v in values if isinstance(v, str) for m in re.findall(r"States\.MathAdd\((\$[\w.]+)", v)}


def test_every_choice_reads_only_paths_checked_present_on_every_way_in(dev: Estate) -> None:
    """A Choice rule on a path that is missing raises States.Runtime, which no Retry or Catch handles, and
    the execution fails without a notification (Step Functions, "Choice workflow state" and "Error
    handling": States.Runtime, https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
    A task's result (a crawler's LastCrawl before its first crawl ends) may lack any field: every path a
    Choice reads, other than IsPresent tests themselves, and every path a poll's counter adds to, must be
    present on every way into it: checked by an IsPresent rule, or written by a state before it."""
    machines = definitions(dev)
    assert set(machines) == {
        "render-logs-flow-machine",
        "sensor-flow-machine",
        "gharchive-flow-machine",
        "covid-flow-machine",
    }
    checked = 0
    for name, asl in machines.items():
        states = asl["States"]
        arrival = present_on_arrival(states, asl["StartAt"])
        for state_name, state in states.items():
            read = math_reads(state)
            if state["Type"] == "Choice":
                read |= {path for choice in state["Choices"] for path in compared(choice)}
            if not read:
                continue
            assert state_name in arrival, (name, state_name, "unreachable")
            assert read <= arrival[state_name], (name, state_name, sorted(read - arrival[state_name]))
            checked += 1
    # render-logs: the input's shape (CheckInputUri); covid: its crawl's and load's Decide, Again and Count.
    assert checked == 7
