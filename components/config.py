"""Typed stack configuration: read every setting once, validate all of it, fail with every problem.

The key list, types and defaults come from Pulumi.yaml's `config:` block, so the schema Pulumi
shows users and the one this loader enforces cannot drift apart. A misspelt key is an error,
not a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
KNOWN_PIPELINES = ("render-logs", "sales", "sensor-timeseries", "gharchive", "covid19")
# The COVID-19 datasets the clean job knows (pipelines/covid_staging.DATASETS; a test keeps them equal),
# each with the Pulumi.yaml key naming its source prefix.
COVID_DATASET_KEYS = {
    "cases": "covidCasesPrefix",
    "testing": "covidTestingPrefix",
    "county_population": "covidCountyPopulationPrefix",
    "state_abbreviations": "covidStateAbbreviationsPrefix",
}
# The sales job's typed schema (glue_scripts/sales_csv_to_parquet.py; a test keeps the two equal).
SALES_COLUMNS = (
    "order_id",
    "order_date",
    "customer_id",
    "product_id",
    "product_name",
    "category",
    "region",
    "quantity",
    "unit_price",
    "discount",
    "sales_rep",
    "notes",
)
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X")
# CloudWatch Logs accepts only these retention periods.
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
# AWS Fargate's valid vCPU -> memory (MiB) combinations.
FARGATE_MEMORY_MIB: dict[float, tuple[int, ...]] = {
    0.25: (512, 1024, 2048),
    0.5: tuple(range(1024, 4097, 1024)),
    1: tuple(range(2048, 8193, 1024)),
    2: tuple(range(4096, 16385, 1024)),
    4: tuple(range(8192, 30721, 1024)),
    8: tuple(range(16384, 61441, 4096)),
    16: tuple(range(32768, 122881, 8192)),
}
REDSHIFT_RPU_RANGE = (8, 1024)  # Redshift Serverless base capacity, in steps of 8 RPUs
# What Redshift Serverless does when a workgroup reaches its RPU-hour usage limit.
REDSHIFT_USAGE_LIMIT_ACTIONS = ("log", "emit-metric", "deactivate")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# GitHub: an owner (user or organisation) is 1-39 letters, digits and single hyphens, neither first nor
# last; a repository is 1-100 ASCII letters, digits, '.', '-' and '_' ('.git' is stripped, '.wiki' reserved).
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}")
# The one IAM OIDC provider an account can hold for GitHub Actions' issuer.
_GITHUB_OIDC_PROVIDER_ARN = re.compile(r"arn:aws:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com")


class ConfigError(ValueError):
    """Every invalid setting at once, each naming the key, the value and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RenderLogsConfig:
    prefix: str
    vcpu: float
    memory_mib: int
    timeout_minutes: int
    retry_attempts: int
    table: str


@dataclass(frozen=True)
class GlueConfig:
    worker_type: str
    workers: int
    timeout_minutes: int


@dataclass(frozen=True)
class SalesConfig:
    input_prefix: str
    columns: tuple[str, ...]
    table: str


@dataclass(frozen=True)
class SensorConfig:
    input_prefix: str
    schedule: str
    schedule_timezone: str
    frequency: str


@dataclass(frozen=True)
class GharchiveConfig:
    base_url: str
    # YYYY-MM-DD, or "" for three days before the first run; only used before the first bookmark.
    baseline_day: str
    max_hours_per_run: int
    schedule: str


@dataclass(frozen=True)
class CovidConfig:
    source_bucket: str
    source_region: str
    # dataset name -> key prefix in the source bucket
    datasets: dict[str, str]
    schedule: str
    warehouse_schema: str


@dataclass(frozen=True)
class CiConfig:
    enabled: bool
    # "<owner>/<repository>" exactly as GitHub spells it; "" while the CI role is disabled.
    github_repository: str
    # Branches whose workflows may deploy (subject repo:<owner>/<repository>:ref:refs/heads/<branch>).
    deploy_branches: tuple[str, ...]
    # GitHub environments whose jobs may deploy (subject repo:<owner>/<repository>:environment:<name>).
    deploy_environments: tuple[str, ...]
    # The account's existing GitHub OIDC provider to trust, or "" to create it in this stack.
    oidc_provider_arn: str


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    region: str
    pipelines: tuple[str, ...]
    remove_data_on_destroy: bool
    owner: str
    cost_center: str
    log_retention_days: int
    notification_emails: tuple[str, ...]
    vpc_cidr: str
    availability_zone_count: int
    nat_gateway: bool
    redshift_database: str
    redshift_base_capacity: int
    redshift_max_capacity: int
    # RPU-hours the workgroup may use per day (0: no limit) and what happens when it is reached.
    redshift_daily_rpu_hour_limit: int
    redshift_usage_limit_action: str
    batch_max_vcpus: int
    batch_use_spot: bool
    render_logs: RenderLogsConfig
    glue: GlueConfig
    sales: SalesConfig
    sensor: SensorConfig
    gharchive: GharchiveConfig
    covid: CovidConfig
    ci: CiConfig

    @property
    def tags(self) -> dict[str, str]:
        """Estate tags, applied to every taggable resource through the provider's default tags."""
        return {
            "project": self.project,
            "stack": self.stack,
            "managed-by": "pulumi",
            "owner": self.owner,
            "cost-center": self.cost_center,
        }


@cache
def schema() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(PROJECT_FILE.read_text())["config"]


def _parse(key: str, raw: str, kind: str) -> Any:
    if kind == "string":
        return raw
    if kind == "boolean":
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError("must be true or false")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind == "array":
        value = json.loads(raw)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        return tuple(value)
    raise AssertionError(f"Pulumi.yaml declares {key} with unsupported type {kind}")


def load_config(raw: Mapping[str, str], project: str, stack: str, region: str | None) -> StackConfig:
    """Validate raw Pulumi config values (`<project>:<key>` -> string as Pulumi stores it)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    declared = schema()
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == project and key not in declared:
            problems.append(f"{full_key} is not a known setting (known: {', '.join(sorted(declared))})")
    for key, spec in declared.items():
        full_key = f"{project}:{key}"
        if full_key not in raw:
            values[key] = tuple(spec["default"]) if spec["type"] == "array" else spec["default"]
            continue
        try:
            values[key] = _parse(key, raw[full_key], spec["type"])
        except (ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{full_key} = {raw[full_key]!r} is invalid: {exc}")
    if problems:
        raise ConfigError(problems)

    def check(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            value = values[key]
            shown = json.dumps(list(value)) if isinstance(value, tuple) else repr(value)
            problems.append(f"{project}:{key} = {shown} is invalid: {allowed}")

    if not region:
        problems.append("aws:region is not set: run `pulumi config set aws:region <region>` for this stack")
    unknown = [p for p in values["pipelines"] if p not in KNOWN_PIPELINES]
    check(not unknown, "pipelines", f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(KNOWN_PIPELINES)}")
    check(len(set(values["pipelines"])) == len(values["pipelines"]), "pipelines", "lists a pipeline twice")
    check(
        values["logRetentionDays"] in LOG_RETENTION_DAYS,
        "logRetentionDays",
        f"CloudWatch allows one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
    )
    bad_emails = [e for e in values["notificationEmails"] if not _EMAIL.match(e)]
    check(not bad_emails, "notificationEmails", f"not e-mail addresses: {', '.join(bad_emails)}")
    check(
        _is_private_cidr(values["vpcCidr"]),
        "vpcCidr",
        "must be a private IPv4 CIDR block (RFC 1918) with a prefix length from /16 to /24",
    )
    check(
        3 <= values["availabilityZoneCount"] <= 6,
        "availabilityZoneCount",
        "must be 3 to 6 (Redshift Serverless needs subnets in at least three zones)",
    )
    check(
        re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", values["redshiftDatabase"]) is not None,
        "redshiftDatabase",
        "must be 1-64 lower-case letters, digits or underscores, starting with a letter or underscore",
    )
    low, high = REDSHIFT_RPU_RANGE
    base = values["redshiftBaseCapacity"]
    check(
        low <= base <= high and base % 8 == 0, "redshiftBaseCapacity", f"must be a multiple of 8 from {low} to {high}"
    )
    top = values["redshiftMaxCapacity"]
    check(
        top == 0 or (top >= base and top % 8 == 0 and top <= 5632),
        "redshiftMaxCapacity",
        "must be 0 (no cap) or a multiple of 8 from redshiftBaseCapacity to 5632",
    )
    check(
        values["redshiftDailyRpuHourLimit"] >= 0,
        "redshiftDailyRpuHourLimit",
        "must be 0 (no limit) or a positive number of RPU-hours per day",
    )
    check(
        values["redshiftUsageLimitAction"] in REDSHIFT_USAGE_LIMIT_ACTIONS,
        "redshiftUsageLimitAction",
        f"Redshift Serverless allows {', '.join(REDSHIFT_USAGE_LIMIT_ACTIONS)}",
    )
    check(1 <= values["batchMaxVcpus"] <= 4096, "batchMaxVcpus", "must be 1 to 4096")
    for key, example in (
        ("renderLogsPrefix", "render-logs/"),
        ("salesInputPrefix", "sales/input/"),
        ("sensorInputPrefix", "sensor/raw/"),
    ):
        check(
            re.fullmatch(r"([a-z0-9][a-z0-9_.-]*/)+", values[key]) is not None,
            key,
            f"must be an S3 key prefix of lower-case path segments ending in '/', e.g. {example}",
        )
    prefixes = [values[k] for k in ("renderLogsPrefix", "salesInputPrefix", "sensorInputPrefix")]
    overlapping = any(a != b and b.startswith(a) for a in prefixes for b in prefixes) or len(set(prefixes)) < 3
    check(
        not overlapping,
        "salesInputPrefix",
        "renderLogsPrefix, salesInputPrefix and sensorInputPrefix must not contain one another "
        "(an upload would start two pipelines)",
    )
    vcpu = _parse_vcpu(values["renderLogsVcpu"])
    check(vcpu in FARGATE_MEMORY_MIB, "renderLogsVcpu", f"Fargate allows {', '.join(map(_fmt, FARGATE_MEMORY_MIB))}")
    if vcpu in FARGATE_MEMORY_MIB:
        allowed = FARGATE_MEMORY_MIB[vcpu]
        check(
            values["renderLogsMemoryMib"] in allowed,
            "renderLogsMemoryMib",
            f"with {_fmt(vcpu)} vCPU Fargate allows {allowed[0]} to {allowed[-1]} MiB in the steps "
            f"{', '.join(map(str, allowed))}",
        )
    check(1 <= values["renderLogsTimeoutMinutes"] <= 1440, "renderLogsTimeoutMinutes", "must be 1 to 1440")
    check(1 <= values["renderLogsRetryAttempts"] <= 10, "renderLogsRetryAttempts", "Batch allows 1 to 10 attempts")
    for key in ("renderLogsTable", "salesTable"):
        check(
            re.fullmatch(r"[a-z_][a-z0-9_]{0,126}", values[key]) is not None, key, "must be a lower-case SQL identifier"
        )
    check(
        values["glueWorkerType"] in GLUE_WORKER_TYPES,
        "glueWorkerType",
        f"Glue 5.0 Spark jobs run on {', '.join(GLUE_WORKER_TYPES)}",
    )
    check(2 <= values["glueWorkers"] <= 100, "glueWorkers", "must be 2 to 100")
    check(1 <= values["glueTimeoutMinutes"] <= 2880, "glueTimeoutMinutes", "Glue allows 1 to 2880 minutes")
    columns = values["salesColumns"]
    unknown_columns = [c for c in columns if c not in SALES_COLUMNS]
    check(
        not unknown_columns and len(set(columns)) == len(columns) and {"order_id", "order_date"} <= set(columns),
        "salesColumns",
        "must list each column once, include order_id and order_date, and use only "
        + ", ".join(SALES_COLUMNS)
        + (f" (unknown: {', '.join(unknown_columns)})" if unknown_columns else ""),
    )
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
    for key in ("sensorSchedule", "gharchiveSchedule", "covidSchedule"):
        problem = schedule_expression_problem(values[key])
        check(problem is None, key, problem or "")
    check(
        re.fullmatch(r"https://[a-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?", values["gharchiveBaseUrl"]) is not None
        and not values["gharchiveBaseUrl"].endswith("/"),
        "gharchiveBaseUrl",
        "must be an https:// URL without a trailing slash, e.g. https://data.gharchive.org",
    )
    check(
        values["gharchiveBaselineDay"] == "" or _is_date(values["gharchiveBaselineDay"]),
        "gharchiveBaselineDay",
        "must be a date YYYY-MM-DD, or empty for three days before the first run",
    )
    check(1 <= values["gharchiveMaxHoursPerRun"] <= 744, "gharchiveMaxHoursPerRun", "must be 1 to 744 (a month)")
    check(
        re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", values["covidSourceBucket"]) is not None,
        "covidSourceBucket",
        "must be an S3 bucket name",
    )
    check(
        re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]", values["covidSourceRegion"]) is not None,
        "covidSourceRegion",
        "must be an AWS region name such as us-east-2",
    )
    for key in COVID_DATASET_KEYS.values():
        check(
            re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.-]*/)+", values[key]) is not None,
            key,
            "must be a key prefix in the source bucket ending in '/', e.g. enigma-jhu/csv/",
        )
    check(
        re.fullmatch(r"[a-z_][a-z0-9_]{0,126}", values["covidWarehouseSchema"]) is not None,
        "covidWarehouseSchema",
        "must be a lower-case SQL identifier",
    )
    _check_ci(values, check)
    if problems:
        raise ConfigError(problems)

    return StackConfig(
        project=project,
        stack=stack,
        region=region or "",
        pipelines=values["pipelines"],
        remove_data_on_destroy=values["removeDataOnDestroy"],
        owner=values["owner"],
        cost_center=values["costCenter"],
        log_retention_days=values["logRetentionDays"],
        notification_emails=values["notificationEmails"],
        vpc_cidr=values["vpcCidr"],
        availability_zone_count=values["availabilityZoneCount"],
        nat_gateway=values["natGateway"],
        redshift_database=values["redshiftDatabase"],
        redshift_base_capacity=base,
        redshift_max_capacity=top,
        redshift_daily_rpu_hour_limit=values["redshiftDailyRpuHourLimit"],
        redshift_usage_limit_action=values["redshiftUsageLimitAction"],
        batch_max_vcpus=values["batchMaxVcpus"],
        batch_use_spot=values["batchUseSpot"],
        render_logs=RenderLogsConfig(
            prefix=values["renderLogsPrefix"],
            vcpu=vcpu,
            memory_mib=values["renderLogsMemoryMib"],
            timeout_minutes=values["renderLogsTimeoutMinutes"],
            retry_attempts=values["renderLogsRetryAttempts"],
            table=values["renderLogsTable"],
        ),
        glue=GlueConfig(
            worker_type=values["glueWorkerType"],
            workers=values["glueWorkers"],
            timeout_minutes=values["glueTimeoutMinutes"],
        ),
        sales=SalesConfig(input_prefix=values["salesInputPrefix"], columns=columns, table=values["salesTable"]),
        sensor=SensorConfig(
            input_prefix=values["sensorInputPrefix"],
            schedule=values["sensorSchedule"],
            schedule_timezone=values["sensorScheduleTimezone"],
            frequency=values["sensorFrequency"],
        ),
        gharchive=GharchiveConfig(
            base_url=values["gharchiveBaseUrl"],
            baseline_day=values["gharchiveBaselineDay"],
            max_hours_per_run=values["gharchiveMaxHoursPerRun"],
            schedule=values["gharchiveSchedule"],
        ),
        covid=CovidConfig(
            source_bucket=values["covidSourceBucket"],
            source_region=values["covidSourceRegion"],
            datasets={name: values[key] for name, key in COVID_DATASET_KEYS.items()},
            schedule=values["covidSchedule"],
            warehouse_schema=values["covidWarehouseSchema"],
        ),
        ci=CiConfig(
            enabled=values["ciRoleEnabled"],
            github_repository=values["ciGithubRepository"],
            deploy_branches=values["ciDeployBranches"],
            deploy_environments=values["ciDeployEnvironments"],
            oidc_provider_arn=values["ciOidcProviderArn"],
        ),
    )


def _check_ci(values: dict[str, Any], check: Callable[[bool, str, str], None]) -> None:
    """The CI deploy role's settings. Values are checked even while the role is disabled (a bad value
    is wrong either way); the repository and at least one branch or environment only when enabled."""
    enabled, repository = values["ciRoleEnabled"], values["ciGithubRepository"]
    check(
        repository != "" or not enabled,
        "ciGithubRepository",
        "required when ciRoleEnabled is true (<owner>/<repository>, e.g. acme/dataplatform)",
    )
    check(
        repository == "" or github_repository_problem(repository) is None,
        "ciGithubRepository",
        github_repository_problem(repository) or "",
    )
    branches, environments = values["ciDeployBranches"], values["ciDeployEnvironments"]
    bad_branches = [b for b in branches if not is_branch_name(b)]
    check(
        not bad_branches,
        "ciDeployBranches",
        "not exact git branch names (no spaces, control characters or ~ ^ : ? * [ \\; no '..', '@{' or '//'; "
        "no part starting with '.' or ending in '.lock'; not starting with '-' or '/' nor ending in '/' or '.'): "
        + ", ".join(bad_branches),
    )
    check(len(set(branches)) == len(branches), "ciDeployBranches", "lists a branch twice")
    bad_environments = [e for e in environments if not is_environment_name(e)]
    check(
        not bad_environments,
        "ciDeployEnvironments",
        "not GitHub environment names (1-255 characters, no wildcards * or ?, no control characters, "
        "no leading or trailing spaces): " + ", ".join(bad_environments),
    )
    check(
        len({e.lower() for e in environments}) == len(environments),
        "ciDeployEnvironments",
        "lists an environment twice (GitHub environment names are not case sensitive)",
    )
    check(
        not enabled or bool(branches or environments),
        "ciDeployBranches",
        "must not be empty while ciDeployEnvironments is empty too (with ciRoleEnabled true no workflow "
        "could assume the role)",
    )
    check(
        values["ciOidcProviderArn"] == ""
        or _GITHUB_OIDC_PROVIDER_ARN.fullmatch(values["ciOidcProviderArn"]) is not None,
        "ciOidcProviderArn",
        "must be empty (the stack creates the provider) or the ARN of the account's IAM OIDC provider for "
        "GitHub Actions, e.g. arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
    )


def github_repository_problem(repository: str) -> str | None:
    """None if `repository` is a GitHub "<owner>/<repository>", else what is wrong with it."""
    name = repository.partition("/")[2]
    if (
        _GITHUB_REPOSITORY.fullmatch(repository) is None
        or name in (".", "..")
        or name.lower().endswith((".git", ".wiki"))
    ):
        return (
            "must be <owner>/<repository> as GitHub spells it: the owner 1-39 letters, digits or single "
            "hyphens (not first or last), the repository 1-100 letters, digits, '.', '-' or '_' "
            "(not '.' or '..', not ending in .git or .wiki)"
        )
    return None


_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def is_branch_name(name: str) -> bool:
    """A branch `git check-ref-format --branch` accepts, and so never a wildcard pattern."""
    return (
        0 < len(name) <= 255
        and _BRANCH_FORBIDDEN.search(name) is None
        and name != "@"
        and not name.startswith(("-", "/"))
        and not name.endswith(("/", "."))
        and not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
    )


def is_environment_name(name: str) -> bool:
    """A GitHub environment name (up to 255 characters) that IAM compares literally, never as a pattern."""
    return 0 < len(name) <= 255 and name == name.strip() and re.search(r"[\x00-\x1f\x7f*?]", name) is None


def _is_date(text: str) -> bool:
    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None and bool(date.fromisoformat(text))
    except ValueError:
        return False


_FREQUENCY = re.compile(r"^([1-9][0-9]*)(s|min|h)$")


def frequency_seconds(text: str) -> int | None:
    """Seconds of a time-series step such as 30s, 15min or 1h; None unless it divides a day."""
    match = _FREQUENCY.match(text)
    if not match:
        return None
    seconds = int(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]
    return seconds if 86400 % seconds == 0 else None


def _parse_vcpu(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


def _fmt(vcpu: float) -> str:
    return f"{vcpu:g}"


def _is_private_cidr(text: str) -> bool:
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return False
    return network.is_private and 16 <= network.prefixlen <= 24


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#L W-]+$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")


def schedule_expression_problem(expression: str) -> str | None:
    """None if EventBridge Scheduler accepts the expression, else what is wrong with it."""
    rate = _RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1:
            return "rate() needs a positive amount"
        if (amount == 1) != (not unit.endswith("s")):
            return f"rate({amount} {unit}): use the singular unit for 1 and the plural otherwise"
        return None
    if _AT.match(expression):
        return None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split(" ")
        if len(fields) != 6:
            return f"cron() needs 6 fields (minutes hours day-of-month month day-of-week year), found {len(fields)}"
        if not all(_CRON_FIELD.match(f) for f in fields):
            return "cron() fields may use only digits, names, and * ? / , - # L W"
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            return "cron(): exactly one of day-of-month and day-of-week must be '?'"
        return None
    return "must be rate(...), cron(...) or at(...)"
