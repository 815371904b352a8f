"""The alerts topics, alarms and dashboard (components/monitoring.py), built under mocks from a hand-made
set of pipeline watches, and held to the rules AWS applies to them. Each rule is named with its page."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import botocore.session
import lake_ingest.copy_datasets as copy_datasets
import lake_ingest.gharchive.cli as gharchive_cli
import pytest
import render_summary.cli
from moto.events.models import EventPattern

from components.monitoring import (
    ALARM_DESCRIPTION_MAX,
    ALARM_NAME_MAX,
    ALARM_WIDGET_MAX,
    BATCH_FAILED_STATUSES,
    RUNBOOK_SECTIONS,
    AlertTopics,
    AlertTopicsArgs,
    DeadLetterQueue,
    Freshness,
    Monitoring,
    MonitoringArgs,
    PipelineWatch,
)
from components.orchestration import GLUE_JOB_FAILED_STATES
from components.storage import DataLake, DataLakeArgs
from job_runtime import metrics
from tests.infra.harness import ACCOUNT, REGION, Estate, Recorded, run_under_mocks
from tests.infra.test_access import decision

SUFFIX = "20260101000000000000000001"  # what the mocks append to a name prefix
ALERTS = f"arn:aws:sns:{REGION}:{ACCOUNT}:dataplatform-dev-alerts-{SUFFIX}"
NOTIFICATIONS = f"arn:aws:sns:{REGION}:{ACCOUNT}:dataplatform-dev-notifications-{SUFFIX}"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
RENDER_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-dev-render-logs-flow"
GHARCHIVE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:dataplatform-dev-gharchive-flow"
RENDER_DLQ = "dataplatform-dev-render-logs-trigger-dlq"
SCHEDULE_DLQ = "dataplatform-dev-gharchive-schedule-dlq"
WORKGROUP = "dataplatform-dev-warehouse"
CONFIG = {"aws:region": REGION}

# The pipelines the tests watch: a Batch pipeline started by S3 events, a Glue-only pipeline, and an
# hourly pipeline with both kinds of job and a freshness window.
WATCHES = (
    PipelineWatch(
        pipeline="render-logs",
        state_machine_arns=(RENDER_MACHINE,),
        dead_letter_queues=(DeadLetterQueue(name=RENDER_DLQ, holds="S3 events that did not start a run"),),
        batch_job_definition_names=("dataplatform-dev-render-logs-job",),
        quarantine_jobs=("render_summary",),
    ),
    PipelineWatch(
        pipeline="sales",
        glue_job_names=("dataplatform-dev-sales-convert", "dataplatform-dev-sales-load"),
        quarantine_jobs=("sales_csv_to_parquet",),
        quarantine_ratio_threshold=0.1,
    ),
    PipelineWatch(
        pipeline="gharchive",
        state_machine_arns=(GHARCHIVE_MACHINE,),
        dead_letter_queues=(DeadLetterQueue(name=SCHEDULE_DLQ, holds="hourly starts the scheduler could not make"),),
        glue_job_names=("dataplatform-dev-gharchive-events",),
        batch_job_definition_names=("dataplatform-dev-gharchive-ingest",),
        quarantine_jobs=("gharchive_events",),
        freshness=Freshness(job="gharchive_events", metric=metrics.FILES, hours=3),
    ),
)


def build(
    watches: tuple[PipelineWatch, ...] = WATCHES, stack: str = "dev", success_notifications: bool = True
) -> Estate:
    def program() -> None:
        topics = AlertTopics(
            "topics",
            AlertTopicsArgs(
                account_id=ACCOUNT,
                region=REGION,
                kms_key_arn=KEY,
                alert_emails=("oncall@example.com",),
                notification_emails=("team@example.com",),
                success_notifications=success_notifications,
            ),
        )
        Monitoring(
            "monitoring",
            MonitoringArgs(
                alerts_topic_arn=topics.alerts_topic_arn,
                region=REGION,
                account_id=ACCOUNT,
                stack=stack,
                pipelines=watches,
                warehouse_workgroup=WORKGROUP,
            ),
        )

    return run_under_mocks(stack, CONFIG, program)


@pytest.fixture(scope="module")
def estate() -> Estate:
    return build()


def alarms(estate: Estate) -> dict[str, dict[str, Any]]:
    return {a.inputs["name"]: a.inputs for a in estate.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def rules(estate: Estate) -> dict[str, dict[str, Any]]:
    return {physical_name(r): r.inputs for r in estate.of_type("aws:cloudwatch/eventRule:EventRule")}


def dashboard(estate: Estate) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(estate.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    return body


def metric_alarm(namespace: str, metric: str, dimensions: dict[str, str], statistic: str, **rest: Any) -> dict:
    """What a single-metric alarm's inputs hold besides its name and description."""
    return {
        "namespace": namespace,
        "metricName": metric,
        "dimensions": dimensions,
        "statistic": statistic,
        "period": rest.get("period", 300),
        "evaluationPeriods": rest.get("evaluationPeriods", 1),
        "threshold": rest.get("threshold", 0),
        "comparisonOperator": rest.get("comparisonOperator", "GreaterThanThreshold"),
        "treatMissingData": rest.get("treatMissingData", "notBreaching"),
        "alarmActions": [ALERTS],
        "okActions": [ALERTS],
        **({"datapointsToAlarm": rest["datapointsToAlarm"]} if "datapointsToAlarm" in rest else {}),
    }


def without_text(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if k not in ("name", "alarmDescription")}


# --- topics -------------------------------------------------------------------------------------------------


def test_alerts_and_notifications_topics_are_encrypted_with_the_estate_key_and_subscribed(estate: Estate) -> None:
    topics = {t.name: t.inputs for t in estate.of_type("aws:sns/topic:Topic")}
    assert topics == {
        "topics-alerts": {"namePrefix": "dataplatform-dev-alerts-", "kmsMasterKeyId": KEY},
        "topics-notifications": {"namePrefix": "dataplatform-dev-notifications-", "kmsMasterKeyId": KEY},
    }
    subscriptions = {
        (s.inputs["topic"], s.inputs["endpoint"], s.inputs["protocol"])
        for s in estate.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert subscriptions == {(ALERTS, "oncall@example.com", "email"), (NOTIFICATIONS, "team@example.com", "email")}


def test_without_success_notifications_there_is_only_the_alerts_topic() -> None:
    quiet = build(success_notifications=False)
    assert [t.name for t in quiet.of_type("aws:sns/topic:Topic")] == ["topics-alerts"]
    assert [p.inputs["arn"] for p in quiet.of_type("aws:sns/topicPolicy:TopicPolicy")] == [ALERTS]
    (subscription,) = quiet.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["endpoint"] == "oncall@example.com"


def test_the_success_news_topic_keeps_the_former_notification_topic_and_its_subscriptions(estate: Estate) -> None:
    """The stack's existing topic (orchestration.NotificationTopic "notifications") becomes the
    notifications topic in place: confirmed e-mail subscriptions are not replaced."""
    old = "urn:pulumi:dev::dataplatform::dataplatform:orchestration:NotificationTopic$aws:sns/topic:Topic"
    assert estate.options[("aws:sns/topic:Topic", "topics-notifications")].aliases == (f"{old}::notifications-topic",)
    assert estate.options[("aws:sns/topicPolicy:TopicPolicy", "topics-notifications-policy")].aliases == (
        f"{old}$aws:sns/topicPolicy:TopicPolicy::notifications-topic-policy",
    )
    assert estate.options[("aws:sns/topicSubscription:TopicSubscription", "topics-notifications-email-0")].aliases == (
        f"{old}$aws:sns/topicSubscription:TopicSubscription::notifications-email-0",
    )
    assert estate.options[("aws:sns/topic:Topic", "topics-alerts")].aliases == ()


def topic_statements(estate: Estate, arn: str) -> list[dict[str, Any]]:
    (policy,) = [p for p in estate.of_type("aws:sns/topicPolicy:TopicPolicy") if p.inputs["arn"] == arn]
    statements: list[dict[str, Any]] = json.loads(policy.inputs["policy"])["Statement"]
    return statements


ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:dataplatform-dev-sales-glue-job-failed"
FROM_ALARM = {"aws:SecureTransport": "true", "aws:SourceAccount": ACCOUNT, "aws:SourceArn": ALARM_ARN}
CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


@pytest.mark.parametrize("arn", [ALERTS, NOTIFICATIONS])
def test_each_topic_admits_this_accounts_rules_and_alarms_over_tls_only(estate: Estate, arn: str) -> None:
    """CloudWatch alarms publish as cloudwatch.amazonaws.com with aws:SourceArn
    arn:aws:cloudwatch:<region>:<account>:alarm:<name>; the topic policy admits them by that ARN pattern
    (AWS re:Post Knowledge Center, "Why didn't I receive an SNS notification for my CloudWatch alarm
    trigger?", https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). EventBridge
    publishes as events.amazonaws.com (EventBridge, "Permissions for Amazon SNS",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)."""
    statements = topic_statements(estate, arn)
    assert statements == [
        {
            "Sid": "EventBridgeRulesOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        },
        {
            "Sid": "CloudWatchAlarmsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"},
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    assert decision(statements, "sns:Publish", arn, FROM_ALARM, CLOUDWATCH) == "Allow"
    other_account = {**FROM_ALARM, "aws:SourceAccount": "210987654321"}
    assert decision(statements, "sns:Publish", arn, other_account, CLOUDWATCH) == "ImplicitDeny"
    not_an_alarm = {**FROM_ALARM, "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:dashboard/x"}
    assert decision(statements, "sns:Publish", arn, not_an_alarm, CLOUDWATCH) == "ImplicitDeny"
    assert decision(statements, "sns:Publish", arn, {**FROM_ALARM, "aws:SecureTransport": "false"}, CLOUDWATCH) == (
        "Deny"
    )


def test_the_estate_key_lets_this_accounts_alarms_use_it_for_the_encrypted_topics() -> None:
    """An alarm action on an SSE-KMS topic fails ("CloudWatch Alarms does not have authorization to access
    the SNS topic encryption key") unless the key policy admits cloudwatch.amazonaws.com for
    kms:GenerateDataKey* and kms:Decrypt (Amazon SNS, "Managing Amazon SNS encryption keys", event sources
    from AWS services, with aws:SourceAccount/aws:SourceArn against confused deputies,
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html; AWS re:Post Knowledge Center, "How
    do I configure a CloudWatch alarm with an encrypted SNS topic?",
    https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns)."""
    lake = run_under_mocks("dev", CONFIG, lambda: DataLake("lake", DataLakeArgs(account_id=ACCOUNT, region=REGION)))
    key = json.loads(lake.one("aws:kms/key:Key").inputs["policy"])["Statement"]
    (statement,) = [s for s in key if s.get("Sid") == "CloudWatchAlarmsToEncryptedTopics"]
    assert statement == {
        "Sid": "CloudWatchAlarmsToEncryptedTopics",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"},
        },
    }
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert decision(key, action, KEY, FROM_ALARM, CLOUDWATCH) == "Allow"
        # EventBridge rules publishing to the encrypted alerts topic: their key requests carry no aws:Source*
        # keys ("not supported for EventBridge-to-encrypted topics", same SNS page), and still pass.
        events = {"Service": "events.amazonaws.com"}
        assert decision(key, action, KEY, {"aws:SecureTransport": "true"}, events) == "Allow"
        assert decision(key, action, KEY, {**FROM_ALARM, "aws:SourceAccount": "210987654321"}, CLOUDWATCH) == (
            "ImplicitDeny"
        )


# --- alarms -------------------------------------------------------------------------------------------------

SFN = "AWS/States"


def test_every_alarm_is_exactly_what_its_signal_needs(estate: Estate) -> None:
    """Metric names, dimensions and statistics as AWS publishes them: AWS/SQS ApproximateNumberOfMessagesVisible
    by QueueName (Amazon SQS, "Available CloudWatch metrics for Amazon SQS",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html);
    AWS/States ExecutionsFailed, ExecutionsTimedOut, ExecutionsAborted by StateMachineArn (Step Functions,
    "Metrics that report execution status", https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html);
    AWS/Events TriggeredRules by RuleName, summed (EventBridge, "Monitoring Amazon EventBridge",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html, and AWS CDK's Glue
    Job.metricFailure, aws-cdk packages/@aws-cdk/aws-glue-alpha/lib/jobs/job.ts metricRule)."""
    found = {name: without_text(inputs) for name, inputs in alarms(estate).items()}
    glue_rule = {"RuleName": f"dataplatform-dev-sales-glue-{SUFFIX}"}
    expected = {
        "dataplatform-dev-render-logs-dlq-1-not-empty": metric_alarm(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": RENDER_DLQ}, "Maximum"
        ),
        "dataplatform-dev-render-logs-run-failed": metric_alarm(
            SFN, "ExecutionsFailed", {"StateMachineArn": RENDER_MACHINE}, "Sum"
        ),
        "dataplatform-dev-render-logs-run-timed-out": metric_alarm(
            SFN, "ExecutionsTimedOut", {"StateMachineArn": RENDER_MACHINE}, "Sum"
        ),
        "dataplatform-dev-render-logs-run-aborted": metric_alarm(
            SFN, "ExecutionsAborted", {"StateMachineArn": RENDER_MACHINE}, "Sum"
        ),
        "dataplatform-dev-render-logs-batch-job-failed": metric_alarm(
            "AWS/Events", "TriggeredRules", {"RuleName": f"dataplatform-dev-render-logs-batch-{SUFFIX}"}, "Sum"
        ),
        "dataplatform-dev-sales-glue-job-failed": metric_alarm("AWS/Events", "TriggeredRules", glue_rule, "Sum"),
        "dataplatform-dev-gharchive-dlq-1-not-empty": metric_alarm(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": SCHEDULE_DLQ}, "Maximum"
        ),
        "dataplatform-dev-gharchive-run-failed": metric_alarm(
            SFN, "ExecutionsFailed", {"StateMachineArn": GHARCHIVE_MACHINE}, "Sum"
        ),
        "dataplatform-dev-gharchive-run-timed-out": metric_alarm(
            SFN, "ExecutionsTimedOut", {"StateMachineArn": GHARCHIVE_MACHINE}, "Sum"
        ),
        "dataplatform-dev-gharchive-run-aborted": metric_alarm(
            SFN, "ExecutionsAborted", {"StateMachineArn": GHARCHIVE_MACHINE}, "Sum"
        ),
        "dataplatform-dev-gharchive-glue-job-failed": metric_alarm(
            "AWS/Events", "TriggeredRules", {"RuleName": f"dataplatform-dev-gharchive-glue-{SUFFIX}"}, "Sum"
        ),
        "dataplatform-dev-gharchive-batch-job-failed": metric_alarm(
            "AWS/Events", "TriggeredRules", {"RuleName": f"dataplatform-dev-gharchive-batch-{SUFFIX}"}, "Sum"
        ),
        # Silence is the failure: no run, or runs that load nothing new, for 3 hours in a row.
        "dataplatform-dev-gharchive-stale": metric_alarm(
            metrics.NAMESPACE,
            metrics.FILES,
            {"Stack": "dev", "Pipeline": "gharchive", "Job": "gharchive_events"},
            "Sum",
            period=3600,
            evaluationPeriods=3,
            datapointsToAlarm=3,
            threshold=1,
            comparisonOperator="LessThanThreshold",
            treatMissingData="breaching",
        ),
        "dataplatform-dev-render-logs-render-summary-quarantine-ratio": ratio_alarm(
            "render-logs", "render_summary", 0.05
        ),
        "dataplatform-dev-sales-sales-csv-to-parquet-quarantine-ratio": ratio_alarm(
            "sales", "sales_csv_to_parquet", 0.1
        ),
        "dataplatform-dev-gharchive-gharchive-events-quarantine-ratio": ratio_alarm(
            "gharchive", "gharchive_events", 0.05
        ),
    }
    assert found == expected


def ratio_alarm(pipeline: str, job: str, threshold: float) -> dict[str, Any]:
    """Quarantined / in rows per hour, 0 for an hour with no input rows (CloudWatch metric math IF,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html)."""
    dims = {"Stack": "dev", "Pipeline": pipeline, "Job": job}

    def query(metric_id: str, metric: str) -> dict[str, Any]:
        return {
            "id": metric_id,
            "metric": {
                "namespace": metrics.NAMESPACE,
                "metricName": metric,
                "dimensions": dims,
                "stat": "Sum",
                "period": 3600,
            },
            "returnData": False,
        }

    return {
        "metricQueries": [
            query("quarantined", metrics.ROWS_QUARANTINED),
            query("rows_in", metrics.ROWS_IN),
            {
                "id": "ratio",
                "expression": "IF(rows_in > 0, quarantined / rows_in, 0)",
                "label": f"{job} quarantined / in",
                "returnData": True,
            },
        ],
        "evaluationPeriods": 1,
        "threshold": threshold,
        "comparisonOperator": "GreaterThanThreshold",
        "treatMissingData": "notBreaching",
        "alarmActions": [ALERTS],
        "okActions": [ALERTS],
    }


# --- failure rules --------------------------------------------------------------------------------------------


# The events as AWS documents them. Glue: AWS Glue, "Automating AWS Glue with EventBridge"
# (https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html). Batch: AWS Batch,
# "Job state change events" (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html): the
# detail's jobDefinition is the definition's ARN with its revision.
def glue_event(job: str, state: str) -> Any:
    return {
        "source": "aws.glue",
        "detail-type": "Glue Job State Change",
        "detail": {"jobName": job, "severity": "ERROR", "state": state, "jobRunId": "jr_0123", "message": "boom"},
    }


def batch_event(definition: str, status: str) -> Any:
    arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{definition}"
    return {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {"jobName": "run-1", "status": status, "jobDefinition": arn},
    }


def test_each_failure_rule_matches_exactly_the_failed_runs_of_its_pipelines_jobs(estate: Estate) -> None:
    """Matched with EventBridge's pattern semantics (moto's implementation, prefix matching included)."""
    found = rules(estate)
    assert set(found) == {
        f"dataplatform-dev-render-logs-batch-{SUFFIX}",
        f"dataplatform-dev-sales-glue-{SUFFIX}",
        f"dataplatform-dev-gharchive-glue-{SUFFIX}",
        f"dataplatform-dev-gharchive-batch-{SUFFIX}",
    }
    assert all("roleArn" not in r and "scheduleExpression" not in r for r in found.values())
    assert estate.of_type("aws:cloudwatch/eventTarget:EventTarget") == []  # counted, not delivered
    sales = EventPattern.load(found[f"dataplatform-dev-sales-glue-{SUFFIX}"]["eventPattern"])
    for state in GLUE_JOB_FAILED_STATES:
        assert sales.matches_event(glue_event("dataplatform-dev-sales-load", state))
    assert not sales.matches_event(glue_event("dataplatform-dev-sales-load", "SUCCEEDED"))
    assert not sales.matches_event(glue_event("dataplatform-dev-gharchive-events", "FAILED"))
    render = EventPattern.load(found[f"dataplatform-dev-render-logs-batch-{SUFFIX}"]["eventPattern"])
    assert json.loads(found[f"dataplatform-dev-render-logs-batch-{SUFFIX}"]["eventPattern"]) == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {
            "status": ["FAILED"],
            "jobDefinition": [
                {"prefix": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/dataplatform-dev-render-logs-job:"}
            ],
        },
    }
    assert render.matches_event(batch_event("dataplatform-dev-render-logs-job:7", "FAILED"))
    assert not render.matches_event(batch_event("dataplatform-dev-render-logs-job:7", "SUCCEEDED"))
    # A definition whose name extends this one's is another definition.
    assert not render.matches_event(batch_event("dataplatform-dev-render-logs-job-2:1", "FAILED"))
    assert not render.matches_event(batch_event("dataplatform-dev-gharchive-ingest:1", "FAILED"))


def test_failure_states_are_the_services_own_values() -> None:
    """Glue's JobRunState and Batch's JobStatus enums, from the services' API models (botocore)."""
    models = botocore.session.get_session()
    assert set(GLUE_JOB_FAILED_STATES) <= set(models.get_service_model("glue").shape_for("JobRunState").enum)
    assert set(BATCH_FAILED_STATUSES) <= set(models.get_service_model("batch").shape_for("JobStatus").enum)


# --- what an alarm says, and its name ---------------------------------------------------------------------------


def test_each_description_says_what_broke_where_to_look_and_which_runbook_section(estate: Estate) -> None:
    """PutMetricAlarm takes at most 1024 characters of description (CloudWatch API Reference, PutMetricAlarm,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html)."""
    anchors = {
        "dlq-1-not-empty": ("dead-letter-queue", "SQS console"),
        "run-failed": ("state-machine-failed", "Step Functions console"),
        "run-timed-out": ("state-machine-failed", "Step Functions console"),
        "run-aborted": ("state-machine-failed", "Step Functions console"),
        "glue-job-failed": ("glue-job-failed", "/error"),
        "batch-job-failed": ("batch-job-failed", "AWS Batch console"),
        "stale": ("no-new-data", "gharchive_events"),
        "quarantine-ratio": ("quarantine-ratio", "quarantine/"),
    }
    for name, inputs in alarms(estate).items():
        text = inputs["alarmDescription"]
        (kind,) = [k for k in anchors if name.endswith(k)]
        section, where = anchors[kind]
        pipeline = next(w.pipeline for w in WATCHES if name.startswith(f"dataplatform-dev-{w.pipeline}-"))
        assert text.startswith(f"[{pipeline}] "), name
        assert text.endswith(f"Runbook: docs/runbook.md#{section}"), name
        assert where in text, name
        assert len(text) <= ALARM_DESCRIPTION_MAX, name
    assert set(RUNBOOK_SECTIONS) == {section for section, _ in anchors.values()}
    descriptions = {n: a["alarmDescription"] for n, a in alarms(estate).items()}
    assert RENDER_DLQ in descriptions["dataplatform-dev-render-logs-dlq-1-not-empty"]
    assert "S3 events that did not start a run" in descriptions["dataplatform-dev-render-logs-dlq-1-not-empty"]
    assert RENDER_MACHINE in descriptions["dataplatform-dev-render-logs-run-failed"]
    glue = descriptions["dataplatform-dev-sales-glue-job-failed"]
    groups = "/aws-glue/jobs/dataplatform-dev-sales-convert/error or /aws-glue/jobs/dataplatform-dev-sales-load/error"
    assert groups in glue
    batch = descriptions["dataplatform-dev-render-logs-batch-job-failed"]
    assert "dataplatform-dev-render-logs-job" in batch
    assert "exit 3 means bad input and 2 bad arguments" in batch and "4 a transient failure" in batch
    assert "5%" in descriptions["dataplatform-dev-render-logs-render-summary-quarantine-ratio"]
    assert "10%" in descriptions["dataplatform-dev-sales-sales-csv-to-parquet-quarantine-ratio"]


LONG_STACK = "pr-" + "x" * 240


def test_names_fit_aws_limits_and_stay_unique_for_a_long_stack_name() -> None:
    """Alarm names: 1 to 255 characters (PutMetricAlarm, above). Rule names: at most 64 of [.-_A-Za-z0-9]
    (EventBridge API Reference, PutRule, https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html).
    Dashboard names: at most 255 of A-Z a-z 0-9 - _ (CloudWatch API Reference, PutDashboard,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html)."""
    for stack in ("dev", LONG_STACK):
        built = build(stack=stack)
        prefix = f"dataplatform-{stack}"[:20]
        names = list(alarms(built))
        assert len(names) == len(set(names)) == 16
        assert all(0 < len(n) <= ALARM_NAME_MAX and n.startswith(prefix) for n in names), names
        for rule in rules(built):
            assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", rule) and rule.startswith(prefix), rule
        board = built.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardName"]
        assert re.fullmatch(r"[A-Za-z0-9_\-]{1,255}", board) and board.startswith(prefix), board
    assert build().one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardName"] == "dataplatform-dev-pipelines"


def test_alarm_settings_are_values_cloudwatch_accepts(estate: Estate) -> None:
    """Statistics and comparison operators from CloudWatch's API model (botocore); TreatMissingData one of
    breaching, notBreaching, ignore, missing; Period x EvaluationPeriods at most 7 days and at most a day for
    periods under an hour; at most 5 actions per state (PutMetricAlarm, above)."""
    model = botocore.session.get_session().get_service_model("cloudwatch")
    for name, inputs in alarms(estate).items():
        if "metricQueries" in inputs:
            periods = [q["metric"]["period"] for q in inputs["metricQueries"] if "metric" in q]
            stats = [q["metric"]["stat"] for q in inputs["metricQueries"] if "metric" in q]
        else:
            periods, stats = [inputs["period"]], [inputs["statistic"]]
        assert set(stats) <= set(model.shape_for("Statistic").enum), name
        assert inputs["comparisonOperator"] in model.shape_for("ComparisonOperator").enum, name
        assert inputs["treatMissingData"] in ("breaching", "notBreaching", "ignore", "missing"), name
        for period in periods:
            assert period % 60 == 0, name
            assert period * inputs["evaluationPeriods"] <= (604_800 if period >= 3600 else 86_400), name
        assert len(inputs["alarmActions"]) <= 5 and len(inputs["okActions"]) <= 5, name


def test_freshness_and_ratio_settings_outside_what_an_alarm_can_express_are_refused() -> None:
    """An hourly alarm can look back at most 168 hours (7 days, PutMetricAlarm above); a ratio threshold of
    1 or more could never be exceeded."""
    week = Freshness(job="gharchive_events", metric=metrics.FILES, hours=168)
    assert "dataplatform-dev-gharchive-stale" in alarms(build((PipelineWatch(pipeline="gharchive", freshness=week),)))
    too_long = PipelineWatch(pipeline="gharchive", freshness=Freshness(job="g", metric=metrics.FILES, hours=169))
    with pytest.raises(ValueError, match="freshness hours must be 1 to 168"):
        build((too_long,))
    unknown = PipelineWatch(pipeline="gharchive", freshness=Freshness(job="g", metric="NewHours", hours=3))
    with pytest.raises(ValueError, match=r"NewHours is not a job_runtime\.metrics metric"):
        build((unknown,))
    for bad in (1.0, -0.1):
        ratio = PipelineWatch(pipeline="sales", quarantine_jobs=("x",), quarantine_ratio_threshold=bad)
        with pytest.raises(ValueError, match="quarantine_ratio_threshold must be at least 0 and below 1"):
            build((ratio,))
    with pytest.raises(ValueError, match="each pipeline is watched once"):
        build((PipelineWatch(pipeline="sales"), PipelineWatch(pipeline="sales")))


# --- run metrics (EMF) -----------------------------------------------------------------------------------------

SEARCH = re.compile(
    r"""SEARCH\('\{(?P<schema>[^}]*)\} MetricName="(?P<metric>\w+)" Stack="(?P<stack>[^"]*)" """
    r"""Pipeline="(?P<pipeline>[^"]*)"', '(?P<stat>\w+)', (?P<period>\d+)\)"""
)


def emf_uses(estate: Estate) -> list[tuple[str, dict[str, str] | str, str]]:
    """(namespace, dimensions or search schema, metric name) of every alarm and widget on a run metric."""
    uses: list[tuple[str, dict[str, str] | str, str]] = []
    for inputs in alarms(estate).values():
        for q in inputs.get("metricQueries", []):
            if "metric" in q:
                uses.append((q["metric"]["namespace"], q["metric"]["dimensions"], q["metric"]["metricName"]))
        if inputs.get("namespace") == metrics.NAMESPACE:
            uses.append((inputs["namespace"], inputs["dimensions"], inputs["metricName"]))
    for widget in dashboard(estate)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):
                match = SEARCH.fullmatch(line[0]["expression"])
                assert match, line
                namespace, *dims = match["schema"].split(",")
                uses.append((namespace, ",".join(dims), match["metric"]))
            elif line[0] == metrics.NAMESPACE:
                uses.append((line[0], dict(zip(line[2:-1:2], line[3:-1:2], strict=True)), line[1]))
    return uses


def test_every_run_metric_alarm_and_widget_reads_what_the_jobs_emit(estate: Estate) -> None:
    """CloudWatch Logs extracts one metric per dimension set an EMF line declares (CloudWatch, "Specification:
    Embedded metric format", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
    an alarm or graph on another namespace, dimension set or metric name reads nothing. The jobs emit
    job_runtime.metrics' NAMESPACE with exactly its DIMENSIONS and the metric names of UNITS."""
    uses = emf_uses(estate)
    # 3 ratio alarms x 2 metrics, the freshness alarm, and 3 SEARCHes per pipeline row.
    assert len(uses) == 3 * 2 + 1 + 3 * len(WATCHES)
    for namespace, dims, metric in uses:
        assert namespace == metrics.NAMESPACE
        assert metric in metrics.UNITS
        if isinstance(dims, dict):
            assert sorted(dims) == sorted(metrics.DIMENSIONS) and dims["Stack"] == "dev"
        else:
            assert tuple(dims.split(",")) == metrics.DIMENSIONS


# --- dashboard -------------------------------------------------------------------------------------------------


def test_dashboard_has_a_row_per_pipeline_and_the_warehouse_rpus(estate: Estate) -> None:
    """Structure per CloudWatch, "Dashboard Body Structure and Syntax"
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
    a widgets array; each widget with type, x, y, width, height (a 24-column grid) and properties; a metric
    widget with region and metrics rows [namespace, name, dimension, value, ..., {options}] or expressions.
    Redshift Serverless publishes ComputeCapacity (RPUs) in AWS/Redshift-Serverless by Workgroup (Amazon
    Redshift, "Amazon Redshift Serverless metrics", https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-monitoring.html)."""
    body = dashboard(estate)
    assert (body["start"], body["periodOverride"]) == ("-P7D", "inherit")
    widgets = body["widgets"]
    assert len(widgets) <= 500
    cells: set[tuple[int, int]] = set()
    for w in widgets:
        assert set(w) == {"type", "x", "y", "width", "height", "properties"}
        assert w["x"] >= 0 and w["x"] + w["width"] <= 24, w
        covered = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not covered & cells, w  # no two widgets overlap
        cells |= covered
        if w["type"] == "metric":
            assert w["properties"]["region"] == REGION
            assert w["properties"]["view"] == "timeSeries"
    titles = [w["properties"].get("title") or w["properties"].get("markdown") for w in widgets]
    assert titles == [
        "Alarms",
        "## render-logs",
        "render-logs: runs",
        "render-logs: rows loaded / quarantined",
        "render-logs: job duration (s)",
        "render-logs: dead letters waiting",
        "## sales",
        "sales: runs",
        "sales: rows loaded / quarantined",
        "sales: job duration (s)",
        "## gharchive",
        "gharchive: runs",
        "gharchive: rows loaded / quarantined",
        "gharchive: job duration (s)",
        "gharchive: dead letters waiting",
        "## Warehouse",
        "Redshift Serverless RPUs in use",
    ]
    by_title = {w["properties"].get("title"): w["properties"] for w in widgets}
    alarm_arns = {f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:metricalarm/{n}" for n in alarms(estate)}
    assert set(by_title["Alarms"]["alarms"]) == alarm_arns  # the mocks' ARN of each alarm
    assert by_title["render-logs: runs"]["metrics"] == [
        ["AWS/States", "ExecutionsStarted", "StateMachineArn", RENDER_MACHINE, {"label": "Started"}],
        ["AWS/States", "ExecutionsSucceeded", "StateMachineArn", RENDER_MACHINE, {"label": "Succeeded"}],
        ["AWS/States", "ExecutionsFailed", "StateMachineArn", RENDER_MACHINE, {"label": "Failed"}],
        [
            "AWS/Events",
            "TriggeredRules",
            "RuleName",
            f"dataplatform-dev-render-logs-batch-{SUFFIX}",
            {"label": "batch job failed"},
        ],
    ]
    assert by_title["sales: runs"]["metrics"] == [
        [
            "AWS/Events",
            "TriggeredRules",
            "RuleName",
            f"dataplatform-dev-sales-glue-{SUFFIX}",
            {"label": "glue job failed"},
        ],
    ]
    assert by_title["render-logs: rows loaded / quarantined"]["metrics"] == [
        [
            {
                "expression": 'SEARCH(\'{DataPlatform/Pipelines,Stack,Pipeline,Job} MetricName="RowsLoaded" '
                'Stack="dev" Pipeline="render-logs"\', \'Sum\', 3600)',
                "id": "loaded",
            }
        ],
        [
            {
                "expression": 'SEARCH(\'{DataPlatform/Pipelines,Stack,Pipeline,Job} MetricName="RowsQuarantined" '
                'Stack="dev" Pipeline="render-logs"\', \'Sum\', 3600)',
                "id": "quarantined",
            }
        ],
    ]
    assert by_title["gharchive: dead letters waiting"]["metrics"] == [
        [
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            SCHEDULE_DLQ,
            {"label": "hourly starts the scheduler could not make"},
        ],
    ]
    assert by_title["Redshift Serverless RPUs in use"]["metrics"] == [
        [
            "AWS/Redshift-Serverless",
            "ComputeCapacity",
            "Workgroup",
            WORKGROUP,
            {"stat": "Maximum", "label": "RPUs (max)"},
        ]
    ]


def test_the_alarm_strip_lists_at_most_100_alarms_a_widget() -> None:
    """An alarm status widget lists at most 100 alarms (CloudWatch, "Dashboard Body Structure and Syntax",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
    more alarms take more strips, each a full row, and every alarm is in one of them."""
    many = tuple(PipelineWatch(pipeline=f"p{i}", state_machine_arns=(f"{RENDER_MACHINE}-{i}",)) for i in range(34))
    built = build(many)
    strips = [w for w in dashboard(built)["widgets"] if w["type"] == "alarm"]
    assert [len(w["properties"]["alarms"]) for w in strips] == [ALARM_WIDGET_MAX, 34 * 3 - ALARM_WIDGET_MAX]
    assert [(w["x"], w["y"], w["width"]) for w in strips] == [(0, 0, 24), (0, 3, 24)]
    listed = [arn for w in strips for arn in w["properties"]["alarms"]]
    assert sorted(listed) == sorted(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:metricalarm/{n}" for n in alarms(built))


def test_component_exposes_every_alarm_name_and_the_dashboard_name() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(alerts_topic_arn=ALERTS, region=REGION, account_id=ACCOUNT, stack="dev", pipelines=WATCHES),
        )
        seen["alarm_names"] = monitoring.alarm_names
        monitoring.dashboard_name.apply(lambda name: seen.setdefault("dashboard_name", name))

    built = run_under_mocks("dev", CONFIG, program)
    assert sorted(seen["alarm_names"]) == sorted(alarms(built))
    assert seen["dashboard_name"] == "dataplatform-dev-pipelines"
    # Without a workgroup the dashboard has no warehouse row.
    assert "## Warehouse" not in json.dumps(dashboard(built))


# --- the dev estate --------------------------------------------------------------------------------------------


def physical_name(resource: Recorded) -> str:
    """The name the mocks gave a resource: its name, or its name prefix plus the mock suffix."""
    name: str = resource.inputs.get("name") or resource.inputs["namePrefix"] + SUFFIX
    return name


def failure_rules_of(estate: Estate) -> dict[str, dict[str, Any]]:
    """The monitoring's job-failure rules (not the pipelines' own rules), by physical name."""
    return {
        physical_name(r): r.inputs
        for r in estate.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.name.startswith("monitoring-") and r.name.endswith("-failed")
    }


def emitters(dev: Estate) -> set[tuple[str, str, str]]:
    """(Stack, Pipeline, Job) of every job of the estate, as the job will emit them: Glue jobs from their
    --metrics_stack/--metrics_pipeline arguments and their script's JOB; Batch jobs from METRICS_STACK and
    METRICS_PIPELINE and their console script (render-summary -> render_summary)."""
    found = set()
    for job in dev.of_type("aws:glue/job:Job"):
        args = job.inputs["defaultArguments"]
        script = job.inputs["command"]["scriptLocation"].split("/glue/")[1].split("/")[0]
        found.add((args["--metrics_stack"], args["--metrics_pipeline"], importlib.import_module(script).JOB))
    for definition in dev.of_type("aws:batch/jobDefinition:JobDefinition"):
        container = json.loads(definition.inputs["containerProperties"])
        env = {e["name"]: e["value"] for e in container["environment"]}
        job_name = container["command"][0].replace("-", "_")
        found.add((env[metrics.STACK_ENV], env[metrics.PIPELINE_ENV], job_name))
    return found


def test_batch_job_dimension_is_the_console_script_the_jobs_use() -> None:
    """The jobs' own Job names (what emitters() derives from the console scripts)."""
    assert (render_summary.cli.JOB, gharchive_cli.METRICS_JOB, copy_datasets.METRICS_JOB) == (
        "render_summary",
        "gharchive_ingest",
        "copy_datasets",
    )


def test_every_alarm_of_the_dev_estate_reads_a_resource_or_job_of_the_estate(dev: Estate) -> None:
    """Mocks accept an alarm on any name; CloudWatch then alarms on nothing. Every dimension value names
    a queue, state machine or rule the estate builds, and every run-metric alarm a job that emits it."""
    queues = {physical_name(q) for q in dev.of_type("aws:sqs/queue:Queue")}
    machines = {
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{physical_name(m)}"
        for m in dev.of_type("aws:sfn/stateMachine:StateMachine")
    }
    failure_rules = set(failure_rules_of(dev))
    jobs = emitters(dev)
    found = alarms(dev)
    assert len(found) == 31
    checked: dict[str, set[str]] = {namespace: set() for namespace in ("AWS/SQS", "AWS/States", "AWS/Events")}
    checked[metrics.NAMESPACE] = set()
    for name, inputs in found.items():
        assert inputs["alarmActions"] == inputs["okActions"] == [ALERTS], name
        dims = [q["metric"]["dimensions"] for q in inputs.get("metricQueries", []) if "metric" in q]
        namespaces = [q["metric"]["namespace"] for q in inputs.get("metricQueries", []) if "metric" in q]
        if "namespace" in inputs:
            dims, namespaces = [inputs["dimensions"]], [inputs["namespace"]]
        for namespace, dim in zip(namespaces, dims, strict=True):
            if namespace == "AWS/SQS":
                assert dim["QueueName"] in queues, name
                checked[namespace].add(dim["QueueName"])
            elif namespace == "AWS/States":
                assert dim["StateMachineArn"] in machines, name
                checked[namespace].add(dim["StateMachineArn"])
            elif namespace == "AWS/Events":
                assert dim["RuleName"] in failure_rules, name
                checked[namespace].add(dim["RuleName"])
            else:
                assert namespace == metrics.NAMESPACE, name
                assert (dim["Stack"], dim["Pipeline"], dim["Job"]) in jobs, name
                checked[namespace].add(dim["Job"])
    # Every dead-letter queue and every state machine of the estate is watched.
    assert checked["AWS/SQS"] == queues
    assert checked["AWS/States"] == machines
    assert checked["AWS/Events"] == failure_rules
    assert checked[metrics.NAMESPACE] == {
        "render_summary",
        "sales_csv_to_parquet",
        "sensor_timeseries",
        "gharchive_events",
        "covid_clean",
    }


def test_every_glue_job_and_batch_definition_of_the_dev_estate_has_a_failure_rule(dev: Estate) -> None:
    patterns = [json.loads(inputs["eventPattern"]) for inputs in failure_rules_of(dev).values()]
    assert len(patterns) == 7
    for job in dev.of_type("aws:glue/job:Job"):
        event = glue_event(job.inputs["name"], "FAILED")
        assert sum(EventPattern.load(json.dumps(p)).matches_event(event) for p in patterns) == 1, job.name
    for definition in dev.of_type("aws:batch/jobDefinition:JobDefinition"):
        event = batch_event(f"{definition.inputs['name']}:1", "FAILED")
        assert sum(EventPattern.load(json.dumps(p)).matches_event(event) for p in patterns) == 1, definition.name


def test_dev_dashboard_graphs_the_estates_workgroup(dev: Estate) -> None:
    workgroup = dev.one("aws:redshiftserverless/workgroup:Workgroup").inputs["workgroupName"]
    widgets = dashboard(dev)["widgets"]
    (rpus,) = [w for w in widgets if w["properties"].get("title") == "Redshift Serverless RPUs in use"]
    assert rpus["properties"]["metrics"][0][:4] == [
        "AWS/Redshift-Serverless",
        "ComputeCapacity",
        "Workgroup",
        workgroup,
    ]
