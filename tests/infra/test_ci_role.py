"""The CI deploy role (components/ci.py) in the whole program: off by default, and when a stack enables it
exactly GitHub's OIDC provider and one role trusted by this repository's allowed branches and environments."""

from __future__ import annotations

import json
import re
from typing import Any

import parliament
import pulumi
import pytest

from components.ci import GithubDeployRole, GithubDeployRoleArgs
from components.config import ConfigError
from tests.infra.harness import ACCOUNT, Estate, build_estate, run_under_mocks

PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
EXISTING_PROVIDER_ARN = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"
ENABLED = {"dataplatform:ciRoleEnabled": "true", "dataplatform:ciGithubRepository": "acme/dataplatform"}
PR_STACK = "pr-4812-add-device-latency-percentiles-and-more"
CUSTOM = {
    **ENABLED,
    "dataplatform:ciDeployBranches": json.dumps(["main", "release/2026.1"]),
    "dataplatform:ciDeployEnvironments": json.dumps(["Production EU"]),
    "dataplatform:ciOidcProviderArn": EXISTING_PROVIDER_ARN,
}
CI_TYPES = {
    "dataplatform:ci:GithubDeployRole",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
}
ESTATE_PROVIDER = "urn:pulumi:{stack}::dataplatform::pulumi:pulumi:Stack$pulumi:providers:aws::aws::aws-id"


class Built:
    def __init__(self, estate: Estate, exports: dict[str, Any]) -> None:
        self.estate, self.exports = estate, exports


def build(stack: str, stack_file: str, overrides: dict[str, str] | None = None) -> Built:
    """The whole program, also recording the stack outputs it exports (resolved)."""
    exports: dict[str, Any] = {}
    real_export = pulumi.export

    def export(name: str, value: Any) -> None:
        pulumi.Output.from_input(value).apply(lambda v: exports.__setitem__(name, v))
        real_export(name, value)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pulumi, "export", export)
        estate = build_estate(stack, stack_file, overrides)
    return Built(estate, exports)


@pytest.fixture(scope="module")
def dev() -> Built:
    return build("dev", "Pulumi.dev.yaml")


@pytest.fixture(scope="module")
def prod() -> Built:
    return build("prod", "Pulumi.prod.yaml")


@pytest.fixture(scope="module")
def enabled() -> Built:
    return build("dev", "Pulumi.dev.yaml", ENABLED)


@pytest.fixture(scope="module")
def custom() -> Built:
    """A long pull-request stack name, custom allow lists, and the account's existing provider."""
    return build(PR_STACK, "Pulumi.dev.yaml", CUSTOM)


def ci_resources(estate: Estate) -> list:
    return [r for r in estate.resources if r.type in CI_TYPES and (r.name == "ci" or r.name.startswith("ci-"))]


def trust(estate: Estate) -> dict[str, Any]:
    return json.loads(estate.named("ci-deploy-role").inputs["assumeRolePolicy"])


def inline(estate: Estate) -> dict[str, Any]:
    return json.loads(estate.named("ci-deploy-role-iam").inputs["policy"])


def expected_trust(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GithubActionsDeploy",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": subjects,
                    }
                },
            }
        ],
    }


def expected_inline(provider_arn: str) -> dict[str, Any]:
    services = ["batch.amazonaws.com", "ecs.amazonaws.com", "redshift.amazonaws.com"]
    project_roles = f"arn:aws:iam::{ACCOUNT}:role/dataplatform-*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProjectRoles",
                "Effect": "Allow",
                "Action": [
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:DeleteRolePolicy",
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListInstanceProfilesForRole",
                    "iam:ListRolePolicies",
                    "iam:ListRoleTags",
                    "iam:PassRole",
                    "iam:PutRolePolicy",
                    "iam:TagRole",
                    "iam:UntagRole",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:UpdateRole",
                    "iam:UpdateRoleDescription",
                ],
                "Resource": [project_roles],
            },
            {
                "Sid": "AttachOnlyPowerUserAccess",
                "Effect": "Allow",
                "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                "Resource": [project_roles],
                "Condition": {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/PowerUserAccess"}},
            },
            {
                "Sid": "ReadGithubOidcProvider",
                "Effect": "Allow",
                "Action": ["iam:GetOpenIDConnectProvider"],
                "Resource": [provider_arn],
            },
            {
                "Sid": "ListOidcProviders",
                "Effect": "Allow",
                "Action": ["iam:ListOpenIDConnectProviders"],
                "Resource": ["*"],
            },
            {
                "Sid": "EstateServiceLinkedRoles",
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": [f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{s}/*" for s in services],
                "Condition": {"StringEquals": {"iam:AWSServiceName": services}},
            },
            {
                "Sid": "NoOtherServiceLinkedRoles",
                "Effect": "Deny",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": ["*"],
                "Condition": {"StringNotEquals": {"iam:AWSServiceName": services}},
            },
        ],
    }


# --- off by default ---------------------------------------------------------------------------------


def test_disabled_by_default_in_dev_and_prod(dev: Built, prod: Built) -> None:
    for built in (dev, prod):
        assert ci_resources(built.estate) == []
        assert built.estate.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
        assert built.estate.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
        assert not any(
            r.type == "aws:iam/role:Role" and "ci-deploy" in r.inputs["namePrefix"] for r in built.estate.resources
        )
        assert {"ci_deploy_role_arn", "ci_oidc_provider_arn"}.isdisjoint(built.exports)
        assert "kms_key_arn" in built.exports  # the export recorder works


def test_enabling_adds_only_the_ci_component(dev: Built, enabled: Built) -> None:
    def keyed(estate: Estate) -> dict[tuple[str, str], str]:
        return {(r.type, r.name): json.dumps(r.inputs, sort_keys=True) for r in estate.resources}

    before, after = keyed(dev.estate), keyed(enabled.estate)
    assert sorted(set(after) - set(before)) == [
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "ci-github-oidc"),
        ("aws:iam/role:Role", "ci-deploy-role"),
        ("aws:iam/rolePolicy:RolePolicy", "ci-deploy-role-iam"),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ci-deploy-role-power-user"),
        ("dataplatform:ci:GithubDeployRole", "ci"),
    ]
    assert set(before) <= set(after)
    # Every other resource is registered with exactly the inputs it had without the CI role.
    assert {key: after[key] for key in before} == before
    assert len(enabled.estate.resources) == len(dev.estate.resources) + 5


# --- the provider -----------------------------------------------------------------------------------


def test_exactly_one_github_oidc_provider_without_thumbprints(enabled: Built) -> None:
    providers = enabled.estate.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert [(p.name, p.inputs) for p in providers] == [
        (
            "ci-github-oidc",
            {"url": "https://token.actions.githubusercontent.com", "clientIdLists": ["sts.amazonaws.com"]},
        )
    ]


def test_exports_role_and_provider(enabled: Built) -> None:
    role_name = enabled.estate.named("ci-deploy-role").inputs["namePrefix"] + "20260101000000000000000001"
    assert enabled.exports["ci_deploy_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    assert enabled.exports["ci_oidc_provider_arn"] == PROVIDER_ARN


def test_an_existing_provider_is_trusted_and_none_is_created(custom: Built) -> None:
    assert custom.estate.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert trust(custom.estate)["Statement"][0]["Principal"] == {"Federated": EXISTING_PROVIDER_ARN}
    assert custom.exports["ci_oidc_provider_arn"] == EXISTING_PROVIDER_ARN
    assert {(r.type, r.name) for r in ci_resources(custom.estate)} == {
        ("dataplatform:ci:GithubDeployRole", "ci"),
        ("aws:iam/role:Role", "ci-deploy-role"),
        ("aws:iam/rolePolicy:RolePolicy", "ci-deploy-role-iam"),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ci-deploy-role-power-user"),
    }


# --- the role ---------------------------------------------------------------------------------------


def test_trust_policy_default_branch_and_environments(enabled: Built) -> None:
    assert trust(enabled.estate) == expected_trust(
        PROVIDER_ARN,
        [
            "repo:acme/dataplatform:ref:refs/heads/main",
            "repo:acme/dataplatform:environment:preview",
            "repo:acme/dataplatform:environment:dev",
            "repo:acme/dataplatform:environment:prod",
        ],
    )


def test_trust_policy_custom_branches_and_environments(custom: Built) -> None:
    assert trust(custom.estate) == expected_trust(
        EXISTING_PROVIDER_ARN,
        [
            "repo:acme/dataplatform:ref:refs/heads/main",
            "repo:acme/dataplatform:ref:refs/heads/release/2026.1",
            "repo:acme/dataplatform:environment:Production EU",
        ],
    )


def test_trust_never_matches_patterns_pull_requests_or_other_repositories(enabled: Built, custom: Built) -> None:
    for built in (enabled, custom):
        (statement,) = trust(built.estate)["Statement"]
        assert set(statement["Condition"]) == {"StringEquals"}  # no StringLike: nothing is a pattern
        for subject in statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]:
            assert subject.startswith("repo:acme/dataplatform:")
            assert "*" not in subject and "?" not in subject and "pull_request" not in subject


def test_role_session_name_and_description(enabled: Built, custom: Built) -> None:
    role = enabled.estate.named("ci-deploy-role").inputs
    assert role["maxSessionDuration"] == 3600
    assert role["namePrefix"] == "dataplatform-dev-ci-deploy-"
    assert role["description"] == "GitHub Actions deploys of acme/dataplatform (dataplatform/dev)"
    # A long pull-request stack name is shortened with a hash and still fits IAM's 64 characters.
    prefix = custom.estate.named("ci-deploy-role").inputs["namePrefix"]
    assert prefix.startswith("dataplatform-pr-4812-") and prefix.endswith("-")
    assert len(prefix) + 26 <= 64
    assert re.fullmatch(r"[\w+=,.@-]+", prefix)


def test_power_user_access_attached(enabled: Built) -> None:
    role_name = enabled.estate.named("ci-deploy-role").inputs["namePrefix"] + "20260101000000000000000001"
    assert enabled.estate.named("ci-deploy-role-power-user").inputs == {
        "role": role_name,
        "policyArn": "arn:aws:iam::aws:policy/PowerUserAccess",
    }


def test_inline_policy_limits_iam_to_project_roles(enabled: Built, custom: Built) -> None:
    assert inline(enabled.estate) == expected_inline(PROVIDER_ARN)
    # Every stack of the project shares the role pattern; the reused provider is the one it may read.
    assert inline(custom.estate) == expected_inline(EXISTING_PROVIDER_ARN)
    assert enabled.estate.named("ci-deploy-role-iam").inputs["role"] == "ci-deploy-role-id"


# parliament lints identity policies. A trust policy has no Resource (its resource is the role), and
# parliament's data knows neither IAM OIDC provider ARNs as federated principals (only SAML providers
# and four built-in web identity providers) nor the `<provider>:aud`/`:sub` keys IAM defines per OIDC
# provider. The trust policy is therefore checked with the role as its Resource, and exactly those
# three findings are known false positives.
TRUST_FALSE_POSITIVES = {
    ("UNKNOWN_FEDERATION_SOURCE", PROVIDER_ARN),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "Unknown condition token.actions.githubusercontent.com:aud for action sts:AssumeRoleWithWebIdentity",
    ),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "Unknown condition token.actions.githubusercontent.com:sub for action sts:AssumeRoleWithWebIdentity",
    ),
}


def trust_findings(document: dict[str, Any], role_arn: str) -> list[tuple[str, Any]]:
    as_identity_policy = {**document, "Statement": [{**s, "Resource": role_arn} for s in document["Statement"]]}
    findings = parliament.analyze_policy_string(json.dumps(as_identity_policy)).findings
    return [(f.issue, f.detail) for f in findings if (f.issue, f.detail) not in TRUST_FALSE_POSITIVES]


def test_parliament_finds_nothing_in_either_policy(enabled: Built) -> None:
    assert [
        (f.issue, f.detail) for f in parliament.analyze_policy_string(json.dumps(inline(enabled.estate))).findings
    ] == []
    role_arn = enabled.exports["ci_deploy_role_arn"]
    assert trust_findings(trust(enabled.estate), role_arn) == []
    # The filter hides only those three: a misspelt action, or operator, in the same document is found.
    action = trust(enabled.estate)
    action["Statement"][0]["Action"] = "sts:AssumeRoleWithWebIdentitty"
    assert [issue for issue, _ in trust_findings(action, role_arn)] == ["UNKNOWN_ACTION"]
    operator = trust(enabled.estate)
    operator["Statement"][0]["Condition"] = {"StringEqual": operator["Statement"][0]["Condition"]["StringEquals"]}
    assert [issue for issue, _ in trust_findings(operator, role_arn)] == ["UNKNOWN_OPERATOR"]


# --- component conventions --------------------------------------------------------------------------


def test_ci_resources_use_the_estate_provider_and_its_default_tags(enabled: Built, custom: Built) -> None:
    for built, stack in ((enabled, "dev"), (custom, PR_STACK)):
        provider = built.estate.one("pulumi:providers:aws")
        assert json.loads(provider.inputs["defaultTags"])["tags"]["stack"] == stack
        aws_resources = [r for r in ci_resources(built.estate) if r.type.startswith("aws:")]
        assert len(aws_resources) == (4 if built is enabled else 3)
        for r in aws_resources:
            assert r.provider == ESTATE_PROVIDER.format(stack=stack), r.name
            assert "tags" not in r.inputs, r.name


def test_children_are_parented_to_the_component(enabled: Built) -> None:
    options = {name: o for (typ, name), o in enabled.estate.options.items() if name == "ci" or name.startswith("ci-")}
    assert options.pop("ci").parent_type == "pulumi:pulumi:Stack"
    assert sorted(options) == ["ci-deploy-role", "ci-deploy-role-iam", "ci-deploy-role-power-user", "ci-github-oidc"]
    assert {o.parent_type for o in options.values()} == {"dataplatform:ci:GithubDeployRole"}
    assert all(o.protect for o in options.values())  # a destroy never cuts CI off
    assert not any(o.retain_on_delete for o in options.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"repository": "acme/dataplatform", "branches": ("feature/*",)},
            "GithubDeployRole for 'acme/dataplatform': branch 'feature/*' is not a git branch name",
        ),
        (
            {"repository": "acme/dataplatform", "branches": (), "environments": ("prod*",)},
            "GithubDeployRole for 'acme/dataplatform': environment 'prod*' is not a GitHub environment name",
        ),
        (
            {"repository": "acme/dataplatform", "branches": ()},
            "GithubDeployRole for 'acme/dataplatform': no branch and no environment is allowed: no workflow "
            "could assume the role",
        ),
        (
            {"repository": "acme/*"},
            "GithubDeployRole for 'acme/*': must be <owner>/<repository> as GitHub spells it: the owner 1-39 "
            "letters, digits or single hyphens (not first or last), the repository 1-100 letters, digits, '.', "
            "'-' or '_' (not '.' or '..', not ending in .git or .wiki)",
        ),
    ],
)
def test_the_component_refuses_patterns_and_empty_allow_lists(args: dict[str, Any], message: str) -> None:
    def program() -> None:
        GithubDeployRole("ci", GithubDeployRoleArgs(account_id=ACCOUNT, **args))

    with pytest.raises(ValueError) as raised:
        run_under_mocks("dev", {}, program)
    assert str(raised.value) == message


# --- configuration ----------------------------------------------------------------------------------


def test_bad_ci_settings_fail_the_preview_with_every_problem() -> None:
    with pytest.raises(ConfigError) as raised:
        build_estate(
            "dev",
            "Pulumi.dev.yaml",
            {
                "dataplatform:ciRoleEnabled": "true",
                "dataplatform:ciDeployBranches": json.dumps(["main", "feature/*"]),
                "dataplatform:ciDeployEnvironments": json.dumps(["prod?"]),
                "dataplatform:ciOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/accounts.google.com",
            },
        )
    assert raised.value.problems == [
        "dataplatform:ciGithubRepository = '' is invalid: required when ciRoleEnabled is true "
        "(<owner>/<repository>, e.g. acme/dataplatform)",
        'dataplatform:ciDeployBranches = ["main", "feature/*"] is invalid: not exact git branch names (no spaces, '
        "control characters or ~ ^ : ? * [ \\; no '..', '@{' or '//'; no part starting with '.' or ending in "
        "'.lock'; not starting with '-' or '/' nor ending in '/' or '.'): feature/*",
        'dataplatform:ciDeployEnvironments = ["prod?"] is invalid: not GitHub environment names (1-255 '
        "characters, no wildcards * or ?, no control characters, no leading or trailing spaces): prod?",
        "dataplatform:ciOidcProviderArn = 'arn:aws:iam::123456789012:oidc-provider/accounts.google.com' is "
        "invalid: must be empty (the stack creates the provider) or the ARN of the account's IAM OIDC provider "
        "for GitHub Actions, e.g. arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
    ]


def test_enabled_with_empty_allow_lists_fails_the_preview() -> None:
    with pytest.raises(ConfigError) as raised:
        build_estate(
            "dev",
            "Pulumi.dev.yaml",
            {**ENABLED, "dataplatform:ciDeployBranches": "[]", "dataplatform:ciDeployEnvironments": "[]"},
        )
    assert raised.value.problems == [
        "dataplatform:ciDeployBranches = [] is invalid: must not be empty while ciDeployEnvironments is empty too "
        "(with ciRoleEnabled true no workflow could assume the role)"
    ]
