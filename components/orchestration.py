"""Orchestration: S3-event rules, schedules, Glue state-change announcements, and Step Functions state machines.

`pipeline_definition` builds the Amazon States Language for a linear pipeline so that no Task can
be written without Retry and without a Catch that routes to the failure alert, no polling loop runs
without a bound, and no execution runs longer than its `TimeoutSeconds`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import MAX_RUN_MINUTES
from components.iam import document, service_role, statement

DEFAULT_RETRY = {"IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2.0, "JitterStrategy": "FULL"}


def _dead_letter_queue(name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource) -> aws.sqs.Queue:
    return aws.sqs.Queue(
        f"{name}-dlq",
        name_prefix=naming.physical_prefix(f"{name}-dlq", 80),
        kms_master_key_id=kms_key_arn,
        message_retention_seconds=14 * 24 * 3600,  # the maximum: time for a person to look
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _allow_delivery(name: str, queue: aws.sqs.Queue, service: str, source_arns: list[pulumi.Input[str]]) -> None:
    aws.sqs.QueuePolicy(
        f"{name}-dlq-policy",
        queue_url=queue.url,
        policy=document(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": source_arns}},
                }
            ]
        ),
        opts=pulumi.ResourceOptions(parent=queue),
    )


def _start_encrypted_execution(key_arn: pulumi.Input[str]) -> dict[str, Any]:
    """What a caller of StartExecution needs on the customer key a state machine is encrypted with
    (Step Functions, "Data at rest encryption": StartExecution -> kms:GenerateDataKey, kms:Decrypt)."""
    return statement(["kms:Decrypt", "kms:GenerateDataKey"], [key_arn])


@dataclass(frozen=True, kw_only=True)
class ObjectCreatedRuleArgs:
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    # Only objects under this key prefix (and with one of the suffixes, if given) match.
    key_prefix: str
    key_suffixes: tuple[str, ...] = ()
    # What the rule starts: a state machine (states:StartExecution) or a Glue workflow (glue:notifyEvent).
    target_arn: pulumi.Input[str]
    target_action: str = "states:StartExecution"
    # The customer key the target state machine is encrypted with (StateMachine always has one; None
    # for a workflow): StartExecution also needs kms:GenerateDataKey and kms:Decrypt on it.
    target_kms_key_arn: pulumi.Input[str] | None = None
    # How long and how often EventBridge keeps trying to start the target before dead-lettering.
    maximum_event_age_seconds: int = 3600
    maximum_retry_attempts: int = 10


def object_created_pattern(bucket: Any, key_prefix: str, key_suffixes: tuple[str, ...] = ()) -> dict[str, Any]:
    """EventBridge pattern for S3 "Object Created" events under a prefix (with optional suffixes)."""
    key: list[Any] = [{"prefix": key_prefix}]
    if key_suffixes:
        # EventBridge ORs the entries of one list, so prefix+suffix needs a wildcard per suffix.
        key = [{"wildcard": f"{key_prefix}*{suffix}"} for suffix in key_suffixes]
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": key}},
    }


class ObjectCreatedRule(pulumi.ComponentResource):
    """An EventBridge rule for objects created under a prefix that starts a state machine or a Glue
    workflow, with a retry policy and a KMS-encrypted dead-letter queue so no event is silently lost."""

    rule_arn: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]
    # The queue's physical name: the QueueName dimension of its CloudWatch metrics.
    dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObjectCreatedRuleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:orchestration:ObjectCreatedRule", name, None, opts)
        if args.target_action == "states:StartExecution" and args.target_kms_key_arn is None:
            raise ValueError(f"ObjectCreatedRule {name}: give target_kms_key_arn, the key the state machine uses")
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name_prefix=naming.physical_prefix(name, 64),
            description=f"New objects under {args.key_prefix} start {name}",
            event_pattern=pulumi.Output.json_dumps(
                object_created_pattern(args.bucket_name, args.key_prefix, args.key_suffixes)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = service_role(
            f"{name}-role",
            f"{name}-events",
            "events.amazonaws.com",
            args.account_id,
            [
                statement([args.target_action], [args.target_arn]),
                *([_start_encrypted_execution(args.target_kms_key_arn)] if args.target_kms_key_arn else []),
            ],
            parent=self,
        )
        dlq = _dead_letter_queue(name, args.kms_key_arn, self)
        _allow_delivery(name, dlq, "events.amazonaws.com", [rule.arn])
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=args.target_arn,
            role_arn=role.arn,
            dead_letter_config={"arn": dlq.arn},
            retry_policy={
                "maximum_event_age_in_seconds": args.maximum_event_age_seconds,
                "maximum_retry_attempts": args.maximum_retry_attempts,
            },
            opts=pulumi.ResourceOptions(parent=rule),
        )
        self.rule_arn = rule.arn
        self.dead_letter_queue_arn = dlq.arn
        self.dead_letter_queue_name = dlq.name
        self.register_outputs(
            {
                "rule_arn": self.rule_arn,
                "dead_letter_queue_arn": self.dead_letter_queue_arn,
                "dead_letter_queue_name": self.dead_letter_queue_name,
            }
        )


@dataclass(frozen=True, kw_only=True)
class ScheduleArgs:
    account_id: pulumi.Input[str]
    # Encrypts the schedule's payload and its dead-letter queue.
    kms_key_arn: pulumi.Input[str]
    # rate(...), cron(...) or at(...); validated by components.aws_limits.schedule_expression_problem.
    expression: str
    timezone: str = "UTC"
    state_machine_arn: pulumi.Input[str]
    # The customer key the state machine is encrypted with (StateMachine always has one).
    state_machine_kms_key_arn: pulumi.Input[str]
    # JSON input for each execution.
    input: pulumi.Input[str] = "{}"
    maximum_event_age_seconds: int = 3600
    maximum_retry_attempts: int = 10


class Schedule(pulumi.ComponentResource):
    """An EventBridge Scheduler schedule that starts a state machine, KMS-encrypted, with a retry
    policy and a dead-letter queue.

    Scheduler does everything as the schedule's execution role: it decrypts the payload with the
    schedule's key, starts the (possibly encrypted) state machine, and sends dead letters to the
    encrypted queue. So that role holds all of it, and the queue has no resource policy."""

    schedule_arn: pulumi.Output[str]
    # The dead-letter queue's physical name: the QueueName dimension of its CloudWatch metrics.
    dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: ScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:orchestration:Schedule", name, None, opts)
        from components.aws_limits import schedule_expression_problem

        problem = schedule_expression_problem(args.expression)
        if problem:
            raise ValueError(f"Schedule {name}: {args.expression!r} {problem}")
        dlq = _dead_letter_queue(name, args.kms_key_arn, self)
        role = service_role(
            f"{name}-role",
            f"{name}-scheduler",
            "scheduler.amazonaws.com",
            args.account_id,
            [
                statement(["states:StartExecution"], [args.state_machine_arn]),
                _start_encrypted_execution(args.state_machine_kms_key_arn),
                statement(["sqs:SendMessage"], [dlq.arn]),
                # Decrypt: the payload; GenerateDataKey and Decrypt: SSE-KMS of the dead-letter queue.
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
            ],
            parent=self,
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name_prefix=naming.physical_prefix(name, 64),
            schedule_expression=args.expression,
            schedule_expression_timezone=args.timezone,
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=args.kms_key_arn,
            target={
                "arn": args.state_machine_arn,
                "role_arn": role.arn,
                "input": args.input,
                "dead_letter_config": {"arn": dlq.arn},
                "retry_policy": {
                    "maximum_event_age_in_seconds": args.maximum_event_age_seconds,
                    "maximum_retry_attempts": args.maximum_retry_attempts,
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.schedule_arn = schedule.arn
        self.dead_letter_queue_name = dlq.name
        self.register_outputs(
            {"schedule_arn": self.schedule_arn, "dead_letter_queue_name": self.dead_letter_queue_name}
        )


@dataclass(frozen=True)
class TaskStep:
    """One Task state: `resource` is a service integration ARN such as
    arn:aws:states:::batch:submitJob.sync; `retry_on` are the errors worth retrying."""

    name: str
    resource: str
    parameters: dict[str, Any]
    retry_on: tuple[str, ...] = ("States.TaskFailed",)
    result_path: str | None = None


# A Standard execution's history holds at most 25,000 events (Step Functions service quotas, "Quotas
# related to state machine executions": https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html);
# one round of a poll loop (Wait, Count, the check Task, Ready, Decide, Again) writes at most
# POLL_ROUND_EVENTS of them (a state's entered and exited events, a Task's scheduled, started and
# succeeded ones). One poll checks at most MAX_POLL_ROUNDS times, and all the polls of a machine together
# write at most POLL_HISTORY_EVENTS, leaving the rest of the history to the other states and retries.
HISTORY_EVENTS = 25_000
POLL_ROUND_EVENTS = 15
MAX_POLL_ROUNDS = 1000
POLL_HISTORY_EVENTS = 20_000


def state_path(step_name: str) -> str:
    """The execution-state path named after a step: "CatalogLanding" -> "$.catalogLanding"."""
    return f"$.{step_name[0].lower()}{step_name[1:]}"


@dataclass(frozen=True)
class PollStep:
    """Work without a `.sync` integration (a crawler run, a Redshift Data API statement): `start` it,
    then every `wait_seconds` run `check` until the Choice rule `succeeded` (go on) or `failed` (alert
    the failure with the check's result as the cause) holds on the check's result.

    The rules are only read once every path they name is present (a Choice on a missing path raises
    States.Runtime, which no Catch handles): until then the step keeps waiting. It waits at most
    `max_wait_seconds` (max_wait_seconds // wait_seconds rounds, counted in the state with
    States.MathAdd); then it alerts "<name> did not finish within N minutes"."""

    name: str
    start: TaskStep
    check: TaskStep
    succeeded: dict[str, Any]
    failed: dict[str, Any]
    max_wait_seconds: int
    wait_seconds: int = 30

    def __post_init__(self) -> None:
        if self.wait_seconds < 1 or self.max_wait_seconds < self.wait_seconds:
            raise ValueError(
                f"PollStep {self.name}: wait_seconds must be at least 1 and max_wait_seconds at least wait_seconds"
            )
        if self.rounds > MAX_POLL_ROUNDS:
            raise ValueError(
                f"PollStep {self.name}: {self.rounds} checks (max_wait_seconds // wait_seconds) exceed "
                f"{MAX_POLL_ROUNDS}: an execution's history holds at most {HISTORY_EVENTS} events"
            )

    @property
    def rounds(self) -> int:
        """How many times the step checks before it gives up."""
        return self.max_wait_seconds // self.wait_seconds

    @property
    def counter_path(self) -> str:
        """Where the execution's state counts the checks made so far: {"count": n}."""
        return f"{state_path(self.name)}Polls"

    @property
    def bound_text(self) -> str:
        """The bound as a person reads it: "30 minutes", "90 seconds"."""
        minutes, seconds = divmod(self.max_wait_seconds, 60)
        if seconds:
            return f"{self.max_wait_seconds} seconds"
        return f"{minutes} minute" + ("" if minutes == 1 else "s")


# Service errors worth retrying when calling the Batch and Glue APIs; a failed job itself is retried
# by its own retry strategy (Batch exit codes, Glue max_retries).
BATCH_API_ERRORS = ("Batch.AWSBatchException", "Batch.TooManyRequestsException", "Batch.ServerException")
GLUE_API_ERRORS = (
    "Glue.AWSGlueException",
    "Glue.ConcurrentRunsExceededException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    "Glue.ThrottlingException",
)


def batch_job_step(
    name: str, job_name: str, queue_arn: Any, definition_arn: Any, parameters: dict[str, Any] | None = None
) -> TaskStep:
    """Submit a Batch job and wait for its real outcome (`submitJob.sync`)."""
    submit = {"JobName": job_name, "JobQueue": queue_arn, "JobDefinition": definition_arn, "PropagateTags": True}
    if parameters:
        submit["Parameters"] = parameters
    return TaskStep(
        name=name,
        resource="arn:aws:states:::batch:submitJob.sync",
        parameters=submit,
        retry_on=BATCH_API_ERRORS,
    )


def batch_job_statements(
    account_id: pulumi.Input[str], region: pulumi.Input[str], queue_arn: Any, definition_names: list[Any]
) -> list[dict[str, Any]]:
    """What a state machine needs to run `batch_job_step`s for these job definitions (any revision)."""
    account, region = pulumi.Output.from_input(account_id), pulumi.Output.from_input(region)
    batch = pulumi.Output.concat("arn:aws:batch:", region, ":", account, ":")
    jobs = pulumi.Output.concat(batch, "job/*")
    definitions = [pulumi.Output.concat(batch, "job-definition/", n, ":*") for n in definition_names]
    return [
        # SubmitJob is authorised on the queue, the definition and the new job.
        statement(["batch:SubmitJob"], [queue_arn, *definitions, jobs]),
        statement(["batch:TagResource", "batch:TerminateJob"], [jobs]),
        statement(["batch:DescribeJobs"], ["*"]),
        # submitJob.sync waits through this managed rule.
        statement(
            ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
            [
                pulumi.Output.concat(
                    "arn:aws:events:", region, ":", account, ":rule/StepFunctionsGetEventsForBatchJobsRule"
                )
            ],
        ),
    ]


def glue_job_step(name: str, job_name: Any, arguments: dict[str, Any] | None = None) -> TaskStep:
    """Start a Glue job run and wait for its outcome (`startJobRun.sync`)."""
    parameters: dict[str, Any] = {"JobName": job_name}
    if arguments:
        parameters["Arguments"] = arguments
    return TaskStep(
        name=name,
        resource="arn:aws:states:::glue:startJobRun.sync",
        parameters=parameters,
        retry_on=GLUE_API_ERRORS,
    )


def glue_job_statements(job_arns: list[Any]) -> list[dict[str, Any]]:
    return [statement(["glue:BatchStopJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:StartJobRun"], job_arns)]


def crawl_step(name: str, crawler_name: Any, max_wait_seconds: int = 3600, wait_seconds: int = 30) -> PollStep:
    """Run a Glue crawler and wait until it is READY again; a crawl that did not succeed fails the step.
    A crawler that never finished a crawl has no `LastCrawl`: the poll keeps waiting until it has one.
    A crawl still running after `max_wait_seconds` (an hour by default) fails the step."""
    result = state_path(name)
    return PollStep(
        name=name,
        start=TaskStep(
            name=name,
            resource="arn:aws:states:::aws-sdk:glue:startCrawler",
            parameters={"Name": crawler_name},
            # A crawler already running (another execution) is retried until it is free.
            retry_on=("Glue.CrawlerRunningException", "Glue.ThrottlingException", "Glue.InternalServiceException"),
        ),
        check=TaskStep(
            name=f"{name}Check",
            resource="arn:aws:states:::aws-sdk:glue:getCrawler",
            parameters={"Name": crawler_name},
            retry_on=("Glue.ThrottlingException", "Glue.InternalServiceException"),
            result_path=result,
        ),
        succeeded={
            "And": [
                {"Variable": f"{result}.Crawler.State", "StringEquals": "READY"},
                {"Variable": f"{result}.Crawler.LastCrawl.Status", "StringEquals": "SUCCEEDED"},
            ]
        },
        failed={"Variable": f"{result}.Crawler.State", "StringEquals": "READY"},
        max_wait_seconds=max_wait_seconds,
        wait_seconds=wait_seconds,
    )


def _task_state(step: TaskStep, next_state: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": step.resource,
        "Parameters": step.parameters,
        "ResultPath": step.result_path,
        "Retry": [{"ErrorEquals": list(step.retry_on), **DEFAULT_RETRY}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "NotifyFailure"}],
        "Next": next_state,
    }


def choice_variables(rule: dict[str, Any]) -> list[str]:
    """Every `Variable` path a Choice rule reads, nested And/Or/Not included, in order, once each."""
    found = [rule["Variable"]] if "Variable" in rule else []
    for nested in [*rule.get("And", []), *rule.get("Or", []), *([rule["Not"]] if "Not" in rule else [])]:
        found += choice_variables(nested)
    return list(dict.fromkeys(found))


def present(paths: list[str]) -> dict[str, Any]:
    """A Choice rule that holds when every path exists (IsPresent itself never fails on a missing path)."""
    rules = [{"Variable": path, "IsPresent": True} for path in paths]
    return rules[0] if len(rules) == 1 else {"And": rules}


def _poll_states(step: PollStep, next_state: str) -> dict[str, Any]:
    started, wait, count, check, ready, decide, again, failed, timed_out = (
        f"{step.name}{s}"
        for s in ("Started", "Wait", "Count", "Check", "Ready", "Decide", "Again", "Failed", "TimedOut")
    )
    counter = step.counter_path
    return {
        step.name: _task_state(step.start, started),
        # The counter is set here before any Choice reads it, so its path is always present.
        started: {"Type": "Pass", "Result": {"count": 0}, "ResultPath": counter, "Next": wait},
        wait: {"Type": "Wait", "Seconds": step.wait_seconds, "Next": count},
        count: {
            "Type": "Pass",
            "Parameters": {"count.$": f"States.MathAdd({counter}.count, 1)"},
            "ResultPath": counter,
            "Next": check,
        },
        check: _task_state(replace(step.check, name=check), ready),
        ready: {
            "Type": "Choice",
            "Choices": [{**present(choice_variables({"And": [step.succeeded, step.failed]})), "Next": decide}],
            "Default": again,
        },
        decide: {
            "Type": "Choice",
            "Choices": [{**step.succeeded, "Next": next_state}, {**step.failed, "Next": failed}],
            "Default": again,
        },
        again: {
            "Type": "Choice",
            "Choices": [{"Variable": f"{counter}.count", "NumericGreaterThanEquals": step.rounds, "Next": timed_out}],
            "Default": wait,
        },
        failed: {
            "Type": "Pass",
            "Parameters": {"Error": f"{step.name}Failed", "Cause.$": f"States.JsonToString({step.check.result_path})"},
            "ResultPath": "$.failure",
            "Next": "NotifyFailure",
        },
        timed_out: {
            "Type": "Pass",
            "Parameters": {
                "Error": f"{step.name}TimedOut",
                "Cause": f"{step.name} did not finish within {step.bound_text} "
                f"(checked every {step.wait_seconds} seconds, {step.rounds} times)",
            },
            "ResultPath": "$.failure",
            "Next": "NotifyFailure",
        },
    }


# The Step Functions integration that publishes to SNS: what _notify writes and published_topics reads.
_SNS_PUBLISH = "arn:aws:states:::sns:publish"


def _notify(topic_arn: Any, subject: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": _SNS_PUBLISH,
        "Parameters": {"TopicArn": topic_arn, "Subject": subject, "Message": message},
        "Retry": [{"ErrorEquals": ["States.ALL"], **DEFAULT_RETRY}],
    }


# A state machine's TimeoutSeconds: the whole seconds an execution may run before it fails with States.Timeout
# ("State machine structure": https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html);
# a Standard execution runs at most one year anyway (components.config.MAX_RUN_MINUTES).
MAX_EXECUTION_SECONDS = 60 * MAX_RUN_MINUTES


def pipeline_definition(
    pipeline: str,
    steps: Sequence[TaskStep | PollStep],
    *,
    alerts_topic_arn: Any,
    notifications_topic_arn: Any | None,
    timeout_seconds: int,
    input_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ASL for steps run in order; each Task has Retry, and a Catch to NotifyFailure, which publishes
    which step failed and why to the alerts topic, then fails the execution. Success publishes
    NotifySuccess to the notifications topic, or, without one, ends in the Succeeded state without
    publishing. An execution running longer than `timeout_seconds` ends as TimedOut (States.Timeout at
    the execution level, which no Catch sees: the state machine's ExecutionsTimedOut metric reports it).

    `input_defaults` fills keys the execution input lacks (a missing path would otherwise be a
    States.Runtime error, which no Catch can route to the failure alert)."""
    if not 1 <= timeout_seconds <= MAX_EXECUTION_SECONDS:
        raise ValueError(
            f"{pipeline}: timeout_seconds must be 1 to {MAX_EXECUTION_SECONDS} (a Standard execution runs "
            f"at most one year), got {timeout_seconds}"
        )
    poll_events = POLL_ROUND_EVENTS * sum(step.rounds for step in steps if isinstance(step, PollStep))
    if poll_events > POLL_HISTORY_EVENTS:
        raise ValueError(
            f"{pipeline}: its polls may write {poll_events} history events, more than {POLL_HISTORY_EVENTS} of "
            f"the {HISTORY_EVENTS} an execution holds: check less often or give up sooner"
        )
    states: dict[str, Any] = {}
    start = steps[0].name
    if input_defaults:
        start = "ApplyInputDefaults"
        states[start] = {
            "Type": "Pass",
            "Result": input_defaults,
            "ResultPath": "$.defaults",
            "Next": "MergeInputDefaults",
        }
        states["MergeInputDefaults"] = {
            "Type": "Pass",
            "Parameters": {"merged.$": "States.JsonMerge($.defaults, $$.Execution.Input, false)"},
            "OutputPath": "$.merged",
            "Next": steps[0].name,
        }
    success = "NotifySuccess" if notifications_topic_arn is not None else "Succeeded"
    for i, step in enumerate(steps):
        next_state = steps[i + 1].name if i + 1 < len(steps) else success
        if isinstance(step, PollStep):
            states.update(_poll_states(step, next_state))
        else:
            states[step.name] = _task_state(step, next_state)
    if notifications_topic_arn is not None:
        states["NotifySuccess"] = {
            **_notify(
                notifications_topic_arn,
                f"[{pipeline}] succeeded",
                {
                    "pipeline": pipeline,
                    "status": "SUCCEEDED",
                    "execution.$": "$$.Execution.Id",
                    "input.$": "$$.Execution.Input",
                },
            ),
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NotificationFailed"}],
            "End": True,
        }
    else:
        states["Succeeded"] = {"Type": "Succeed"}
    states["NotifyFailure"] = {
        **_notify(
            alerts_topic_arn,
            f"[{pipeline}] FAILED",
            {
                "pipeline": pipeline,
                "status": "FAILED",
                "execution.$": "$$.Execution.Id",
                "input.$": "$$.Execution.Input",
                "error.$": "$.failure.Error",
                "cause.$": "$.failure.Cause",
            },
        ),
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NotificationFailed"}],
        "Next": "Failed",
    }
    states["Failed"] = {"Type": "Fail", "Error": "PipelineFailed", "Cause": "a step failed; see the alert"}
    states["NotificationFailed"] = {
        "Type": "Fail",
        "Error": "NotificationFailed",
        "Cause": "could not publish the outcome to SNS; the state machine's ExecutionsFailed alarm reports it",
    }
    return {
        "Comment": f"{pipeline} pipeline",
        "StartAt": start,
        "TimeoutSeconds": timeout_seconds,
        "States": states,
    }


def published_topics(definition: dict[str, Any]) -> list[Any]:
    """The topics a definition publishes to (its sns:publish Tasks' TopicArn), each once, in order."""
    topics: list[Any] = []
    for state in definition["States"].values():
        if state.get("Resource") == _SNS_PUBLISH:
            topic = state["Parameters"]["TopicArn"]
            if not any(topic is t for t in topics):
                topics.append(topic)
    return topics


@dataclass(frozen=True, kw_only=True)
class StateMachineArgs:
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # ASL definition (see pipeline_definition); may hold Outputs. The role may publish to exactly the
    # topics its sns:publish Tasks name.
    definition: dict[str, Any]
    # What the state machine's role may do besides publishing to the definition's topics.
    role_statements: list[dict[str, Any]] = field(default_factory=list)
    # Tags of the state machine's role, e.g. the database roles Redshift grants it (warehouse_access.db_roles_tag).
    role_tags: dict[str, str] = field(default_factory=dict)
    log_retention_days: int = 30


class StateMachine(pulumi.ComponentResource):
    """A Standard Step Functions state machine encrypted with the estate key, logging errors (no
    execution data) to an encrypted log group. Its definition must bound every execution (TimeoutSeconds)."""

    state_machine_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StateMachineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:orchestration:StateMachine", name, None, opts)
        if not isinstance(args.definition.get("TimeoutSeconds"), int):
            raise ValueError(f"StateMachine {name}: the definition needs TimeoutSeconds (pipeline_definition sets it)")
        topics = published_topics(args.definition)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/vendedlogs/states/{naming.physical(name, 200)}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = service_role(
            f"{name}-role",
            f"{name}-states",
            "states.amazonaws.com",
            args.account_id,
            [
                *([statement(["sns:Publish"], topics)] if topics else []),
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                # Log delivery and X-Ray APIs have no resource-level permissions.
                statement(
                    [
                        "logs:CreateLogDelivery",
                        "logs:DeleteLogDelivery",
                        "logs:DescribeLogGroups",
                        "logs:DescribeResourcePolicies",
                        "logs:GetLogDelivery",
                        "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy",
                        "logs:UpdateLogDelivery",
                    ],
                    ["*"],
                ),
                *args.role_statements,
            ],
            parent=self,
            tags=args.role_tags or None,
        )
        machine = aws.sfn.StateMachine(
            f"{name}-machine",
            name_prefix=naming.physical_prefix(name, 80),
            role_arn=role.arn,
            type="STANDARD",
            definition=pulumi.Output.json_dumps(args.definition),
            logging_configuration={
                "level": "ERROR",
                "include_execution_data": False,
                "log_destination": pulumi.Output.concat(log_group.arn, ":*"),
            },
            encryption_configuration={
                "type": "CUSTOMER_MANAGED_KMS_KEY",
                "kms_key_id": args.kms_key_arn,
                "kms_data_key_reuse_period_seconds": 300,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.state_machine_arn = machine.arn
        self.role_arn = role.arn
        self.register_outputs({"state_machine_arn": self.state_machine_arn})


@dataclass(frozen=True)
class WorkflowStep:
    """A Glue crawler or job in a workflow, by its physical name."""

    kind: str  # "crawler" or "job"
    name: pulumi.Input[str]

    def __post_init__(self) -> None:
        if self.kind not in ("crawler", "job"):
            raise ValueError(f"WorkflowStep kind must be 'crawler' or 'job', got {self.kind!r}")

    def action(self) -> aws.glue.TriggerActionArgsDict:
        return {"crawler_name": self.name} if self.kind == "crawler" else {"job_name": self.name}

    def succeeded(self) -> aws.glue.TriggerPredicateConditionArgsDict:
        if self.kind == "crawler":
            return {"crawler_name": self.name, "crawl_state": "SUCCEEDED", "logical_operator": "EQUALS"}
        return {"job_name": self.name, "state": "SUCCEEDED", "logical_operator": "EQUALS"}


# Glue's EventBatchingCondition: BatchSize 1-100 events, BatchWindow 1-900 seconds (the window starts at
# the first event). https://docs.aws.amazon.com/glue/latest/webapi/API_EventBatchingCondition.html
GLUE_EVENT_BATCH_SIZE = (1, 100)
GLUE_EVENT_BATCH_WINDOW_SECONDS = (1, 900)


@dataclass(frozen=True, kw_only=True)
class GlueWorkflowArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # Run in this order; each starts only when the one before it succeeded.
    steps: tuple[WorkflowStep, ...]
    # EventBridge events start a run once this many arrived or the window (seconds, counted from the
    # first event) passed, so a burst of uploads is one run (the jobs pick up every new file, not just
    # the event's). 60 s: a single upload starts a run within about a minute.
    batch_size: int = 100
    batch_window_seconds: int = 60
    # One run at a time: two runs would write the same outputs concurrently.
    max_concurrent_runs: int = 1


class GlueWorkflow(pulumi.ComponentResource):
    """A Glue workflow started by EventBridge events (an EVENT trigger) whose steps run in a chain of
    conditional triggers: a step starts only when the previous one SUCCEEDED."""

    workflow_name: pulumi.Output[str]
    workflow_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GlueWorkflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:orchestration:GlueWorkflow", name, None, opts)
        if not args.steps:
            raise ValueError(f"GlueWorkflow {name}: needs at least one step")
        (low_size, high_size), (low_window, high_window) = GLUE_EVENT_BATCH_SIZE, GLUE_EVENT_BATCH_WINDOW_SECONDS
        if not low_size <= args.batch_size <= high_size or not low_window <= args.batch_window_seconds <= high_window:
            raise ValueError(
                f"GlueWorkflow {name}: Glue allows batch sizes {low_size}-{high_size} and windows of "
                f"{low_window}-{high_window} seconds"
            )
        workflow = aws.glue.Workflow(
            f"{name}-workflow",
            name=naming.physical(name, 255),
            description=f"{name}: " + " -> ".join(f"{s.kind}" for s in args.steps),
            max_concurrent_runs=args.max_concurrent_runs,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=workflow)
        aws.glue.Trigger(
            f"{name}-start",
            name=naming.physical(f"{name}-start", 255),
            workflow_name=workflow.name,
            type="EVENT",
            event_batching_conditions=[{"batch_size": args.batch_size, "batch_window": args.batch_window_seconds}],
            actions=[args.steps[0].action()],
            opts=child,
        )
        for i, (before, step) in enumerate(zip(args.steps, args.steps[1:], strict=False), start=2):
            aws.glue.Trigger(
                f"{name}-step-{i}",
                name=naming.physical(f"{name}-step-{i}", 255),
                workflow_name=workflow.name,
                type="CONDITIONAL",
                start_on_creation=True,
                predicate={"conditions": [before.succeeded()]},
                actions=[step.action()],
                opts=child,
            )
        self.workflow_name = workflow.name
        self.workflow_arn = pulumi.Output.concat(
            "arn:aws:glue:", args.region, ":", args.account_id, ":workflow/", workflow.name
        )
        self.register_outputs({"workflow_name": self.workflow_name, "workflow_arn": self.workflow_arn})


@dataclass(frozen=True)
class WatchedStep:
    """A Glue job or crawler whose every finish is announced, with what a reader needs to act."""

    kind: str  # "crawler" or "job"
    name: pulumi.Input[str]
    # What the step does and where to look, e.g. "converts new CSVs; rejected rows under s3://...".
    hint: pulumi.Input[str]
    # The CloudWatch log group the step writes to: Crawler.log_group_name or GlueJob.error_log_group_name.
    # A job's can be left out (it follows from the job's name); a crawler's is named after its role.
    log_group: pulumi.Input[str] | None = None


# What ends a Glue job's or crawler's run, as its EventBridge state-change event says: the failures, then
# the success. "Glue Job State Change" events are sent for SUCCEEDED, FAILED, TIMEOUT and STOPPED ("Automating
# AWS Glue with EventBridge": https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html;
# ERROR, a JobRunState too, is matched in case a run ends in it); "Glue Crawler State Change" for Started,
# Succeeded and Failed (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-glue.html).
GLUE_JOB_FAILED_STATES = ("FAILED", "TIMEOUT", "STOPPED", "ERROR")
_GLUE_FINISHES = {
    "job": ("Glue Job State Change", "jobName", GLUE_JOB_FAILED_STATES, ("SUCCEEDED",)),
    "crawler": ("Glue Crawler State Change", "crawlerName", ("Failed",), ("Succeeded",)),
}


def glue_state_pattern(kind: str, names: Sequence[Any], outcome: str) -> dict[str, Any]:
    """EventBridge pattern for the runs of the named Glue jobs or crawlers that ended with `outcome`:
    "failed" (every way a run can fail) or "succeeded"."""
    detail_type, name_field, failures, successes = _GLUE_FINISHES[kind]
    states = {"failed": failures, "succeeded": successes}[outcome]
    return {
        "source": ["aws.glue"],
        "detail-type": [detail_type],
        "detail": {name_field: list(names), "state": list(states)},
    }


def glue_state_message(pipeline: str, position: str, kind: str, hint: str, log_group: str | None = None) -> str:
    """Input-transformer template (a JSON string) naming the pipeline, the step, its state and error,
    and the log group and stream the step wrote to: a job's driver stream <run>-driver in its error
    group (by default <prefix>/error, the prefix following from the job's name: compute.job_log_group_prefix),
    a crawler's stream named after it in its group."""
    if kind == "job":
        group = log_group or "/aws-glue/jobs/<name>/error"
        text = (
            f"[{pipeline}] step {position}: Glue job <name> <state> at <time> (run <run>). Message: <message>. "
            f"{hint} Logs: CloudWatch log group {group}, stream <run>-driver."
        )
    else:
        if not log_group:
            raise ValueError(f"{pipeline} step {position}: a crawler's log group is named after its role; pass it")
        text = (
            f"[{pipeline}] step {position}: Glue crawler <name> <state> at <time>. Message: <message> <error>. "
            f"{hint} Logs: CloudWatch log group {log_group}, stream <name>."
        )
    return json.dumps(text)


def _step_message(pipeline: str, position: str, kind: str, hint_and_group: list[Any]) -> str:
    return glue_state_message(pipeline, position, kind, hint_and_group[0], hint_and_group[1])


_INPUT_PATHS: dict[str, dict[str, str]] = {
    "job": {
        "name": "$.detail.jobName",
        "state": "$.detail.state",
        "run": "$.detail.jobRunId",
        "message": "$.detail.message",
        "time": "$.time",
    },
    "crawler": {
        "name": "$.detail.crawlerName",
        "state": "$.detail.state",
        "message": "$.detail.message",
        "error": "$.detail.errorMessage",
        "time": "$.time",
    },
}


@dataclass(frozen=True, kw_only=True)
class GlueStateNotificationsArgs:
    pipeline: str
    kms_key_arn: pulumi.Input[str]
    # Every failed run is announced here.
    alerts_topic_arn: pulumi.Input[str]
    # Every successful run is announced here; None: successes are not announced.
    notifications_topic_arn: pulumi.Input[str] | None
    steps: tuple[WatchedStep, ...]


class GlueStateNotifications(pulumi.ComponentResource):
    """EventBridge rules per Glue job or crawler that publish each failed run to the alerts topic and,
    when there is a notifications topic, each successful run to it, as a sentence a person can act on
    (pipeline, step, state, error, where to look), with a retry policy and one KMS-encrypted dead-letter
    queue."""

    rule_arns: list[pulumi.Output[str]]
    # The queue's physical name: the QueueName dimension of its CloudWatch metrics.
    dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: GlueStateNotificationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:orchestration:GlueStateNotifications", name, None, opts)
        dlq = _dead_letter_queue(name, args.kms_key_arn, self)
        # (outcome, topic, the physical name's short word: "<stack>-sales-notify-1-fail" fits EventBridge's 64)
        outcomes: list[tuple[str, pulumi.Input[str], str]] = [("failed", args.alerts_topic_arn, "fail")]
        if args.notifications_topic_arn is not None:
            outcomes.append(("succeeded", args.notifications_topic_arn, "ok"))
        rules = []
        for i, step in enumerate(args.steps, start=1):
            template = pulumi.Output.all(step.hint, step.log_group).apply(
                functools.partial(_step_message, args.pipeline, f"{i}/{len(args.steps)}", step.kind)
            )
            for outcome, topic_arn, word in outcomes:
                rule = aws.cloudwatch.EventRule(
                    f"{name}-{i}-{outcome}",
                    name_prefix=naming.physical_prefix(f"{name}-{i}-{word}", 64),
                    description=f"Announce every {outcome} run of step {i} of {args.pipeline}",
                    event_pattern=pulumi.Output.json_dumps(glue_state_pattern(step.kind, [step.name], outcome)),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                aws.cloudwatch.EventTarget(
                    f"{name}-{i}-{outcome}-target",
                    rule=rule.name,
                    arn=topic_arn,
                    input_transformer={"input_paths": _INPUT_PATHS[step.kind], "input_template": template},
                    dead_letter_config={"arn": dlq.arn},
                    retry_policy={"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 10},
                    opts=pulumi.ResourceOptions(parent=rule),
                )
                rules.append(rule)
        # One queue for all the rules: the policy names each of them.
        _allow_delivery(name, dlq, "events.amazonaws.com", [rule.arn for rule in rules])
        self.rule_arns = [rule.arn for rule in rules]
        self.dead_letter_queue_name = dlq.name
        self.register_outputs({"rule_arns": self.rule_arns, "dead_letter_queue_name": self.dead_letter_queue_name})
