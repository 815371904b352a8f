"""The typed stack configuration: defaults from Pulumi.yaml, and a clear error for each bad value."""

from __future__ import annotations

import pytest

from components.aws_limits import schedule_expression_problem
from components.config import (
    CiConfig,
    ConfigError,
    GlueConfig,
    StackConfig,
    is_branch_name,
    is_environment_name,
)
from job_runtime.contracts import COVID_DATASETS, SALES_COLUMNS
from pipelines.covid import COVID_DATASET_KEYS, CovidConfig
from pipelines.gharchive import GharchiveConfig
from pipelines.registry import PROJECT_FILE, schema, settings
from pipelines.registry import load_stack_config as load_config
from pipelines.render_logs import RenderLogsConfig
from pipelines.sales import SalesConfig
from pipelines.sensor_timeseries import SensorConfig, frequency_seconds
from scripts import pulumi_yaml
from tests.infra.harness import build_estate, stack_config

DEFAULTS = StackConfig(
    project="dataplatform",
    stack="dev",
    region="eu-west-1",
    pipelines=("render-logs", "sales", "sensor-timeseries", "gharchive", "covid19"),
    remove_data_on_destroy=False,
    owner="data-platform",
    cost_center="unassigned",
    log_retention_days=30,
    alert_emails=(),
    notification_emails=(),
    success_notifications=True,
    vpc_cidr="10.40.0.0/16",
    availability_zone_count=3,
    nat_gateway=False,
    redshift_database="analytics",
    redshift_base_capacity=8,
    redshift_max_capacity=0,
    redshift_daily_rpu_hour_limit=0,
    redshift_usage_limit_action="log",
    batch_max_vcpus=16,
    batch_use_spot=False,
    batch_image="",
    ecr_pull_account_ids=(),
    glue=GlueConfig(worker_type="G.1X", workers=2, timeout_minutes=60),
    ci=CiConfig(
        enabled=False,
        github_repository="",
        deploy_branches=("main",),
        deploy_environments=("preview", "dev", "prod"),
        oidc_provider_arn="",
    ),
    pipeline_settings={
        "render-logs": RenderLogsConfig(
            prefix="render-logs/",
            vcpu=1.0,
            memory_mib=2048,
            timeout_minutes=60,
            retry_attempts=3,
            table="performance_summary",
            run_timeout_minutes=0,
            quarantine_alarm_ratio=0.05,
        ),
        "sales": SalesConfig(
            input_prefix="sales/input/",
            columns=(
                "order_id",
                "order_date",
                "customer_id",
                "product_id",
                "category",
                "region",
                "quantity",
                "unit_price",
                "discount",
            ),
            table="sales_data_table",
            batch_window_seconds=60,
            quarantine_alarm_ratio=0.05,
        ),
        "sensor-timeseries": SensorConfig(
            input_prefix="sensor/raw/",
            schedule="cron(0 2 1 * ? *)",
            schedule_timezone="UTC",
            frequency="1min",
            allow_empty_month=False,
            min_intervals_ratio=0.5,
            run_timeout_minutes=0,
            quarantine_alarm_ratio=0.05,
        ),
        "gharchive": GharchiveConfig(
            base_url="https://data.gharchive.org",
            baseline_day="",
            max_hours_per_run=24,
            schedule="cron(15 * * * ? *)",
            freshness_hours=3,
            run_timeout_minutes=0,
            quarantine_alarm_ratio=0.05,
        ),
        "covid19": CovidConfig(
            source_bucket="covid19-lake",
            source_region="us-east-2",
            datasets={
                "cases": "enigma-jhu/csv/",
                "testing": "rearc-covid-19-testing-data/csv/states_daily/",
                "county_population": "static-datasets/csv/CountyPopulation/",
                "state_abbreviations": "static-datasets/csv/state_abv/",
            },
            schedule="cron(0 6 ? * MON *)",
            warehouse_schema="covid",
            run_timeout_minutes=0,
            quarantine_alarm_ratio=0.05,
        ),
    },
)


def load(**values: str) -> StackConfig:
    return load_config({f"dataplatform:{k}": v for k, v in values.items()}, "dataplatform", "dev", "eu-west-1")


def test_unset_keys_take_pulumi_yaml_defaults() -> None:
    assert load() == DEFAULTS


def test_every_declared_setting_has_a_type_default_and_description() -> None:
    for key, spec in schema().items():
        assert spec["type"] in {"string", "integer", "boolean", "array"}, key
        assert "default" in spec and spec.get("description"), key


def test_pulumi_yaml_declares_exactly_the_shared_and_registered_pipelines_settings() -> None:
    """Pulumi.yaml's config block (what users and the Pulumi CLI see) and the settings the code declares
    (components/config.py's shared ones, then each registered pipeline's section) are the same keys in
    the same order, each with the same type, default and description."""
    declared = {s.key: s.schema() for s in settings()}
    if list(schema()) != list(declared) or schema() != declared:
        pytest.fail("Pulumi.yaml's config block differs from the declared settings: run `make pulumi-yaml`")
    # ... and it is exactly what `make pulumi-yaml` writes (so the command never leaves a diff behind).
    text = PROJECT_FILE.read_text()
    assert pulumi_yaml.rendered(text) == text


def test_dev_stack_file() -> None:
    raw = stack_config("Pulumi.dev.yaml")
    cfg = load_config(raw, "dataplatform", "dev", raw["aws:region"])
    assert cfg.remove_data_on_destroy is True
    render_logs = cfg.pipeline_settings["render-logs"]
    assert (render_logs.vcpu, render_logs.memory_mib) == (0.5, 1024)
    assert (cfg.batch_use_spot, cfg.batch_max_vcpus, cfg.log_retention_days) == (True, 4, 7)


def test_prod_example_keeps_data() -> None:
    raw = stack_config("Pulumi.prod.yaml")
    cfg = load_config(raw, "dataplatform", "prod", raw["aws:region"])
    assert cfg.remove_data_on_destroy is False
    # Prod pages the on-call on failures only: no success news, so no notifications topic to subscribe to.
    assert cfg.alert_emails == ("data-oncall@example.com",)
    assert (cfg.success_notifications, cfg.notification_emails) == (False, ())
    assert (cfg.redshift_base_capacity, cfg.redshift_max_capacity) == (32, 128)
    assert cfg.tags == {
        "project": "dataplatform",
        "stack": "prod",
        "managed-by": "pulumi",
        "owner": "data-platform",
        "cost-center": "analytics",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"pipelines": '["render-logs", "salse"]'},
            'dataplatform:pipelines = ["render-logs", "salse"] is invalid: unknown pipeline(s) salse; '
            "known: render-logs, sales, sensor-timeseries, gharchive, covid19",
        ),
        (
            {"pipelines": '["render-logs", "render-logs"]'},
            'dataplatform:pipelines = ["render-logs", "render-logs"] is invalid: lists a pipeline twice',
        ),
        (
            {"pipelines": "render-logs"},
            "dataplatform:pipelines = 'render-logs' is invalid: Expecting value: line 1 column 1 (char 0)",
        ),
        ({"removeDataOnDestroy": "yes"}, "dataplatform:removeDataOnDestroy = 'yes' is invalid: must be true or false"),
        (
            {"redshiftBaseCapacity": "12"},
            "dataplatform:redshiftBaseCapacity = 12 is invalid: must be a multiple of 8 from 8 to 1024",
        ),
        (
            {"redshiftBaseCapacity": "eight"},
            "dataplatform:redshiftBaseCapacity = 'eight' is invalid: must be a whole number",
        ),
        (
            {"redshiftMaxCapacity": "4"},
            "dataplatform:redshiftMaxCapacity = 4 is invalid: must be 0 (no cap) or a multiple of 8 from "
            "redshiftBaseCapacity to 5632",
        ),
        (
            {"redshiftDailyRpuHourLimit": "-1"},
            "dataplatform:redshiftDailyRpuHourLimit = -1 is invalid: must be 0 (no limit) or a positive number "
            "of RPU-hours per day",
        ),
        (
            {"redshiftUsageLimitAction": "stop"},
            "dataplatform:redshiftUsageLimitAction = 'stop' is invalid: Redshift Serverless allows log, "
            "emit-metric, deactivate",
        ),
        (
            {"vpcCidr": "10.40.0.0/8"},
            "dataplatform:vpcCidr = '10.40.0.0/8' is invalid: must be a private IPv4 CIDR "
            "block (RFC 1918) with a prefix length from /16 to /24",
        ),
        (
            {"vpcCidr": "52.1.0.0/16"},
            "dataplatform:vpcCidr = '52.1.0.0/16' is invalid: must be a private IPv4 CIDR "
            "block (RFC 1918) with a prefix length from /16 to /24",
        ),
        (
            {"availabilityZoneCount": "2"},
            "dataplatform:availabilityZoneCount = 2 is invalid: must be 3 to 6 "
            "(Redshift Serverless needs subnets in at least three zones)",
        ),
        (
            {"logRetentionDays": "10"},
            "dataplatform:logRetentionDays = 10 is invalid: CloudWatch allows one of 1, 3, 5, "
            "7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, "
            "2922, 3288, 3653",
        ),
        (
            {"notificationEmails": '["oncall"]'},
            'dataplatform:notificationEmails = ["oncall"] is invalid: not e-mail addresses: oncall',
        ),
        (
            {"alertEmails": '["pager", "oncall@example.com"]'},
            'dataplatform:alertEmails = ["pager", "oncall@example.com"] is invalid: not e-mail addresses: pager',
        ),
        (
            {"successNotifications": "false", "notificationEmails": '["team@example.com"]'},
            'dataplatform:notificationEmails = ["team@example.com"] is invalid: must be empty while '
            "successNotifications is false (there is no notifications topic to subscribe to; failures go to "
            "alertEmails)",
        ),
        # A state machine's TimeoutSeconds: a Standard execution runs at most a year (Step Functions
        # service quotas, https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
        *[
            (
                {key: minutes},
                f"dataplatform:{key} = {minutes} is invalid: must be 0 (derived from the steps) or 1 to 525600 "
                "minutes (a Standard Step Functions execution runs at most one year)",
            )
            for key, minutes in (
                ("renderLogsRunTimeoutMinutes", "-1"),
                ("sensorRunTimeoutMinutes", "525601"),
                ("gharchiveRunTimeoutMinutes", "-5"),
                ("covidRunTimeoutMinutes", "1000000"),
            )
        ],
        *[
            (
                {key: text},
                f'dataplatform:{key} = {text!r} is invalid: must be a decimal number from 0 to below 1, e.g. "0.05"',
            )
            for key, text in (
                ("renderLogsQuarantineAlarmRatio", "5%"),
                ("salesQuarantineAlarmRatio", "1"),
                ("sensorQuarantineAlarmRatio", "-0.1"),
                ("gharchiveQuarantineAlarmRatio", "nan"),
                ("covidQuarantineAlarmRatio", "1.5"),
            )
        ],
        (
            {"sensorMinIntervalsRatio": "1.2"},
            "dataplatform:sensorMinIntervalsRatio = '1.2' is invalid: must be a decimal number from 0 to 1, "
            'e.g. "0.05"',
        ),
        (
            {"sensorAllowEmptyMonth": "maybe"},
            "dataplatform:sensorAllowEmptyMonth = 'maybe' is invalid: must be true or false",
        ),
        # The freshness alarm's hourly periods: CloudWatch evaluates at most 7 days (PutMetricAlarm, Period:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
        *[
            (
                {"gharchiveFreshnessHours": hours},
                f"dataplatform:gharchiveFreshnessHours = {hours} is invalid: must be 1 to 168 hours (a CloudWatch "
                "alarm with hourly periods evaluates at most seven days: PutMetricAlarm's Period x "
                "EvaluationPeriods <= 604,800 s)",
            )
            for hours in ("0", "169")
        ],
        (
            {"renderLogsVcpu": "3"},
            "dataplatform:renderLogsVcpu = '3' is invalid: Fargate allows 0.25, 0.5, 1, 2, 4, 8, 16",
        ),
        (
            {"renderLogsMemoryMib": "1024"},
            "dataplatform:renderLogsMemoryMib = 1024 is invalid: with 1 vCPU Fargate "
            "allows 2048 to 8192 MiB in the steps 2048, 3072, 4096, 5120, 6144, 7168, 8192",
        ),
        (
            {"renderLogsPrefix": "render-logs"},
            "dataplatform:renderLogsPrefix = 'render-logs' is invalid: must be an S3 "
            "key prefix of lower-case path segments ending in '/', e.g. render-logs/",
        ),
        (
            {"renderLogsRetryAttempts": "0"},
            "dataplatform:renderLogsRetryAttempts = 0 is invalid: Batch allows 1 to 10 attempts",
        ),
        (
            {"renderLogsTable": "Performance Summary"},
            "dataplatform:renderLogsTable = 'Performance Summary' is invalid: must be a lower-case SQL identifier",
        ),
        (
            {"redshiftDatabase": "9lives"},
            "dataplatform:redshiftDatabase = '9lives' is invalid: must be 1-64 lower-case "
            "letters, digits or underscores, starting with a letter or underscore",
        ),
        (
            {"removeDataOnDestory": "true"},
            "dataplatform:removeDataOnDestory is not a known setting (known: "
            "alertEmails, availabilityZoneCount, batchImage, batchMaxVcpus, batchUseSpot, ciDeployBranches, "
            "ciDeployEnvironments, ciGithubRepository, ciOidcProviderArn, ciRoleEnabled, costCenter, "
            "covidCasesPrefix, covidCountyPopulationPrefix, covidQuarantineAlarmRatio, covidRunTimeoutMinutes, "
            "covidSchedule, covidSourceBucket, covidSourceRegion, "
            "covidStateAbbreviationsPrefix, covidTestingPrefix, covidWarehouseSchema, ecrPullAccountIds, "
            "gharchiveBaseUrl, gharchiveBaselineDay, gharchiveFreshnessHours, gharchiveMaxHoursPerRun, "
            "gharchiveQuarantineAlarmRatio, gharchiveRunTimeoutMinutes, gharchiveSchedule, "
            "glueTimeoutMinutes, glueWorkerType, glueWorkers, logRetentionDays, natGateway, "
            "notificationEmails, owner, pipelines, "
            "redshiftBaseCapacity, redshiftDailyRpuHourLimit, redshiftDatabase, redshiftMaxCapacity, "
            "redshiftUsageLimitAction, "
            "removeDataOnDestroy, renderLogsMemoryMib, renderLogsPrefix, renderLogsQuarantineAlarmRatio, "
            "renderLogsRetryAttempts, renderLogsRunTimeoutMinutes, renderLogsTable, renderLogsTimeoutMinutes, "
            "renderLogsVcpu, salesBatchWindowSeconds, salesColumns, salesInputPrefix, "
            "salesQuarantineAlarmRatio, salesTable, sensorAllowEmptyMonth, "
            "sensorFrequency, sensorInputPrefix, sensorMinIntervalsRatio, sensorQuarantineAlarmRatio, "
            "sensorRunTimeoutMinutes, sensorSchedule, sensorScheduleTimezone, successNotifications, "
            "vpcCidr)",
        ),
        (
            {"salesInputPrefix": "render-logs/sales/"},
            "dataplatform:salesInputPrefix = 'render-logs/sales/' is invalid: renderLogsPrefix, salesInputPrefix "
            "and sensorInputPrefix must not contain one another (an upload would start two pipelines)",
        ),
        (
            {"sensorInputPrefix": "Sensor Data/"},
            "dataplatform:sensorInputPrefix = 'Sensor Data/' is invalid: must be an S3 "
            "key prefix of lower-case path segments ending in '/', e.g. sensor/raw/",
        ),
        (
            {"salesColumns": '["order_id", "customer_id", "colour"]'},
            'dataplatform:salesColumns = ["order_id", "customer_id", "colour"] is invalid: must list each column '
            "once, include order_id and order_date, and use only order_id, order_date, customer_id, product_id, "
            "product_name, category, region, quantity, unit_price, discount, sales_rep, notes (unknown: colour)",
        ),
        (
            {"salesTable": "sales-data"},
            "dataplatform:salesTable = 'sales-data' is invalid: must be a lower-case SQL identifier",
        ),
        (
            {"glueWorkerType": "Standard"},
            "dataplatform:glueWorkerType = 'Standard' is invalid: Glue 5.0 Spark jobs run on G.1X, G.2X, G.4X, G.8X",
        ),
        ({"glueWorkers": "1"}, "dataplatform:glueWorkers = 1 is invalid: must be 2 to 100"),
        (
            {"glueTimeoutMinutes": "3000"},
            "dataplatform:glueTimeoutMinutes = 3000 is invalid: Glue allows 1 to 2880 minutes",
        ),
        (
            {"sensorSchedule": "cron(0 2 1 * *)"},
            "dataplatform:sensorSchedule = 'cron(0 2 1 * *)' is invalid: cron() needs 6 fields "
            "(minutes hours day-of-month month day-of-week year), found 5",
        ),
        (
            {"sensorScheduleTimezone": "Mars/Olympus"},
            "dataplatform:sensorScheduleTimezone = 'Mars/Olympus' is invalid: must be an IANA time zone name "
            "such as UTC or Europe/Berlin",
        ),
        (
            {"gharchiveBaseUrl": "http://data.gharchive.org"},
            "dataplatform:gharchiveBaseUrl = 'http://data.gharchive.org' is invalid: must be an https:// URL "
            "without a trailing slash, e.g. https://data.gharchive.org",
        ),
        (
            {"gharchiveBaselineDay": "2024-02-30"},
            "dataplatform:gharchiveBaselineDay = '2024-02-30' is invalid: must be a date YYYY-MM-DD, or empty "
            "for three days before the first run",
        ),
        (
            {"gharchiveMaxHoursPerRun": "0"},
            "dataplatform:gharchiveMaxHoursPerRun = 0 is invalid: must be 1 to 744 (a month)",
        ),
        (
            {"gharchiveSchedule": "rate(1 hours)"},
            "dataplatform:gharchiveSchedule = 'rate(1 hours)' is invalid: rate(1 hours): use the singular unit "
            "for 1 and the plural otherwise",
        ),
        (
            {"covidSourceBucket": "Covid Lake"},
            "dataplatform:covidSourceBucket = 'Covid Lake' is invalid: must be an S3 bucket name",
        ),
        (
            {"covidSourceRegion": "ohio"},
            "dataplatform:covidSourceRegion = 'ohio' is invalid: must be an AWS region name such as us-east-2",
        ),
        (
            {"covidTestingPrefix": "/rearc/states_daily"},
            "dataplatform:covidTestingPrefix = '/rearc/states_daily' is invalid: must be a key prefix in the "
            "source bucket ending in '/', e.g. enigma-jhu/csv/",
        ),
        (
            {"covidSchedule": "cron(0 6 * * MON *)"},
            "dataplatform:covidSchedule = 'cron(0 6 * * MON *)' is invalid: cron(): exactly one of day-of-month "
            "and day-of-week must be '?'",
        ),
        (
            {"covidWarehouseSchema": "Covid-19"},
            "dataplatform:covidWarehouseSchema = 'Covid-19' is invalid: must be a lower-case SQL identifier",
        ),
        (
            {"ciRoleEnabled": "true"},
            "dataplatform:ciGithubRepository = '' is invalid: required when ciRoleEnabled is true "
            "(<owner>/<repository>, e.g. acme/dataplatform)",
        ),
        *[
            (
                {"ciGithubRepository": repository},
                f"dataplatform:ciGithubRepository = {repository!r} is invalid: must be <owner>/<repository> as "
                "GitHub spells it: the owner 1-39 letters, digits or single hyphens (not first or last), the "
                "repository 1-100 letters, digits, '.', '-' or '_' (not '.' or '..', not ending in .git or .wiki)",
            )
            for repository in (
                "dataplatform",
                "acme/*",
                "acme/data platform",
                "https://github.com/acme/dataplatform",
                "-acme/dataplatform",
                "ac--me/dataplatform",
                "acme/dataplatform.git",
                "acme/..",
                "a" * 40 + "/dataplatform",
            )
        ],
        (
            {"ciDeployBranches": '["main", "feature/*", "release 1", "-x", "a..b", "x.lock", ".hidden", "x/"]'},
            'dataplatform:ciDeployBranches = ["main", "feature/*", "release 1", "-x", "a..b", "x.lock", '
            '".hidden", "x/"] is invalid: '
            "not exact git branch names (no spaces, control characters or ~ ^ : ? * [ \\; no '..', '@{' or '//'; "
            "no part starting with '.' or ending in '.lock'; not starting with '-' or '/' nor ending in '/' or '.'): "
            "feature/*, release 1, -x, a..b, x.lock, .hidden, x/",
        ),
        (
            {"ciDeployBranches": '["main", "main"]'},
            'dataplatform:ciDeployBranches = ["main", "main"] is invalid: lists a branch twice',
        ),
        (
            {"ciDeployEnvironments": '["prod*", " dev", "pre?view", ""]'},
            'dataplatform:ciDeployEnvironments = ["prod*", " dev", "pre?view", ""] is invalid: not GitHub '
            "environment names (1-255 characters, no wildcards * or ?, no control characters, no leading or "
            "trailing spaces): prod*,  dev, pre?view, ",
        ),
        (
            {"ciDeployEnvironments": '["prod", "Prod"]'},
            'dataplatform:ciDeployEnvironments = ["prod", "Prod"] is invalid: lists an environment twice '
            "(GitHub environment names are not case sensitive)",
        ),
        (
            {
                "ciRoleEnabled": "true",
                "ciGithubRepository": "acme/dataplatform",
                "ciDeployBranches": "[]",
                "ciDeployEnvironments": "[]",
            },
            "dataplatform:ciDeployBranches = [] is invalid: must not be empty while ciDeployEnvironments is empty "
            "too (with ciRoleEnabled true no workflow could assume the role)",
        ),
        *[
            (
                {"ciOidcProviderArn": arn},
                f"dataplatform:ciOidcProviderArn = {arn!r} is invalid: must be empty (the stack creates the "
                "provider) or the ARN of the account's IAM OIDC provider for GitHub Actions, e.g. "
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
            )
            for arn in (
                "arn:aws:iam::123456789012:oidc-provider/accounts.google.com",
                "arn:aws:iam::12345:oidc-provider/token.actions.githubusercontent.com",
                "token.actions.githubusercontent.com",
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com/",
            )
        ],
        (
            {"sensorFrequency": "7min"},
            "dataplatform:sensorFrequency = '7min' is invalid: must be <n>s, <n>min or <n>h with n >= 1 and "
            "divide a day evenly (e.g. 30s, 1min, 15min, 1h)",
        ),
    ],
)
def test_bad_value_names_key_value_and_what_is_allowed(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(**values)
    assert raised.value.problems == [message]


def test_ci_role_settings_when_enabled() -> None:
    cfg = load(
        ciRoleEnabled="true",
        ciGithubRepository="Acme-Corp/data.platform_2",
        ciDeployBranches='["main", "release/2026.1"]',
        ciDeployEnvironments='["Production EU"]',
        ciOidcProviderArn="arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
    )
    assert cfg.ci == CiConfig(
        enabled=True,
        github_repository="Acme-Corp/data.platform_2",
        deploy_branches=("main", "release/2026.1"),
        deploy_environments=("Production EU",),
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
    )
    # Only environments (no branch) is a valid allow list too.
    assert (
        load(ciRoleEnabled="true", ciGithubRepository="acme/dataplatform", ciDeployBranches="[]").ci.deploy_branches
        == ()
    )


def test_disabled_ci_role_needs_no_repository_or_allow_list() -> None:
    cfg = load(ciDeployBranches="[]", ciDeployEnvironments="[]")
    assert cfg.ci == CiConfig(
        enabled=False, github_repository="", deploy_branches=(), deploy_environments=(), oidc_provider_arn=""
    )


def test_ci_errors_are_reported_together() -> None:
    with pytest.raises(ConfigError) as raised:
        load(ciRoleEnabled="true", ciDeployBranches='["feature/*"]', ciOidcProviderArn="arn:aws:iam::1:x")
    assert [p.split(" = ")[0] for p in raised.value.problems] == [
        "dataplatform:ciGithubRepository",
        "dataplatform:ciDeployBranches",
        "dataplatform:ciOidcProviderArn",
    ]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        *[(n, True) for n in ("main", "release/2026.1", "feature/JIRA-12_x", "v1.2", "a@b", "dependabot/npm/x-1.0")],
        *[
            (n, False)
            for n in (
                "",
                "feature/*",
                "fix?",
                "a[1]",
                "a b",
                "a~1",
                "a^1",
                "a:b",
                "a\\b",
                "a..b",
                "a@{1}",
                "@",
                "-x",
                "/x",
                "x/",
                "x.",
                "a//b",
                ".x",
                "a/.x",
                "x.lock",
                "a/x.lock/b",
                "a\tb",
                "x" * 256,
            )
        ],
    ],
)
def test_branch_names_follow_git_check_ref_format(name: str, ok: bool) -> None:
    assert is_branch_name(name) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        *[(n, True) for n in ("prod", "Production EU", "preview/pr-1", "staging:eu", "e" * 255)],
        *[(n, False) for n in ("", "prod*", "pr?d", " prod", "prod ", "pr\nod", "e" * 256)],
    ],
)
def test_environment_names(name: str, ok: bool) -> None:
    assert is_environment_name(name) is ok


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(
            {"dataplatform:batchMaxVcpus": "0", "dataplatform:renderLogsTimeoutMinutes": "0"},
            "dataplatform",
            "dev",
            None,
        )
    assert raised.value.problems == [
        "aws:region is not set: run `pulumi config set aws:region <region>` for this stack",
        "dataplatform:batchMaxVcpus = 0 is invalid: must be 1 to 4096",
        "dataplatform:renderLogsTimeoutMinutes = 0 is invalid: must be 1 to 1440",
    ]
    assert str(raised.value).startswith("invalid stack configuration:\n  - aws:region is not set")


def test_the_program_fails_the_preview_on_bad_config() -> None:
    with pytest.raises(ConfigError, match=r"dataplatform:renderLogsMemoryMib = 100 is invalid"):
        build_estate("dev", "Pulumi.dev.yaml", {"dataplatform:renderLogsMemoryMib": "100"})


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("rate(1 hour)", None),
        ("rate(5 minutes)", None),
        ("cron(0 6 1 * ? *)", None),
        ("cron(15 10 ? * MON-FRI *)", None),
        ("at(2026-12-01T06:00:00)", None),
        ("rate(1 hours)", "rate(1 hours): use the singular unit for 1 and the plural otherwise"),
        ("rate(0 minutes)", "rate() needs a positive amount"),
        ("rate(2 weeks)", "must be rate(...), cron(...) or at(...)"),
        ("cron(0 6 1 * *)", "cron() needs 6 fields (minutes hours day-of-month month day-of-week year), found 5"),
        ("cron(0 6 1 * MON *)", "cron(): exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 6 ? * ? *)", "cron(): exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 6 1 * ? $)", "cron() fields may use only digits, names, and * ? / , - # L W"),
        ("0 6 1 * *", "must be rate(...), cron(...) or at(...)"),
    ],
)
def test_schedule_expressions(expression: str, problem: str | None) -> None:
    assert schedule_expression_problem(expression) == problem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        *[("30s", 30), ("1min", 60), ("15min", 900), ("1h", 3600), ("24h", 86400)],
        *[("7min", None), ("0s", None), ("1 min", None), ("1m", None), ("abc", None), ("", None), ("48h", None)],
    ],
)
def test_sensor_frequency(text: str, seconds: int | None) -> None:
    assert frequency_seconds(text) == seconds


def test_sales_columns_setting_knows_exactly_the_jobs_schema() -> None:
    import sales_csv_to_parquet  # the Glue script (glue_scripts/ is on the test path)

    assert [f.name for f in sales_csv_to_parquet.SCHEMA] == list(SALES_COLUMNS)
    assert DEFAULTS.pipeline_settings["sales"].columns == sales_csv_to_parquet.parse_columns(
        sales_csv_to_parquet.DEFAULT_COLUMNS
    )


def test_covid_dataset_settings_name_exactly_the_datasets_the_clean_job_knows() -> None:
    assert tuple(COVID_DATASET_KEYS) == COVID_DATASETS
    assert set(DEFAULTS.pipeline_settings["covid19"].datasets) == set(COVID_DATASETS)
