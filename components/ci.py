"""CI: the IAM role GitHub Actions assumes through OpenID Connect to deploy this project's stacks.

No access keys: a workflow exchanges its short-lived GitHub OIDC token for one-hour role credentials
(`aws-actions/configure-aws-credentials` with `role-to-assume`). The role trusts only this repository's
allowed branches and GitHub environments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import github_repository_problem, is_branch_name, is_environment_name
from components.iam import document, statement

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
# The audience aws-actions/configure-aws-credentials requests for its token.
STS_AUDIENCE = "sts.amazonaws.com"
POWER_USER_ACCESS = "arn:aws:iam::aws:policy/PowerUserAccess"
# Services whose service-linked role a first deployment of the estate in a fresh account may create:
# Batch (AWSServiceRoleForBatch, for compute environments without a service role), ECS (AWSServiceRoleForECS,
# for the Fargate cluster Batch manages) and Redshift (AWSServiceRoleForRedshift, which Redshift Serverless
# uses for its VPC endpoints and network interfaces). Glue, Step Functions, EventBridge, Scheduler,
# Athena, DynamoDB, S3, KMS, SNS, SQS, ECR, Logs and the VPC resources need none.
SERVICE_LINKED_ROLE_SERVICES = ("batch.amazonaws.com", "ecs.amazonaws.com", "redshift.amazonaws.com")
# What deploying (and refreshing, and destroying) the estate's roles takes: the roles, their one inline
# policy, their tags, and handing them to the services that run as them.
ROLE_MANAGEMENT_ACTIONS = [
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListRoleTags",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:PassRole",
]


@dataclass(frozen=True, kw_only=True)
class GithubDeployRoleArgs:
    account_id: pulumi.Input[str]
    # "<owner>/<repository>" exactly as GitHub spells it (IAM compares the token's subject case-sensitively).
    repository: str
    # Branches whose workflows may deploy (subject repo:<owner>/<repository>:ref:refs/heads/<branch>).
    # Exact names: the trust policy compares with StringEquals, so nothing is a wildcard.
    branches: tuple[str, ...] = ("main",)
    # GitHub environments whose jobs may deploy (subject repo:<owner>/<repository>:environment:<name>).
    # Default none: an environment's subject does not name a branch, so only list environments whose
    # deployment branch rules and reviewers are set in GitHub.
    environments: tuple[str, ...] = ()
    # The account's existing GitHub OIDC provider; None creates it. IAM holds one provider per URL and
    # account, so a second stack in the same account passes the first one's ARN.
    oidc_provider_arn: pulumi.Input[str] | None = None


class GithubDeployRole(pulumi.ComponentResource):
    """GitHub's OIDC identity provider (unless an existing one is given) and the role its workflows
    assume to deploy: trusted only for this repository's allowed branches and environments, the
    `sts.amazonaws.com` audience, one-hour sessions, holding PowerUserAccess plus IAM rights limited to
    this project's roles.
    """

    role_arn: pulumi.Output[str]
    provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GithubDeployRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:ci:GithubDeployRole", name, None, opts)
        subjects = trusted_subjects(args.repository, args.branches, args.environments)
        # Protected: this is CI's way into the account, so a `pulumi destroy` run by CI must not cut off
        # the branch it sits on (nor the provider other stacks trust). Removing them is a deliberate
        # `pulumi state unprotect` by an administrator.
        child = pulumi.ResourceOptions(parent=self, protect=True)

        if args.oidc_provider_arn is None:
            # No thumbprints: IAM verifies GitHub's certificate against its own trusted root CAs and
            # ignores any thumbprint for this issuer; pulumi-aws 7 leaves thumbprint_lists optional.
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc", url=GITHUB_OIDC_URL, client_id_lists=[STS_AUDIENCE], opts=child
            )
            provider_arn: pulumi.Input[str] = provider.arn
        else:
            provider_arn = args.oidc_provider_arn

        role = aws.iam.Role(
            f"{name}-deploy-role",
            name_prefix=naming.physical_prefix(f"{name}-deploy", 64),
            description=f"GitHub Actions deploys of {args.repository} ({pulumi.get_project()}/{pulumi.get_stack()})",
            assume_role_policy=trust_policy(provider_arn, subjects),
            max_session_duration=3600,
            opts=child,
        )
        # Deploying the whole estate touches most services (S3, KMS, VPC, Batch, ECR, Glue, Redshift, Step
        # Functions, ...), so listing actions per resource would be a second copy of the program that
        # drifts. PowerUserAccess grants every service except IAM, Organizations and Account; IAM is the
        # escalation path (a role with an admin policy is admin), so IAM comes only from the inline policy
        # below and only for this project's role names. That bounds which roles CI can touch, not what a
        # project role's inline policy may grant: the allowed branches and environments (with GitHub's
        # environment protection) are the real gate. A permissions boundary on every estate role, required
        # by this policy's iam:PermissionsBoundary condition, would close the gap.
        aws.iam.RolePolicyAttachment(
            f"{name}-deploy-role-power-user", role=role.name, policy_arn=POWER_USER_ACCESS, opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-role-iam",
            role=role.id,
            policy=document(iam_statements(args.account_id, provider_arn)),
            opts=child,
        )

        self.role_arn = role.arn
        self.provider_arn = pulumi.Output.from_input(provider_arn)
        self.register_outputs({"role_arn": self.role_arn, "provider_arn": self.provider_arn})


def trusted_subjects(repository: str, branches: tuple[str, ...], environments: tuple[str, ...]) -> list[str]:
    """The `sub` claims allowed to assume the role; raises on anything that is not an exact name."""
    problems = [p for p in [github_repository_problem(repository)] if p]
    problems += [f"branch {b!r} is not a git branch name" for b in branches if not is_branch_name(b)]
    problems += [
        f"environment {e!r} is not a GitHub environment name" for e in environments if not is_environment_name(e)
    ]
    if not branches and not environments:
        problems.append("no branch and no environment is allowed: no workflow could assume the role")
    if problems:
        raise ValueError(f"GithubDeployRole for {repository!r}: {'; '.join(problems)}")
    return [f"repo:{repository}:ref:refs/heads/{b}" for b in dict.fromkeys(branches)] + [
        f"repo:{repository}:environment:{e}" for e in dict.fromkeys(environments)
    ]


def trust_policy(provider_arn: pulumi.Input[str], subjects: list[str]) -> pulumi.Output[str]:
    """AssumeRoleWithWebIdentity from GitHub's provider, for the STS audience and exactly `subjects`."""
    return document(
        [
            {
                "Sid": "GithubActionsDeploy",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subjects,
                    }
                },
            }
        ]
    )


def iam_statements(account_id: pulumi.Input[str], provider_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The deploy role's IAM rights: this project's roles (every stack: pull-request stacks create their
    own), reading the OIDC provider, and the service-linked roles the estate's services need."""
    project_roles = pulumi.Output.concat("arn:aws:iam::", account_id, ":role/", _project_prefix(), "-*")
    linked_roles = [
        pulumi.Output.concat("arn:aws:iam::", account_id, ":role/aws-service-role/", service, "/*")
        for service in SERVICE_LINKED_ROLE_SERVICES
    ]
    services = list(SERVICE_LINKED_ROLE_SERVICES)
    return [
        statement(ROLE_MANAGEMENT_ACTIONS, [project_roles], sid="ProjectRoles"),
        # The only managed policy the program attaches is PowerUserAccess (to this role), so attaching,
        # say, AdministratorAccess to a project role is refused.
        statement(
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [project_roles],
            condition={"ArnEquals": {"iam:PolicyARN": POWER_USER_ACCESS}},
            sid="AttachOnlyPowerUserAccess",
        ),
        # Read-only: creating, changing or deleting the account's GitHub provider is an administrator's job.
        statement(["iam:GetOpenIDConnectProvider"], [provider_arn], sid="ReadGithubOidcProvider"),
        statement(["iam:ListOpenIDConnectProviders"], ["*"], sid="ListOidcProviders"),
        statement(
            ["iam:CreateServiceLinkedRole"],
            linked_roles,
            condition={"StringEquals": {"iam:AWSServiceName": services}},
            sid="EstateServiceLinkedRoles",
        ),
        # PowerUserAccess itself allows iam:CreateServiceLinkedRole for every service; only a deny makes
        # the list above the limit.
        {
            "Sid": "NoOtherServiceLinkedRoles",
            "Effect": "Deny",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": ["*"],
            "Condition": {"StringNotEquals": {"iam:AWSServiceName": services}},
        },
    ]


def _project_prefix() -> str:
    """The project part every physical name starts with (components.naming cleans names the same way)."""
    return re.sub("[^a-z0-9-]+", "-", pulumi.get_project().lower()).strip("-")
