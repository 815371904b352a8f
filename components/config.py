"""Typed stack configuration: the shared settings and the generic loader that validates every setting.

A setting is declared once, in code: the estate's shared settings here, each pipeline's own in its
`ConfigSection` (pipelines/<name>.py). Pulumi.yaml's `config:` block is the schema users and the
Pulumi CLI see; tests/infra/test_config.py keeps it equal to these declarations (key, type, default,
description). The loader parses every value by its declared type, reports a misspelt key instead of
ignoring it, asks every section to validate its keys, and fails with every problem at once.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from components.aws_limits import (
    GLUE_TIMEOUT_MINUTES,
    GLUE_WORKER_TYPES,
    LOG_RETENTION_DAYS,
    REDSHIFT_MAX_CAPACITY,
    REDSHIFT_RPU_RANGE,
    REDSHIFT_USAGE_LIMIT_ACTIONS,
)

# A key prefix of lower-case path segments ending in '/', as the raw bucket's uploads use.
UPLOAD_PREFIX = re.compile(r"([a-z0-9][a-z0-9_.-]*/)+")
# A lower-case SQL identifier (Redshift table and schema names).
SQL_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,126}")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# GitHub: an owner (user or organisation) is 1-39 letters, digits and single hyphens, neither first nor
# last; a repository is 1-100 ASCII letters, digits, '.', '-' and '_' ('.git' is stripped, '.wiki' reserved).
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}")
# The one IAM OIDC provider an account can hold for GitHub Actions' issuer.
_GITHUB_OIDC_PROVIDER_ARN = re.compile(r"arn:aws:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com")
_TYPES = ("string", "integer", "boolean", "array")

# Validation records a problem as check(ok, key, what is allowed): nothing when ok.
Check = Callable[[bool, str, str], None]
Settings = TypeVar("Settings")


class ConfigError(ValueError):
    """Every invalid setting at once, each naming the key, the value and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    """One key of the stack configuration, as Pulumi.yaml declares it. An array is a list of strings."""

    key: str
    type: str  # string, integer, boolean or array
    default: Any
    description: str

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"setting {self.key}: type must be one of {', '.join(_TYPES)}, not {self.type}")

    def schema(self) -> dict[str, Any]:
        """The entry under Pulumi.yaml's `config:`."""
        items = {"items": {"type": "string"}} if self.type == "array" else {}
        return {"type": self.type, **items, "description": self.description, "default": self.default}


@dataclass(frozen=True)
class ConfigSection(Generic[Settings]):
    """A pipeline's part of the stack configuration: its keys, their checks, and its typed settings."""

    settings: tuple[Setting, ...]
    # Records each invalid value of these keys with `check`; sees every parsed value.
    validate: Callable[[Mapping[str, Any], Check], None]
    # The pipeline's settings object from the parsed (and valid) values.
    parse: Callable[[Mapping[str, Any]], Settings]
    # The key naming the raw-bucket prefix whose uploads belong to this pipeline, if any: no two
    # pipelines' prefixes may contain one another (an upload would start both).
    upload_prefix_key: str | None = None


@dataclass(frozen=True)
class GlueConfig:
    worker_type: str
    workers: int
    timeout_minutes: int


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
    # Subscribed to the alerts topic (failures and alarms).
    alert_emails: tuple[str, ...]
    # Subscribed to the notifications topic (success news); empty unless success_notifications.
    notification_emails: tuple[str, ...]
    # Whether the notifications topic exists and successful runs are announced on it.
    success_notifications: bool
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
    # The digest-pinned ECR image every Batch job runs instead of one this stack builds; "" builds it.
    batch_image: str
    # Accounts whose principals may pull this stack's Batch images (its ECR repository policy).
    ecr_pull_account_ids: tuple[str, ...]
    glue: GlueConfig
    ci: CiConfig
    # Every known pipeline's settings (its section's `parse`), by pipeline name, enabled or not.
    pipeline_settings: Mapping[str, Any] = field(default_factory=dict)

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


def shared_settings(pipeline_names: Sequence[str]) -> tuple[Setting, ...]:
    """The estate's settings besides the pipelines' own; `pipelines` defaults to every known pipeline."""
    return (
        Setting(
            "pipelines",
            "array",
            list(pipeline_names),
            f"Pipelines to build in this stack (known - {', '.join(pipeline_names)})",
        ),
        Setting(
            "removeDataOnDestroy",
            "boolean",
            False,
            "true lets `pulumi destroy` delete data (buckets emptied, ECR images, Redshift without retention). "
            "Keep false for prod.",
        ),
        Setting("owner", "string", "data-platform", "Team that owns the estate, as the `owner` tag on every resource"),
        Setting("costCenter", "string", "unassigned", "The `cost-center` tag on every resource"),
        Setting(
            "logRetentionDays",
            "integer",
            30,
            "Retention of every CloudWatch log group (a value CloudWatch accepts)",
        ),
        Setting(
            "alertEmails",
            "array",
            [],
            "E-mail addresses subscribed to the alerts topic: every pipeline failure and every alarm",
        ),
        Setting(
            "notificationEmails",
            "array",
            [],
            "E-mail addresses subscribed to the notifications topic: routine success news (needs "
            "successNotifications true)",
        ),
        Setting(
            "successNotifications",
            "boolean",
            True,
            "Create the notifications topic and announce every successful run on it; false sends only failures "
            "(to the alerts topic)",
        ),
        Setting("vpcCidr", "string", "10.40.0.0/16", "Private IPv4 CIDR (/16 to /24) of the estate's VPC"),
        Setting(
            "availabilityZoneCount",
            "integer",
            3,
            "Zones to spread subnets over (Redshift Serverless needs at least 3)",
        ),
        Setting(
            "natGateway",
            "boolean",
            False,
            "false (zero idle cost) runs Batch tasks in public subnets with public IPs and no inbound rules; "
            "true uses private subnets behind one NAT gateway",
        ),
        Setting("redshiftDatabase", "string", "analytics", "Database created in the Redshift Serverless namespace"),
        Setting(
            "redshiftBaseCapacity",
            "integer",
            8,
            "Redshift Serverless base capacity in RPUs (multiple of 8, 8 to 1024)",
        ),
        Setting("redshiftMaxCapacity", "integer", 0, "Redshift Serverless maximum RPUs (0 = no cap)"),
        Setting(
            "redshiftDailyRpuHourLimit",
            "integer",
            0,
            "RPU-hours the Redshift Serverless workgroup may use per day before redshiftUsageLimitAction "
            "applies (0 = no limit)",
        ),
        Setting(
            "redshiftUsageLimitAction",
            "string",
            "log",
            "What Redshift Serverless does at the daily RPU-hour limit - log (an entry in a system table), "
            "emit-metric (also a CloudWatch metric), or deactivate (refuse queries until the next day)",
        ),
        Setting("batchMaxVcpus", "integer", 16, "Maximum vCPUs the Fargate compute environment may run at once"),
        Setting(
            "batchUseSpot",
            "boolean",
            False,
            "Run Batch jobs on Fargate Spot (cheaper, may be interrupted; interrupted attempts are retried)",
        ),
        Setting(
            "batchImage",
            "string",
            "",
            "ECR image every Batch job runs, pinned by digest (<account>.dkr.ecr.<region>.amazonaws.com/<repository>"
            "@sha256:<digest>); the stack then builds and pushes none. Empty builds batch_image/. CI sets it for "
            "prod to the copy of dev's tested image",
        ),
        Setting(
            "ecrPullAccountIds",
            "array",
            [],
            "AWS accounts whose principals may pull this stack's Batch images (a repository policy), e.g. prod's "
            "account where prod promotes this stack's image",
        ),
        Setting("glueWorkerType", "string", "G.1X", "Worker type of every Glue job (G.1X, G.2X, G.4X, G.8X)"),
        Setting("glueWorkers", "integer", 2, "Workers per Glue job run (2 to 100)"),
        Setting("glueTimeoutMinutes", "integer", 60, "Timeout of each Glue job run (1 to 2880)"),
        Setting(
            "ciRoleEnabled",
            "boolean",
            False,
            "Create the IAM role GitHub Actions assumes (OIDC, no keys) to deploy this project's stacks; "
            "needs ciGithubRepository",
        ),
        Setting(
            "ciGithubRepository",
            "string",
            "",
            "<owner>/<repository> (exactly as GitHub spells it) whose workflows may assume the CI deploy role",
        ),
        Setting(
            "ciDeployBranches",
            "array",
            ["main"],
            "Branches whose workflows may assume the CI deploy role (exact git branch names, no wildcards)",
        ),
        Setting(
            "ciDeployEnvironments",
            "array",
            ["preview", "dev", "prod"],
            "GitHub environments whose jobs may assume the CI deploy role (protect them with deployment "
            "branch rules and reviewers)",
        ),
        Setting(
            "ciOidcProviderArn",
            "string",
            "",
            "ARN of the account's existing GitHub OIDC provider to trust; empty = this stack creates it "
            "(an account holds one per URL)",
        ),
    )


def declared_settings(sections: Mapping[str, ConfigSection[Any]]) -> tuple[Setting, ...]:
    """Every setting of the estate: the shared ones, then each pipeline section's, in order."""
    declared = (*shared_settings(tuple(sections)), *(s for section in sections.values() for s in section.settings))
    keys = [s.key for s in declared]
    if len(set(keys)) != len(keys):
        raise ValueError(f"settings declared twice: {sorted({k for k in keys if keys.count(k) > 1})}")
    return declared


def _parse(raw: str, kind: str) -> Any:
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
    value = json.loads(raw)  # array
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return tuple(value)


def load_config(
    raw: Mapping[str, str],
    project: str,
    stack: str,
    region: str | None,
    sections: Mapping[str, ConfigSection[Any]],
) -> StackConfig:
    """Validate raw Pulumi config values (`<project>:<key>` -> string as Pulumi stores it) against the
    shared settings and `sections` (pipeline name -> its config section, in the registry's order)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    declared = {s.key: s for s in declared_settings(sections)}
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == project and key not in declared:
            problems.append(f"{full_key} is not a known setting (known: {', '.join(sorted(declared))})")
    for key, setting in declared.items():
        full_key = f"{project}:{key}"
        if full_key not in raw:
            values[key] = tuple(setting.default) if setting.type == "array" else setting.default
            continue
        try:
            values[key] = _parse(raw[full_key], setting.type)
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
    _check_shared(values, check, known_pipelines=tuple(sections))
    # Every known pipeline's values are checked, enabled or not: a bad value is wrong either way.
    for section in sections.values():
        section.validate(values, check)
    _check_upload_prefixes(values, check, [s.upload_prefix_key for s in sections.values() if s.upload_prefix_key])
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
        alert_emails=values["alertEmails"],
        notification_emails=values["notificationEmails"],
        success_notifications=values["successNotifications"],
        vpc_cidr=values["vpcCidr"],
        availability_zone_count=values["availabilityZoneCount"],
        nat_gateway=values["natGateway"],
        redshift_database=values["redshiftDatabase"],
        redshift_base_capacity=values["redshiftBaseCapacity"],
        redshift_max_capacity=values["redshiftMaxCapacity"],
        redshift_daily_rpu_hour_limit=values["redshiftDailyRpuHourLimit"],
        redshift_usage_limit_action=values["redshiftUsageLimitAction"],
        batch_max_vcpus=values["batchMaxVcpus"],
        batch_use_spot=values["batchUseSpot"],
        batch_image=values["batchImage"],
        ecr_pull_account_ids=values["ecrPullAccountIds"],
        glue=GlueConfig(
            worker_type=values["glueWorkerType"],
            workers=values["glueWorkers"],
            timeout_minutes=values["glueTimeoutMinutes"],
        ),
        ci=CiConfig(
            enabled=values["ciRoleEnabled"],
            github_repository=values["ciGithubRepository"],
            deploy_branches=values["ciDeployBranches"],
            deploy_environments=values["ciDeployEnvironments"],
            oidc_provider_arn=values["ciOidcProviderArn"],
        ),
        pipeline_settings={name: section.parse(values) for name, section in sections.items()},
    )


def _check_shared(values: Mapping[str, Any], check: Check, known_pipelines: tuple[str, ...]) -> None:
    unknown = [p for p in values["pipelines"] if p not in known_pipelines]
    check(not unknown, "pipelines", f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(known_pipelines)}")
    check(len(set(values["pipelines"])) == len(values["pipelines"]), "pipelines", "lists a pipeline twice")
    check(
        values["logRetentionDays"] in LOG_RETENTION_DAYS,
        "logRetentionDays",
        f"CloudWatch allows one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
    )
    for key in ("alertEmails", "notificationEmails"):
        bad_emails = [e for e in values[key] if not _EMAIL.match(e)]
        check(not bad_emails, key, f"not e-mail addresses: {', '.join(bad_emails)}")
    check(
        values["successNotifications"] or not values["notificationEmails"],
        "notificationEmails",
        "must be empty while successNotifications is false (there is no notifications topic to subscribe to; "
        "failures go to alertEmails)",
    )
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
        top == 0 or (top >= base and top % 8 == 0 and top <= REDSHIFT_MAX_CAPACITY),
        "redshiftMaxCapacity",
        f"must be 0 (no cap) or a multiple of 8 from redshiftBaseCapacity to {REDSHIFT_MAX_CAPACITY}",
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
    check(
        values["batchImage"] == "" or parse_ecr_image(values["batchImage"]) is not None,
        "batchImage",
        f"must be empty (the stack builds its image) or an ECR image pinned by digest, {ECR_IMAGE_EXAMPLE}",
    )
    bad_accounts = [a for a in values["ecrPullAccountIds"] if re.fullmatch(r"[0-9]{12}", a) is None]
    check(not bad_accounts, "ecrPullAccountIds", f"not 12-digit AWS account ids: {', '.join(bad_accounts)}")
    check(
        len(set(values["ecrPullAccountIds"])) == len(values["ecrPullAccountIds"]),
        "ecrPullAccountIds",
        "lists an account twice",
    )
    check(
        values["glueWorkerType"] in GLUE_WORKER_TYPES,
        "glueWorkerType",
        f"Glue 5.0 Spark jobs run on {', '.join(GLUE_WORKER_TYPES)}",
    )
    check(2 <= values["glueWorkers"] <= 100, "glueWorkers", "must be 2 to 100")
    shortest, longest = GLUE_TIMEOUT_MINUTES
    check(
        shortest <= values["glueTimeoutMinutes"] <= longest,
        "glueTimeoutMinutes",
        f"Glue allows {shortest} to {longest} minutes",
    )


def check_upload_prefix(values: Mapping[str, Any], check: Check, key: str, example: str) -> None:
    """A pipeline's raw-bucket prefix setting: lower-case path segments ending in '/'."""
    check(
        UPLOAD_PREFIX.fullmatch(values[key]) is not None,
        key,
        f"must be an S3 key prefix of lower-case path segments ending in '/', e.g. {example}",
    )


def _check_upload_prefixes(values: Mapping[str, Any], check: Check, keys: list[str]) -> None:
    """No pipeline's upload prefix may contain another's: reported on the first key that overlaps an
    earlier one."""
    for i, key in enumerate(keys):
        mine = values[key]
        if any(mine.startswith(values[k]) or values[k].startswith(mine) for k in keys[:i]):
            names = ", ".join(keys[:-1]) + f" and {keys[-1]}" if len(keys) > 1 else keys[0]
            check(False, key, f"{names} must not contain one another (an upload would start two pipelines)")
            return


def _check_ci(values: Mapping[str, Any], check: Check) -> None:
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


def _is_private_cidr(text: str) -> bool:
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return False
    return network.is_private and 16 <= network.prefixlen <= 24


# --- settings every pipeline declares the same way (in its own module, under its key prefix) ---------------

# A Standard Step Functions execution runs at most one year (service quotas, "Maximum execution time":
# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html), so TimeoutSeconds can be no more.
MAX_RUN_MINUTES = 365 * 24 * 60
# What a derived run timeout adds to the longest its steps may take: queueing for Batch capacity, API retries.
RUN_TIMEOUT_MARGIN_MINUTES = 30


def run_timeout_setting(prefix: str, pipeline: str) -> Setting:
    """`<prefix>RunTimeoutMinutes`: the pipeline's state machine TimeoutSeconds, in minutes; 0 derives it."""
    return Setting(
        f"{prefix}RunTimeoutMinutes",
        "integer",
        0,
        f"Minutes one {pipeline} run (its state machine execution) may take before it is stopped as timed out "
        f"and alarms; 0 = the longest its steps may take (their timeouts, retries and polls) plus "
        f"{RUN_TIMEOUT_MARGIN_MINUTES} minutes",
    )


def check_run_timeout(values: Mapping[str, Any], check: Check, key: str) -> None:
    check(
        values[key] == 0 or 1 <= values[key] <= MAX_RUN_MINUTES,
        key,
        f"must be 0 (derived from the steps) or 1 to {MAX_RUN_MINUTES} minutes (a Standard Step Functions "
        "execution runs at most one year)",
    )


def run_timeout_seconds(configured_minutes: int, steps_minutes: int) -> int:
    """A state machine's TimeoutSeconds: the configured minutes, or (0) its steps' longest plus the margin."""
    return 60 * (configured_minutes or steps_minutes + RUN_TIMEOUT_MARGIN_MINUTES)


def parse_ratio(text: str, *, below_one: bool = False) -> float | None:
    """A ratio from 0 to 1 (to below 1 with `below_one`) written as a decimal ("0.05"); None if `text` is
    not one. Pulumi's project config has no number type (string, integer, boolean, array:
    https://github.com/pulumi/pulumi/blob/master/sdk/go/common/workspace/project.json), so ratios are strings."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < 1 or (value == 1 and not below_one) else None


def check_ratio(values: Mapping[str, Any], check: Check, key: str, *, below_one: bool = False) -> None:
    upper = "below 1" if below_one else "1"
    check(
        parse_ratio(values[key], below_one=below_one) is not None,
        key,
        f'must be a decimal number from 0 to {upper}, e.g. "0.05"',
    )


def ratio(text: str) -> float:
    """A ratio setting's value (already validated by check_ratio)."""
    return float(text)


def quarantine_ratio_setting(prefix: str, pipeline: str) -> Setting:
    """`<prefix>QuarantineAlarmRatio`: the quarantined/read row ratio above which an alarm goes to the alerts topic."""
    return Setting(
        f"{prefix}QuarantineAlarmRatio",
        "string",
        "0.05",
        f"Alarm when the {pipeline} jobs quarantine more than this share of the rows they read (a decimal from "
        '0 to below 1, quoted, e.g. "0.05"; "0" alarms on any quarantined row)',
    )


def check_quarantine_ratio(values: Mapping[str, Any], check: Check, key: str) -> None:
    """A quarantined/read ratio can only exceed thresholds below 1."""
    check_ratio(values, check, key, below_one=True)


# --- the Batch image a stack runs instead of building one -------------------------------------------------

# An image in an ECR private registry, by digest. The registry host is <account>.dkr.ecr.<region>.amazonaws.com
# (.com.cn in China); the repository pattern and its 2-256 characters are ECR's (botocore's ECR model, shape
# RepositoryName of CreateRepository); a digest is sha256 over the image manifest, 64 lower-case hex digits.
_ECR_IMAGE_BY_DIGEST = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?P<china>\.cn)?"
    r"/(?P<repository>[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*)"
    r"@(?P<digest>sha256:[0-9a-f]{64})"
)
ECR_IMAGE_EXAMPLE = "e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/dataplatform-dev-batch@sha256:<64 hex digits>"


@dataclass(frozen=True)
class EcrImage:
    """An ECR image named by digest: the registry (account, region, partition), the repository, the digest."""

    account: str
    region: str
    partition: str
    repository: str
    digest: str  # sha256:<hex>

    @property
    def uri(self) -> str:
        suffix = ".cn" if self.partition == "aws-cn" else ""
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com{suffix}/{self.repository}@{self.digest}"

    @property
    def repository_arn(self) -> str:
        """The repository's ARN: what IAM and the repository policy name when this image is pulled."""
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


def parse_ecr_image(uri: str) -> EcrImage | None:
    """`uri` as an ECR image pinned by digest, or None if it is not one."""
    match = _ECR_IMAGE_BY_DIGEST.fullmatch(uri)
    if match is None or not 2 <= len(match["repository"]) <= 256:
        return None
    region = match["region"]
    partition = "aws-cn" if match["china"] else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    if (partition == "aws-cn") != region.startswith("cn-"):
        return None
    return EcrImage(match["account"], region, partition, match["repository"], match["digest"])
