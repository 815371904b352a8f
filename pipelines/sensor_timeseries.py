"""Sensor time series: the ingestion CLI (ingestion/sensor_upload.py) uploads measurement
CSVs to the raw bucket; on the 1st of each month EventBridge Scheduler starts a Step Functions state
machine that runs the Glue job `sensor_timeseries` for the previous month (or the month given in the
execution input, for backfills) and announces success or failure on the topic.

The job rebuilds one month's partition from the raw files holding intervals of that month, so a rerun
replaces that month and never duplicates it. Which files those are comes from a month index: the upload
CLI writes it beside the uploads (<input prefix>_index/), the job adds the files it finds without an
entry (s3://<processed>/sensor/state/index/), so a run's reads do not grow with the history.

The time series is the catalog table `sensor_timeseries` (CatalogTable: the job's contract,
job_runtime.contracts.SENSOR_TIMESERIES_COLUMNS), with partition projection on month=YYYY-MM: a
month is queryable in Athena as soon as the run has written it, no crawl.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.aws_limits import schedule_expression_problem
from components.compute import GlueJob
from components.config import (
    Check,
    ConfigSection,
    Setting,
    check_quarantine_ratio,
    check_ratio,
    check_run_timeout,
    check_upload_prefix,
    quarantine_ratio_setting,
    ratio,
    run_timeout_seconds,
    run_timeout_setting,
)
from components.iam import hadoop_directories, list_buckets
from components.monitoring import DeadLetterQueue, PipelineWatch
from components.orchestration import (
    Schedule,
    ScheduleArgs,
    StateMachine,
    StateMachineArgs,
    glue_job_statements,
    glue_job_step,
    pipeline_definition,
)
from components.warehouse import CatalogTable, CatalogTableArgs, date_projection
from job_runtime.contracts import SENSOR_TIMESERIES_COLUMNS, SENSOR_TIMESERIES_PARTITIONS
from pipelines.platform import Pipeline, Platform, glue_run_minutes

OUTPUT_PREFIX = "sensor/timeseries/"
TIMESERIES_TABLE = "sensor_timeseries"
# The first month Athena projects: earlier months (backfills of older data) would not be seen.
FIRST_MONTH = "2000-01"
QUARANTINE_PREFIX = "quarantine/sensor/"
# The job's month index of raw files uploaded without one (the upload CLI writes <input>_index/ itself).
STATE_PREFIX = "sensor/state/"


@dataclass(frozen=True)
class SensorConfig:
    input_prefix: str
    schedule: str
    schedule_timezone: str
    frequency: str
    # A month without intervals succeeds (writing nothing) instead of failing the run.
    allow_empty_month: bool
    # A month with fewer intervals than this share of the previous month's fails the run (0: no check).
    min_intervals_ratio: float
    # The state machine's TimeoutSeconds setting in minutes (0: derived from the job's timeout).
    run_timeout_minutes: int
    quarantine_alarm_ratio: float


SETTINGS = (
    Setting(
        "sensorInputPrefix",
        "string",
        "sensor/raw/",
        "Key prefix in the raw bucket the sensor upload CLI uploads to and the monthly job reads",
    ),
    Setting(
        "sensorSchedule",
        "string",
        "cron(0 2 1 * ? *)",
        "EventBridge Scheduler expression that starts the monthly sensor time-series run",
    ),
    Setting("sensorScheduleTimezone", "string", "UTC", "IANA time zone of sensorSchedule"),
    Setting(
        "sensorFrequency",
        "string",
        "1min",
        "Step of the regular sensor time series (<n>s, <n>min or <n>h; must divide a day)",
    ),
    Setting(
        "sensorAllowEmptyMonth",
        "boolean",
        False,
        "true lets a monthly sensor run succeed whatever its month's interval count (none, or fewer than "
        "sensorMinIntervalsRatio of the previous month's); false fails it (the data is late or missing) and alerts",
    ),
    Setting(
        "sensorMinIntervalsRatio",
        "string",
        "0.5",
        "Fail the monthly sensor run when its month has fewer intervals than this share of the previous month's "
        '(a decimal from 0 to 1, quoted; "0" turns the check off)',
    ),
    run_timeout_setting("sensor", "sensor-timeseries"),
    quarantine_ratio_setting("sensor", "sensor-timeseries"),
)
_FREQUENCY = re.compile(r"^([1-9][0-9]*)(s|min|h)$")


def frequency_seconds(text: str) -> int | None:
    """Seconds of a time-series step such as 30s, 15min or 1h; None unless it divides a day."""
    match = _FREQUENCY.match(text)
    if not match:
        return None
    seconds = int(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]
    return seconds if 86400 % seconds == 0 else None


def validate(values: Mapping[str, Any], check: Check) -> None:
    check_upload_prefix(values, check, "sensorInputPrefix", "sensor/raw/")
    check(
        values["sensorScheduleTimezone"] in zoneinfo.available_timezones(),
        "sensorScheduleTimezone",
        "must be an IANA time zone name such as UTC or Europe/Berlin",
    )
    check(
        frequency_seconds(values["sensorFrequency"]) is not None,
        "sensorFrequency",
        "must be <n>s, <n>min or <n>h with n >= 1 and divide a day evenly (e.g. 30s, 1min, 15min, 1h)",
    )
    problem = schedule_expression_problem(values["sensorSchedule"])
    check(problem is None, "sensorSchedule", problem or "")
    check_ratio(values, check, "sensorMinIntervalsRatio")
    check_run_timeout(values, check, "sensorRunTimeoutMinutes")
    check_quarantine_ratio(values, check, "sensorQuarantineAlarmRatio")


def parse(values: Mapping[str, Any]) -> SensorConfig:
    return SensorConfig(
        input_prefix=values["sensorInputPrefix"],
        schedule=values["sensorSchedule"],
        schedule_timezone=values["sensorScheduleTimezone"],
        frequency=values["sensorFrequency"],
        allow_empty_month=values["sensorAllowEmptyMonth"],
        min_intervals_ratio=ratio(values["sensorMinIntervalsRatio"]),
        run_timeout_minutes=values["sensorRunTimeoutMinutes"],
        quarantine_alarm_ratio=ratio(values["sensorQuarantineAlarmRatio"]),
    )


@dataclass(frozen=True, kw_only=True)
class SensorTimeseriesArgs:
    settings: SensorConfig
    # Reads the raw zone's uploads, writes the processed zone.
    platform: Platform


def timeseries_table(database: pulumi.Input[str], location: pulumi.Input[str]) -> CatalogTableArgs:
    """The Glue table over the job's output at `location`: the contract's columns, and partition projection
    on month=YYYY-MM, one month at a time from FIRST_MONTH to the current month (UTC)."""
    return CatalogTableArgs(
        database=database,
        name=TIMESERIES_TABLE,
        location=location,
        columns=SENSOR_TIMESERIES_COLUMNS,
        partition_keys=SENSOR_TIMESERIES_PARTITIONS,
        projection=(("month", date_projection("yyyy-MM", f"{FIRST_MONTH},NOW", 1, "MONTHS")),),
        description="Regular sensor time series, one row per sensor and grid point, by the sensor_timeseries job",
    )


class SensorTimeseriesPipeline(pulumi.ComponentResource):
    """The sensor time-series pipeline end to end (see module docstring)."""

    job_name: pulumi.Output[str]
    state_machine_arn: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]
    table_name: pulumi.Output[str]
    # The schedule's dead-letter queue: monthly starts that did not start a run.
    schedule_dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: SensorTimeseriesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:pipelines:SensorTimeseries", name, None, opts)
        s, p, child = args.settings, args.platform, pulumi.ResourceOptions(parent=self)
        raw, processed = p.lake.raw, p.lake.processed
        job_args = p.glue.job(
            "sensor_timeseries.py",
            pipeline="sensor-timeseries",
            arguments={
                "--input_path": raw.uri(s.input_prefix),
                "--output_path": processed.uri(OUTPUT_PREFIX),
                "--quarantine_path": processed.uri(QUARANTINE_PREFIX),
                "--state_path": processed.uri(STATE_PREFIX),
                "--frequency": s.frequency,
                "--month": "previous",
                "--allow_empty_month": "true" if s.allow_empty_month else "false",
                "--min_intervals_ratio": f"{s.min_intervals_ratio:g}",
            },
            role_statements=[
                raw.read(s.input_prefix),
                # The raw read covers the upload CLI's month index (<input prefix>_index/).
                processed.write(OUTPUT_PREFIX, QUARANTINE_PREFIX, STATE_PREFIX),
                list_buckets(raw.arn, processed.arn),
                *hadoop_directories(
                    reads=[(raw.arn, s.input_prefix)],
                    writes=[
                        (processed.arn, OUTPUT_PREFIX),
                        (processed.arn, QUARANTINE_PREFIX),
                        (processed.arn, STATE_PREFIX),
                    ],
                ),
            ],
        )
        job = GlueJob(f"{name}-job", job_args, opts=child)
        table = CatalogTable(
            f"{name}-timeseries-catalog",
            timeseries_table(p.catalog.database_name, processed.uri(OUTPUT_PREFIX)),
            opts=child,
        )
        definition = pipeline_definition(
            "sensor-timeseries",
            [
                glue_job_step("BuildMonthlyTimeSeries", job.job_name, {"--month.$": "$.month"}),
            ],
            alerts_topic_arn=p.alerts_topic_arn,
            notifications_topic_arn=p.notifications_topic_arn,
            timeout_seconds=run_timeout_seconds(s.run_timeout_minutes, glue_run_minutes(job_args)),
            input_defaults={"month": "previous"},
        )
        machine = StateMachine(
            f"{name}-flow",
            StateMachineArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                definition=definition,
                log_retention_days=p.log_retention_days,
                role_statements=glue_job_statements([job.job_arn]),
            ),
            opts=child,
        )
        schedule = Schedule(
            f"{name}-schedule",
            ScheduleArgs(
                account_id=p.account_id,
                kms_key_arn=p.lake.key_arn,
                expression=s.schedule,
                timezone=s.schedule_timezone,
                state_machine_arn=machine.state_machine_arn,
                state_machine_kms_key_arn=p.lake.key_arn,
                input=json.dumps({"month": "previous"}),
            ),
            opts=child,
        )
        self.job_name = job.job_name
        self.state_machine_arn = machine.state_machine_arn
        self.schedule_arn = schedule.schedule_arn
        self.table_name = table.table_name
        self.schedule_dead_letter_queue_name = schedule.dead_letter_queue_name
        self.register_outputs(
            {
                "schedule_dead_letter_queue_name": self.schedule_dead_letter_queue_name,
                "job_name": self.job_name,
                "state_machine_arn": self.state_machine_arn,
                "schedule_arn": self.schedule_arn,
                "table_name": self.table_name,
            }
        )


def watch(component: SensorTimeseriesPipeline, settings: SensorConfig) -> PipelineWatch:
    """The state machine, the schedule's dead-letter queue, the Glue job and its quarantine."""
    return PipelineWatch(
        pipeline="sensor-timeseries",
        state_machine_arns=(component.state_machine_arn,),
        dead_letter_queues=(
            DeadLetterQueue.of_schedule(component.schedule_dead_letter_queue_name, "sensor-timeseries"),
        ),
        glue_job_names=(component.job_name,),
        quarantine_jobs=("sensor_timeseries",),
        quarantine_ratio_threshold=settings.quarantine_alarm_ratio,
    )


PIPELINE: Pipeline[SensorConfig, SensorTimeseriesPipeline] = Pipeline(
    name="sensor-timeseries",
    config=ConfigSection(settings=SETTINGS, validate=validate, parse=parse, upload_prefix_key="sensorInputPrefix"),
    component=lambda s, p, opts: SensorTimeseriesPipeline("sensor", SensorTimeseriesArgs(settings=s, platform=p), opts),
    outputs=lambda c, s, p: {
        "sensor_upload_to": p.lake.raw.uri(s.input_prefix),
        "sensor_state_machine_arn": c.state_machine_arn,
        "sensor_timeseries_table": c.table_name,  # in glue_database, for Athena
    },
    watch=watch,
)
