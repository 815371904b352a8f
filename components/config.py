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
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from components.aws_limits import (
    GLUE_TIMEOUT_MINUTES,
    GLUE_WORKER_TYPES,
    LOG_RETENTION_DAYS,
    REDSHIFT_MAX_CAPACITY,
    REDSHIFT_RPU_RANGE,
    REDSHIFT_USAGE_LIMIT_ACTIONS,
)

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
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
            "notificationEmails",
            "array",
            [],
            "E-mail addresses subscribed to pipeline success/failure notifications",
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


@cache
def schema() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's `config:` block: the schema users and the Pulumi CLI see."""
    return yaml.safe_load(PROJECT_FILE.read_text())["config"]


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
        notification_emails=values["notificationEmails"],
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
