"""Monitoring: the alerts and notifications topics, CloudWatch alarms and the stack's dashboard.

The dataclasses DeadLetterQueue, Freshness and PipelineWatch are what the pipelines fill
(pipelines/*.py, via Pipeline.watch) and what the program passes here (__main__.py).

Every alarm notifies the `alerts` topic when it goes into ALARM and again when it returns to OK, and
its description says what broke, where to look and which section of docs/runbook.md to follow. How
each alarm treats missing data is chosen per signal (CloudWatch, "Configuring how CloudWatch alarms
treat missing data", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data):

| alarm                          | missing data  | why                                                          |
|--------------------------------|---------------|--------------------------------------------------------------|
| dead-letter queue not empty    | notBreaching  | SQS stops publishing for a queue nothing touches: no message |
| run failed / timed out/aborted | notBreaching  | Step Functions publishes only when executions end            |
| Glue / Batch job failed        | notBreaching  | EventBridge publishes TriggeredRules only when the rule fires|
| no new GH Archive hour (fresh.)| breaching     | silence is exactly the failure: no run, or runs with nothing |
| quarantined-row ratio          | notBreaching  | no run in the hour: no rows to judge                         |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.compute import job_log_group_prefix
from components.iam import document
from components.orchestration import GLUE_JOB_FAILED_STATES, glue_state_pattern
from components.storage import alarm_source_arn
from job_runtime import errors, metrics

# The runbook sections the alarm descriptions point to (MonitoringArgs.runbook; this estate's is docs/runbook.md).
RUNBOOK = "docs/runbook.md"
RUNBOOK_SECTIONS = (
    "dead-letter-queue",
    "state-machine-failed",
    "glue-job-failed",
    "batch-job-failed",
    "no-new-data",
    "quarantine-ratio",
)

# PutMetricAlarm: a name of 1 to 255 characters, a description of at most 1024, at most 5 actions per
# state; Period x EvaluationPeriods at most 7 days (604,800 s), and at most 1 day for periods under an
# hour (CloudWatch API Reference, PutMetricAlarm,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
ALARM_NAME_MAX = 255
ALARM_DESCRIPTION_MAX = 1024
ALARM_EVALUATION_RANGE_MAX_SECONDS = 7 * 24 * 3600
# The freshness alarm sums one-hour periods, so it can look back 1 to 168 hours.
FRESHNESS_HOURS_RANGE = (1, ALARM_EVALUATION_RANGE_MAX_SECONDS // 3600)
# EventBridge rule names: at most 64 characters (EventBridge API Reference, PutRule,
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html).
RULE_NAME_MAX = 64
# A dashboard name: 1 to 255 characters of A-Z, a-z, 0-9, "-" and "_" (CloudWatch API Reference,
# PutDashboard, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html).
DASHBOARD_NAME_MAX = 255
# An alarm status widget lists at most 100 alarms (CloudWatch, "Dashboard Body Structure and Syntax",
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
ALARM_WIDGET_MAX = 100

# A Batch job that is FAILED has used all its attempts (AWS Batch, "Job states" and "Job state change
# events", https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html).
BATCH_FAILED_STATUSES = ("FAILED",)

# The counting alarms sum five-minute periods: an alert within minutes of a failure, at the standard
# (one-minute data) resolution every metric here has.
COUNT_PERIOD = 300
# The run metrics (EMF) are summed per hour: the freshness unit, and the quarantine ratio's window.
HOUR = 3600


@dataclass(frozen=True, kw_only=True)
class DeadLetterQueue:
    """A dead-letter queue to alarm on: its physical name (the AWS/SQS QueueName dimension) and what
    waits in it, in words a reader understands ("S3 events that did not start the render-logs run")."""

    name: pulumi.Input[str]
    holds: str

    @classmethod
    def of_schedule(cls, name: pulumi.Input[str], pipeline: str) -> DeadLetterQueue:
        """A schedule's queue (orchestration.Schedule): the scheduled starts that could not start `pipeline`'s run."""
        return cls(name=name, holds=f"scheduled starts of the {pipeline} run that could not start it")


@dataclass(frozen=True, kw_only=True)
class Freshness:
    """Alarm when the pipeline's `job` has emitted a Sum of `metric` below 1 in each of the last
    `hours` hours (job_runtime.metrics names; missing data counts as nothing new)."""

    job: str
    metric: str
    hours: int


@dataclass(frozen=True, kw_only=True)
class PipelineWatch:
    """What the monitoring of one pipeline watches."""

    # The registry name ("render-logs"): the Pipeline dimension of its run metrics and the alarm names.
    pipeline: str
    # Its Step Functions state machines (ARNs): ExecutionsFailed / TimedOut / Aborted.
    state_machine_arns: tuple[pulumi.Input[str], ...] = ()
    # Its EventBridge and Scheduler dead-letter queues.
    dead_letter_queues: tuple[DeadLetterQueue, ...] = ()
    # Physical names of its Glue jobs and Batch job definitions: a failed run of any of them alarms.
    glue_job_names: tuple[pulumi.Input[str], ...] = ()
    batch_job_definition_names: tuple[pulumi.Input[str], ...] = ()
    # Job dimension values (job_runtime.metrics) of the jobs whose quarantined/in row ratio alarms
    # above the threshold.
    quarantine_jobs: tuple[str, ...] = ()
    quarantine_ratio_threshold: float = 0.05
    freshness: Freshness | None = None


# --- topics ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AlertTopicsArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The estate key: both topics are encrypted with it (its policy admits EventBridge and CloudWatch).
    kms_key_arn: pulumi.Input[str]
    # E-mail subscriptions of the alerts topic (each address confirms once). Default: none.
    alert_emails: tuple[str, ...] = ()
    # E-mail subscriptions of the notifications topic, when it exists. Default: none.
    notification_emails: tuple[str, ...] = ()
    # Whether routine success news has a topic at all (the `successNotifications` setting). Default: yes.
    success_notifications: bool = True


def topic_policy(
    topic_arn: pulumi.Input[str], account_id: pulumi.Input[str], region: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Who may publish to an estate topic: this account's EventBridge rules and CloudWatch alarms, each
    acting as its service; the estate's own roles through their IAM policies (the account owns the
    topic); nobody without TLS."""
    return document(
        [
            {
                "Sid": "EventBridgeRulesOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "CloudWatchAlarmsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": alarm_source_arn(region, account_id)},
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    )


def _previous_urn(child: str, name: str) -> str:
    """The URN the success-news topic's resources had under the former orchestration.NotificationTopic
    component ("notifications"), so that the topic, its policy and its confirmed subscriptions carry over."""
    chain = "dataplatform:orchestration:NotificationTopic$aws:sns/topic:Topic"
    typ = chain if child == "topic" else f"{chain}${child}"
    return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{typ}::{name}"


class AlertTopics(pulumi.ComponentResource):
    """Two KMS-encrypted SNS topics: `alerts`, for every failure (a pager or the on-call's e-mail), and
    `notifications`, for routine success news, only when the stack wants it. This account's EventBridge
    rules and CloudWatch alarms may publish to both; publishing requires TLS."""

    alerts_topic_arn: pulumi.Output[str]
    # None when the stack has no success news (successNotifications: false).
    notifications_topic_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AlertTopicsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:monitoring:AlertTopics", name, None, opts)
        self.alerts_topic_arn = self._topic(name, "alerts", args, args.alert_emails, carried_over=False)
        self.notifications_topic_arn = (
            self._topic(name, "notifications", args, args.notification_emails, carried_over=True)
            if args.success_notifications
            else None
        )
        outputs: dict[str, Any] = {"alerts_topic_arn": self.alerts_topic_arn}
        if self.notifications_topic_arn is not None:
            outputs["notifications_topic_arn"] = self.notifications_topic_arn
        self.register_outputs(outputs)

    def _topic(
        self, name: str, kind: str, args: AlertTopicsArgs, emails: tuple[str, ...], carried_over: bool
    ) -> pulumi.Output[str]:
        def aliases(child: str, old_name: str) -> list[pulumi.Input[str] | pulumi.Alias] | None:
            return [_previous_urn(child, old_name)] if carried_over else None

        topic = aws.sns.Topic(
            f"{name}-{kind}",
            name_prefix=naming.physical_prefix(kind, 256),
            kms_master_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, aliases=aliases("topic", "notifications-topic")),
        )
        aws.sns.TopicPolicy(
            f"{name}-{kind}-policy",
            arn=topic.arn,
            policy=topic_policy(topic.arn, args.account_id, args.region),
            opts=pulumi.ResourceOptions(
                parent=topic, aliases=aliases("aws:sns/topicPolicy:TopicPolicy", "notifications-topic-policy")
            ),
        )
        for i, email in enumerate(emails):
            aws.sns.TopicSubscription(
                f"{name}-{kind}-email-{i}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=pulumi.ResourceOptions(
                    parent=topic,
                    aliases=aliases("aws:sns/topicSubscription:TopicSubscription", f"notifications-email-{i}"),
                ),
            )
        return topic.arn


# --- alarms and dashboard ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    # Where every alarm sends ALARM and OK (AlertTopics.alerts_topic_arn).
    alerts_topic_arn: pulumi.Input[str]
    region: pulumi.Input[str]
    account_id: pulumi.Input[str]
    # The Pulumi stack: the Stack dimension of the run metrics (job_runtime.metrics).
    stack: str
    # One entry per enabled pipeline. Default: none (only the stack-wide widgets).
    pipelines: tuple[PipelineWatch, ...] = ()
    # The Redshift Serverless workgroup whose RPU use the dashboard graphs; None: no warehouse widget.
    warehouse_workgroup: pulumi.Input[str] | None = None
    # The runbook the alarm descriptions point to ("Runbook: <runbook>#<section>", one section per name in
    # RUNBOOK_SECTIONS): a path in the program's repository or a URL. Default: this estate's docs/runbook.md.
    runbook: str = RUNBOOK


def _emf_search(stack: str, pipeline: str, metric: str, stat: str) -> str:
    """A dashboard SEARCH over every job of one pipeline in one stack, in the run metrics' schema
    (CloudWatch, "CloudWatch search expression syntax",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html)."""
    schema = ",".join((metrics.NAMESPACE, *metrics.DIMENSIONS))
    return f'SEARCH(\'{{{schema}}} MetricName="{metric}" Stack="{stack}" Pipeline="{pipeline}"\', \'{stat}\', {HOUR})'


class Monitoring(pulumi.ComponentResource):
    """The stack's CloudWatch alarms, all notifying the alerts topic, and one dashboard.

    Per pipeline: every dead-letter queue holding a message; every state machine run that failed, timed
    out or was aborted; any failed run of its Glue jobs or Batch jobs (an EventBridge rule per kind,
    alarmed on its AWS/Events TriggeredRules count, the pattern of AWS CDK's Glue Job.metricFailure);
    no new input for the freshness window; a quarantined-row ratio above its threshold. The dashboard
    has a row per pipeline (runs, rows loaded and quarantined, duration, dead letters) and the
    warehouse's RPU use."""

    alarm_names: list[str]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self._alarms: list[aws.cloudwatch.MetricAlarm] = []
        self.alarm_names = []
        seen = [w.pipeline for w in args.pipelines]
        if len(set(seen)) != len(seen):
            raise ValueError(f"Monitoring {name}: each pipeline is watched once, got {seen}")

        rows = [self._watch(watch) for watch in args.pipelines]

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=naming.physical("pipelines", DASHBOARD_NAME_MAX),
            dashboard_body=pulumi.Output.json_dumps(self._body(rows)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"alarm_names": self.alarm_names, "dashboard_name": self.dashboard_name})

    # --- one pipeline ---

    def _watch(self, watch: PipelineWatch) -> list[dict[str, Any]]:
        """The pipeline's alarms; returns its dashboard widgets."""
        p = watch.pipeline
        if not 0 <= watch.quarantine_ratio_threshold < 1:
            raise ValueError(
                f"Monitoring {self._name}: {p} quarantine_ratio_threshold must be at least 0 and below 1, "
                f"got {watch.quarantine_ratio_threshold}"
            )
        for i, dlq in enumerate(watch.dead_letter_queues):
            self._alarm(
                f"{p}-dlq-{i + 1}-not-empty",
                pulumi.Output.concat(
                    f"[{p}] Dead-letter queue ",
                    dlq.name,
                    f" holds messages: {dlq.holds}. SQS deletes them when the queue's retention period ends. "
                    "Look at them in the SQS console (Queues > ",
                    dlq.name,
                    " > Send and receive messages), fix the cause, then redrive them. ",
                    self._runbook("dead-letter-queue"),
                ),
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": dlq.name},
                statistic="Maximum",
                treat_missing_data="notBreaching",
            )
        many = len(watch.state_machine_arns) > 1
        for i, arn in enumerate(watch.state_machine_arns):
            run = f"run-{i + 1}" if many else "run"
            for metric, what in (
                ("ExecutionsFailed", "failed"),
                ("ExecutionsTimedOut", "timed-out"),
                ("ExecutionsAborted", "aborted"),
            ):
                self._alarm(
                    f"{p}-{run}-{what}",
                    pulumi.Output.concat(
                        f"[{p}] A run of state machine ",
                        arn,
                        f" {what.replace('-', ' ')} in the last {COUNT_PERIOD // 60} minutes. Open it in the "
                        "Step Functions console (State machines > Executions, filter on the status) to see "
                        "the failed step, its error and the link to its logs. ",
                        self._runbook("state-machine-failed"),
                    ),
                    namespace="AWS/States",
                    metric_name=metric,
                    dimensions={"StateMachineArn": arn},
                    statistic="Sum",
                    treat_missing_data="notBreaching",
                )
        # (kind, rule): the job-failure rules the alarms and the dashboard row count.
        failure_rules: list[tuple[str, aws.cloudwatch.EventRule]] = []
        if watch.glue_job_names:
            rule = self._failure_rule(
                f"{p}-glue",
                f"Glue job runs of the {p} pipeline that ended {', '.join(GLUE_JOB_FAILED_STATES)}",
                glue_state_pattern("job", watch.glue_job_names, "failed"),
            )
            failure_rules.append(("glue", rule))
            groups = [
                pulumi.Output.from_input(n).apply(lambda job: f"{job_log_group_prefix(job)}/error")
                for n in watch.glue_job_names
            ]
            self._alarm(
                f"{p}-glue-job-failed",
                pulumi.Output.concat(
                    f"[{p}] A Glue job run ended {'/'.join(GLUE_JOB_FAILED_STATES)} (job ",
                    pulumi.Output.all(*watch.glue_job_names).apply(", ".join),
                    "). See the run's error in the Glue console (ETL jobs > the job > Runs) and its driver log: "
                    "CloudWatch log group ",
                    pulumi.Output.all(*groups).apply(" or ".join),
                    ", stream <run id>-driver. ",
                    self._runbook("glue-job-failed"),
                ),
                **self._rule_metric(rule),
            )
        if watch.batch_job_definition_names:
            prefixes = [
                pulumi.Output.concat(
                    "arn:aws:batch:", self._args.region, ":", self._args.account_id, ":job-definition/", n, ":"
                )
                for n in watch.batch_job_definition_names
            ]
            rule = self._failure_rule(
                f"{p}-batch",
                f"Batch jobs of the {p} pipeline that FAILED after their last attempt",
                {
                    "source": ["aws.batch"],
                    "detail-type": ["Batch Job State Change"],
                    "detail": {
                        "status": list(BATCH_FAILED_STATUSES),
                        "jobDefinition": [{"prefix": prefix} for prefix in prefixes],
                    },
                },
            )
            failure_rules.append(("batch", rule))
            self._alarm(
                f"{p}-batch-job-failed",
                pulumi.Output.concat(
                    f"[{p}] A Batch job failed after its last attempt (job definition ",
                    pulumi.Output.all(*watch.batch_job_definition_names).apply(", ".join),
                    "). Its status reason, exit code and log stream are in the AWS Batch console (Jobs, status "
                    f"FAILED): exit {errors.EXIT_BAD_INPUT} means bad input and "
                    f"{errors.EXIT_USAGE} bad arguments (a retry cannot help), "
                    f"{errors.EXIT_TRANSIENT} a transient failure that outlasted the retries, "
                    f"{errors.EXIT_FAILED} a failure that needs a person. ",
                    self._runbook("batch-job-failed"),
                ),
                **self._rule_metric(rule),
            )
        if watch.freshness:
            self._freshness(watch.pipeline, watch.freshness)
        for job in watch.quarantine_jobs:
            self._quarantine(p, job, watch.quarantine_ratio_threshold)
        return self._row(watch, failure_rules)

    def _freshness(self, pipeline: str, fresh: Freshness) -> None:
        low, high = FRESHNESS_HOURS_RANGE
        if not low <= fresh.hours <= high:
            raise ValueError(
                f"Monitoring {self._name}: {pipeline} freshness hours must be {low} to {high} "
                f"(a CloudWatch alarm looks back at most 7 days), got {fresh.hours}"
            )
        if fresh.metric not in metrics.UNITS:
            raise ValueError(f"Monitoring {self._name}: {fresh.metric} is not a job_runtime.metrics metric")
        self._alarm(
            f"{pipeline}-stale",
            f"[{pipeline}] No new input for {fresh.hours} hours: job {fresh.job} loaded no new "
            f"{fresh.metric.lower()} (metric {metrics.NAMESPACE} {fresh.metric}) in any of the last "
            f"{fresh.hours} hours, or did not run. Check the {pipeline} state machine's recent executions "
            "and the schedule's dead-letter queue, then whether the source published. " + self._runbook("no-new-data"),
            namespace=metrics.NAMESPACE,
            metric_name=fresh.metric,
            dimensions=metrics.dimensions(self._args.stack, pipeline, fresh.job),
            statistic="Sum",
            period=HOUR,
            evaluation_periods=fresh.hours,
            datapoints_to_alarm=fresh.hours,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
        )

    def _quarantine(self, pipeline: str, job: str, threshold: float) -> None:
        dims = metrics.dimensions(self._args.stack, pipeline, job)

        def rows(metric_id: str, metric: str) -> dict[str, Any]:
            return {
                "id": metric_id,
                "metric": {
                    "namespace": metrics.NAMESPACE,
                    "metric_name": metric,
                    "dimensions": dims,
                    "stat": "Sum",
                    "period": HOUR,
                },
                "return_data": False,
            }

        self._alarm(
            f"{pipeline}-{job}-quarantine-ratio",
            f"[{pipeline}] Job {job} quarantined more than {threshold * 100:g}% of its input rows in the last hour "
            f"(metrics {metrics.ROWS_QUARANTINED} / {metrics.ROWS_IN}). The rows and the reason for each are "
            f"under quarantine/ in the processed bucket; the run's summary line is in the job's log. "
            + self._runbook("quarantine-ratio"),
            metric_queries=[
                rows("quarantined", metrics.ROWS_QUARANTINED),
                rows("rows_in", metrics.ROWS_IN),
                {
                    # A run with no input rows has nothing to judge: the ratio is 0, never a division by 0
                    # (CloudWatch metric math IF, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html).
                    "id": "ratio",
                    "expression": "IF(rows_in > 0, quarantined / rows_in, 0)",
                    "label": f"{job} quarantined / in",
                    "return_data": True,
                },
            ],
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            treat_missing_data="notBreaching",
        )

    def _failure_rule(self, rule: str, description: str, pattern: dict[str, Any]) -> aws.cloudwatch.EventRule:
        """A rule without targets, `<pipeline>-<kind>-failed`: it exists to be counted (AWS/Events TriggeredRules)."""
        return aws.cloudwatch.EventRule(
            f"{self._name}-{rule}-failed",
            name_prefix=naming.physical_prefix(rule, RULE_NAME_MAX),
            description=description,
            event_pattern=pulumi.Output.json_dumps(pattern),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _rule_metric(rule: aws.cloudwatch.EventRule) -> dict[str, Any]:
        """The rule's match count (EventBridge, "Monitoring Amazon EventBridge": TriggeredRules by RuleName,
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html)."""
        return {
            "namespace": "AWS/Events",
            "metric_name": "TriggeredRules",
            "dimensions": {"RuleName": rule.name},
            "statistic": "Sum",
            "treat_missing_data": "notBreaching",
        }

    def _alarm(self, suffix: str, description: pulumi.Input[str], **metric: Any) -> None:
        alarm_name = naming.physical(suffix, ALARM_NAME_MAX)
        if alarm_name in self.alarm_names:
            raise ValueError(f"Monitoring {self._name}: two alarms would be named {alarm_name}")
        settings: dict[str, Any] = {
            "period": COUNT_PERIOD,
            "evaluation_periods": 1,
            "comparison_operator": "GreaterThanThreshold",
            "threshold": 0,
            **metric,
        }
        if "metric_queries" in settings:  # a metric-math alarm carries its periods in its queries
            del settings["period"]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            name=alarm_name,
            alarm_description=description,
            alarm_actions=[self._args.alerts_topic_arn],
            ok_actions=[self._args.alerts_topic_arn],
            opts=pulumi.ResourceOptions(parent=self),
            **settings,
        )
        self._alarms.append(alarm)
        self.alarm_names.append(alarm_name)

    def _runbook(self, section: str) -> str:
        if section not in RUNBOOK_SECTIONS:
            raise ValueError(f"{section} is not a runbook section: {RUNBOOK_SECTIONS}")
        return f"Runbook: {self._args.runbook}#{section}"

    # --- dashboard ---

    def _metric_widget(self, title: str, metrics_: Sequence[Any], stat: str, period: int) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 6,
            "height": 6,
            "properties": {
                "title": title,
                "region": self._args.region,
                "view": "timeSeries",
                "stacked": False,
                "stat": stat,
                "period": period,
                "metrics": list(metrics_),
            },
        }

    def _row(
        self, watch: PipelineWatch, failure_rules: list[tuple[str, aws.cloudwatch.EventRule]]
    ) -> list[dict[str, Any]]:
        """Runs (with its job-failure rules' counts), rows, duration and dead letters of one pipeline."""
        p, stack = watch.pipeline, self._args.stack
        runs: list[Any] = []
        for arn in watch.state_machine_arns:
            for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
                label = {"label": metric.removeprefix("Executions")}
                runs.append(["AWS/States", metric, "StateMachineArn", arn, label])
        for kind, rule in failure_rules:
            runs.append(["AWS/Events", "TriggeredRules", "RuleName", rule.name, {"label": f"{kind} job failed"}])
        widgets = [
            {
                "type": "text",
                "width": 24,
                "height": 1,
                "properties": {"markdown": f"## {p}"},
            }
        ]
        if runs:
            widgets.append(self._metric_widget(f"{p}: runs", runs, "Sum", HOUR))
        widgets.append(
            self._metric_widget(
                f"{p}: rows loaded / quarantined",
                [
                    [{"expression": _emf_search(stack, p, metrics.ROWS_LOADED, "Sum"), "id": "loaded"}],
                    [{"expression": _emf_search(stack, p, metrics.ROWS_QUARANTINED, "Sum"), "id": "quarantined"}],
                ],
                "Sum",
                HOUR,
            )
        )
        widgets.append(
            self._metric_widget(
                f"{p}: job duration (s)",
                [[{"expression": _emf_search(stack, p, metrics.DURATION, "Maximum"), "id": "duration"}]],
                "Maximum",
                HOUR,
            )
        )
        if watch.dead_letter_queues:
            widgets.append(
                self._metric_widget(
                    f"{p}: dead letters waiting",
                    [
                        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.name, {"label": q.holds}]
                        for q in watch.dead_letter_queues
                    ],
                    "Maximum",
                    COUNT_PERIOD,
                )
            )
        return widgets

    def _body(self, rows: list[list[dict[str, Any]]]) -> dict[str, Any]:
        """The dashboard body (CloudWatch, "Dashboard Body Structure and Syntax"): an alarm status strip,
        a row per pipeline, the warehouse's RPU use; widgets laid out left to right on the 24-column grid."""
        widgets: list[dict[str, Any]] = []
        arns = [a.arn for a in self._alarms]
        for start in range(0, len(arns), ALARM_WIDGET_MAX):
            widgets.append(
                {
                    "type": "alarm",
                    "width": 24,
                    "height": 3,
                    "properties": {"title": "Alarms", "alarms": arns[start : start + ALARM_WIDGET_MAX]},
                }
            )
        for row in rows:
            widgets.extend(row)
        if self._args.warehouse_workgroup is not None:
            widgets.append(
                {
                    "type": "text",
                    "width": 24,
                    "height": 1,
                    "properties": {"markdown": "## Warehouse"},
                }
            )
            widgets.append(
                self._metric_widget(
                    "Redshift Serverless RPUs in use",
                    [
                        [
                            "AWS/Redshift-Serverless",
                            "ComputeCapacity",
                            "Workgroup",
                            self._args.warehouse_workgroup,
                            {"stat": "Maximum", "label": "RPUs (max)"},
                        ]
                    ],
                    "Maximum",
                    COUNT_PERIOD,
                )
            )
        return {"start": "-P7D", "periodOverride": "inherit", "widgets": _laid_out(widgets)}


def _laid_out(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """x/y positions: widgets fill rows of 24 columns left to right; a full-width widget starts a row."""
    x = y = row_height = 0
    placed = []
    for widget in widgets:
        if x + widget["width"] > 24:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x += widget["width"]
        row_height = max(row_height, widget["height"])
    return placed
