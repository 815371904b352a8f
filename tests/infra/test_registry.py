"""A pipeline is one module plus one registry line: a toy sixth pipeline, registered here, gets its config
key (validated, with a clear error), its resources and its stack output without touching anything else;
and the registered pipelines export exactly the stack outputs smoke/outputs.py and the README name."""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pulumi
import pulumi_aws as aws
import pytest

from components.config import Check, ConfigError, ConfigSection, Setting
from components.monitoring import PipelineWatch
from pipelines import registry
from pipelines.platform import Pipeline, Platform
from tests.infra.harness import ROOT, Estate, run_under_mocks, stack_config


@dataclass(frozen=True)
class ToyConfig:
    greeting: str


class ToyPipeline(pulumi.ComponentResource):
    """One topic encrypted with the lake's key, showing the configured greeting."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, settings: ToyConfig, platform: Platform, opts: pulumi.ResourceOptions) -> None:
        super().__init__("dataplatform:pipelines:Toy", name, None, opts)
        topic = aws.sns.Topic(
            f"{name}-topic",
            display_name=settings.greeting,
            kms_master_key_id=platform.lake.key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": self.topic_arn})


def validate_toy(values: Mapping[str, Any], check: Check) -> None:
    check(values["toyGreeting"].isalpha(), "toyGreeting", "must be letters only")


TOY: Pipeline[ToyConfig, ToyPipeline] = Pipeline(
    name="toy",
    config=ConfigSection(
        settings=(Setting("toyGreeting", "string", "hello", "What the toy pipeline stores"),),
        validate=validate_toy,
        parse=lambda values: ToyConfig(greeting=values["toyGreeting"]),
    ),
    component=lambda s, p, opts: ToyPipeline("toy", s, p, opts),
    outputs=lambda c, s, p: {"toy_topic_arn": c.topic_arn, "toy_greeting_uri": p.lake.raw.uri("toy/")},
    # Nothing of it to alarm on; the dashboard still gives it a row.
    watch=lambda c, s: PipelineWatch(pipeline="toy"),
)


def build(stack: str, stack_file: str, overrides: dict[str, str] | None = None) -> tuple[Estate, dict[str, Any]]:
    """The whole program under mocks, and its stack outputs (name -> resolved value)."""
    outputs: dict[str, Any] = {}

    def program() -> None:
        exported: dict[str, Any] = {}
        with mock.patch.object(pulumi, "export", lambda name, value: exported.__setitem__(name, value)):
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        pulumi.Output.all(**exported).apply(outputs.update)

    estate = run_under_mocks(stack, {**stack_config(stack_file), **(overrides or {})}, program)
    return estate, outputs


@pytest.fixture
def with_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry with the toy pipeline as its sixth line."""
    monkeypatch.setattr(registry, "PIPELINES", (*registry.PIPELINES, TOY))


@pytest.mark.usefixtures("with_toy")
def test_a_registered_sixth_pipeline_is_configured_built_and_exported() -> None:
    enabled = '["sales", "toy"]'
    estate, outputs = build(
        "dev", "Pulumi.dev.yaml", {"dataplatform:pipelines": enabled, "dataplatform:toyGreeting": "hi"}
    )

    toy = estate.one("dataplatform:pipelines:Toy")
    topic = estate.one("aws:sns/topic:Topic", "toy-topic")
    assert topic.parent == toy.urn
    assert topic.inputs["displayName"] == "hi"
    assert topic.inputs["kmsMasterKeyId"] == "arn:aws:kms:eu-west-1:123456789012:key/lake-key"
    assert outputs["toy_topic_arn"] == "arn:aws:sns:eu-west-1:123456789012:toy-topic-mock"
    assert outputs["toy_greeting_uri"] == "s3://dataplatform-dev-raw-20260101000000000000000001/toy/"
    # Only the enabled pipelines are built: sales and the toy, no Batch compute (neither runs Batch jobs).
    assert {r.type for r in estate.resources if r.type.startswith("dataplatform:pipelines:")} == {
        "dataplatform:pipelines:Sales",
        "dataplatform:pipelines:Toy",
    }
    assert not estate.of_type("dataplatform:compute:BatchCompute")
    # Its watch reached the monitoring: the dashboard has a row for it, after the sales row.
    body = json.loads(estate.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    headings = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert [h for h in headings if h in ("## sales", "## toy")] == ["## sales", "## toy"]


@pytest.mark.usefixtures("with_toy")
def test_the_sixth_pipelines_setting_is_validated_with_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        registry.load_stack_config(
            {"dataplatform:toyGreeting": "hi there", "dataplatform:glueWorkers": "1"},
            "dataplatform",
            "dev",
            "eu-west-1",
        )
    assert raised.value.problems == [
        "dataplatform:glueWorkers = 1 is invalid: must be 2 to 100",
        "dataplatform:toyGreeting = 'hi there' is invalid: must be letters only",
    ]
    cfg = registry.load_stack_config({}, "dataplatform", "dev", "eu-west-1")
    assert cfg.pipelines == ("render-logs", "sales", "sensor-timeseries", "gharchive", "covid19", "toy")
    assert cfg.pipeline_settings["toy"] == ToyConfig(greeting="hello")


def test_an_unregistered_pipelines_setting_is_unknown() -> None:
    with pytest.raises(ConfigError) as raised:
        registry.load_stack_config({"dataplatform:toyGreeting": "hi"}, "dataplatform", "dev", "eu-west-1")
    assert raised.value.problems[0].startswith("dataplatform:toyGreeting is not a known setting (known: ")
    with pytest.raises(ConfigError) as raised:
        registry.load_stack_config({"dataplatform:pipelines": '["toy"]'}, "dataplatform", "dev", "eu-west-1")
    assert raised.value.problems == [
        'dataplatform:pipelines = ["toy"] is invalid: unknown pipeline(s) toy; '
        "known: render-logs, sales, sensor-timeseries, gharchive, covid19"
    ]


RAW = "s3://dataplatform-{stack}-raw-20260101000000000000000001/"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:dataplatform-{stack}-"
PIPELINE_OUTPUTS = {
    "render_logs_upload_to": RAW + "render-logs/",
    "render_logs_state_machine_arn": MACHINE + "render-logs-flow-20260101000000000000000001",
    "render_logs_table": "performance_summary",
    "sales_upload_to": RAW + "sales/input/",
    "sales_workflow": "dataplatform-{stack}-sales-workflow",
    "sales_table": "sales_data_table",
    "sales_parquet_table": "sales_orders",
    "sensor_upload_to": RAW + "sensor/raw/",
    "sensor_state_machine_arn": MACHINE + "sensor-flow-20260101000000000000000001",
    "sensor_timeseries_table": "sensor_timeseries",
    "gharchive_raw": RAW + "gharchive/raw/",
    "gharchive_state_machine_arn": MACHINE + "gharchive-flow-20260101000000000000000001",
    "gharchive_jobs_table": "dataplatform-{stack}-gharchive-jobs",
    "gharchive_runs_table": "dataplatform-{stack}-gharchive-job-run-details",
    "gharchive_events_table": "gharchive_events",
    "covid_state_machine_arn": MACHINE + "covid-flow-20260101000000000000000001",
    "covid_warehouse_schema": "covid",
    "covid_dim_date_table": "covid_dim_date",
    "covid_dim_location_table": "covid_dim_location",
    "covid_fact_cases_table": "covid_fact_cases",
    "covid_fact_testing_table": "covid_fact_testing",
}
PLATFORM_OUTPUTS = (
    "buckets",
    "kms_key_arn",
    "redshift_workgroup",
    "redshift_database",
    "redshift_admin_secret_arn",
    "redshift_reader_role",
    "glue_database",
    "athena_workgroup",
    "alerts_topic_arn",
    "region",
    "batch_image",
    "batch_job_queue_arn",
    "dashboard_name",
)


@pytest.mark.parametrize(("stack", "stack_file"), [("dev", "Pulumi.dev.yaml"), ("prod", "Pulumi.prod.yaml")])
def test_the_registered_pipelines_export_the_documented_stack_outputs(stack: str, stack_file: str) -> None:
    _, outputs = build(stack, stack_file)
    # The notifications topic exists only with success news (prod sets successNotifications false).
    news = ["notifications_topic_arn"] if stack == "dev" else []
    assert sorted(outputs) == sorted([*PLATFORM_OUTPUTS, *news, *PIPELINE_OUTPUTS])
    topic = "arn:aws:sns:eu-west-1:123456789012:dataplatform-{stack}-{kind}-20260101000000000000000001"
    assert outputs["alerts_topic_arn"] == topic.format(stack=stack, kind="alerts")
    if news:
        assert outputs["notifications_topic_arn"] == topic.format(stack=stack, kind="notifications")
    assert {k: outputs[k] for k in PIPELINE_OUTPUTS} == {k: v.format(stack=stack) for k, v in PIPELINE_OUTPUTS.items()}
    assert outputs["region"] == "eu-west-1"
    assert outputs["redshift_database"] == "analytics"
