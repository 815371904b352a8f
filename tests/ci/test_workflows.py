"""The GitHub Actions workflows: valid for GitHub, and doing what the deployment design says.

Validity: check-jsonschema's vendored copy of SchemaStore's GitHub workflow schema, run offline.
Behaviour: the YAML parsed (PyYAML reads the key `on` as True; `load` puts it back) and checked
job by job: OIDC-only AWS credentials, least privilege, one update per stack at a time, the policy
pack on every preview and update, the PR stack's lifecycle (update, smoke test, comment; destroyed
on close whatever the smoke test said), dev before prod (update dev, smoke test, preview prod,
approve, update prod). The PR stack's configuration is taken from the workflow itself and the
whole estate is built with it; the smoke commands are parsed by the smoke CLI itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.harness import ROOT, build_estate, stack_config

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

PR_NUMBER = "${{ github.event.pull_request.number }}"
PR_STACK = f"pr-{PR_NUMBER}"
ROLE_ARN = "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
PULUMI_ORG = "${{ vars.PULUMI_ORG }}"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"

PULUMI = "pulumi/actions"
PULUMI_AUTH = "pulumi/auth-actions"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials"
# How every virtualenv installs a lock: hash-checked, as test_locks.py checks.
PIP_INSTALL_LOCK = "pip install --quiet --disable-pip-version-check --require-hashes -r"
UPDATES = {"up", "update", "destroy"}  # commands that change a stack (preview does not)
# GitHub environments, each holding its own AWS_DEPLOY_ROLE_ARN; prod-preview's role reads prod.
ENVIRONMENTS = {"preview", "dev", "prod-preview", "prod"}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1: the key `on` is a boolean to PyYAML
        data["on"] = data.pop(True)
    return data


WF: dict[str, dict[str, Any]] = {path.name: load(path) for path in WORKFLOWS}


def workflow_on(event: str) -> dict[str, Any]:
    found = [wf for wf in WF.values() if event in wf["on"]]
    assert len(found) == 1, f"expected one workflow triggered by {event}, found {len(found)}"
    return found[0]


PR_WF = workflow_on("pull_request")
DEPLOY_WF = workflow_on("push")


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, wf in WF.items():
        for job_id, job in wf["jobs"].items():
            yield name, job_id, job


JOBS = [pytest.param(job_id, job, id=f"{name}:{job_id}") for name, job_id, job in all_jobs()]


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if uses(s, action)]


def pulumi_step(job: dict[str, Any]) -> dict[str, Any] | None:
    found = steps_using(job, PULUMI)
    assert len(found) <= 1, "one Pulumi operation per job"
    return found[0] if found else None


def stack_of(step: dict[str, Any]) -> str:
    """The stack's own name (`dev`, `pr-${{ ... }}`) from `<org>/<stack>`."""
    org, _, stack = step["with"]["stack-name"].rpartition("/")
    assert org == PULUMI_ORG, "stacks are named <org>/<stack> in Pulumi Cloud, the org from vars.PULUMI_ORG"
    return stack


def pulumi_jobs(workflow: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(job id, job, its pulumi step) for every job running a Pulumi operation."""
    found = []
    for wf in [workflow] if workflow else WF.values():
        for job_id, job in wf["jobs"].items():
            step = pulumi_step(job)
            if step is not None:
                found.append((job_id, job, step))
    return found


def job_running_pulumi(workflow: dict[str, Any], command: str, stack: str) -> tuple[str, dict[str, Any], dict]:
    found = [
        (job_id, job, step)
        for job_id, job, step in pulumi_jobs(workflow)
        if step["with"]["command"] == command and stack_of(step) == stack
    ]
    assert len(found) == 1, f"expected one job running pulumi {command} on {stack}, found {len(found)}"
    return found[0]


def stack_file(stack: str) -> str:
    """The stack file a stack's settings come from: a PR stack is the dev configuration."""
    return "Pulumi.dev.yaml" if stack == PR_STACK else f"Pulumi.{stack}.yaml"


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(str(s["run"]) for s in job.get("steps", []) if "run" in s)


def config_step(job: dict[str, Any]) -> dict[str, Any]:
    found = [s for s in job["steps"] if "scripts/pr_stack_config.py" in str(s.get("run", ""))]
    assert len(found) == 1, "the PR stack's config is written by one scripts/pr_stack_config.py step"
    return found[0]


def config_overrides(step: dict[str, Any]) -> dict[str, str]:
    """The `--set key=value` overrides of the workflow's config step, as Pulumi config strings."""
    argv = shlex.split(step["run"])
    values = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    return dict(v.split("=", 1) for v in values)


def test_workflow_files_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml"}


# --- schema: GitHub's workflow syntax, checked offline --------------------------------------------

OFFLINE = {
    **{k: v for k, v in os.environ.items() if k.lower() not in {"no_proxy", "http_proxy", "https_proxy", "all_proxy"}},
    # Any attempt to fetch a schema would go to a port nothing listens on and fail.
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
}


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--verbose", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        env=OFFLINE,
        timeout=120,
    )


@pytest.mark.parametrize("schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid_github_syntax(path: Path, schema: str) -> None:
    result = check_jsonschema(schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


BREAKAGES = {
    # name: (file, text replaced, replacement, what the error must name)
    "unknown key in a job": (
        "deploy.yml",
        "    timeout-minutes:",
        "    timeout_minutes:",
        "'timeout_minutes' was unexpected",
    ),
    "misspelt event": (
        "pull-request.yml",
        "\n  pull_request:\n",
        "\n  pull_requests:\n",
        "'pull_requests' was unexpected",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_validator_rejects_a_broken_copy(breakage: str, tmp_path: Path) -> None:
    name, old, new, named = BREAKAGES[breakage]
    text = (WORKFLOW_DIR / name).read_text()
    assert old in text, f"the breakage no longer applies to {name}"
    broken = tmp_path / name
    broken.write_text(text.replace(old, new, 1))
    result = check_jsonschema("vendor.github-workflows", broken)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr, result.stdout + result.stderr


def test_schema_is_the_vendored_copy() -> None:
    """The schema ships inside check-jsonschema, intact, and refers to nothing outside itself."""
    import check_jsonschema

    vendor = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    raw = (vendor / "github-workflows.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == (vendor / "sha256" / "github-workflows.sha256").read_text().strip()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(json.loads(raw)))
    assert found and all(ref.startswith("#") for ref in found)


# --- credentials and permissions ------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_static_credentials(path: Path) -> None:
    text = path.read_text().lower()
    for word in ("aws-access-key-id", "aws-secret-access-key", "aws_secret_access_key", "aws_access_key_id"):
        assert word not in text
    assert "pulumi_access_token" not in text  # Pulumi Cloud tokens come from pulumi/auth-actions (OIDC)


@pytest.mark.parametrize("name", sorted(WF))
def test_workflow_permissions_are_minimal(name: str) -> None:
    assert WF[name]["permissions"] == {"contents": "read"}


@pytest.mark.parametrize(("job_id", "job"), JOBS)
def test_job_permissions_are_least_privilege(job_id: str, job: dict[str, Any]) -> None:
    permissions = job.get("permissions", {})
    assert set(permissions.items()) <= {("contents", "read"), ("id-token", "write"), ("pull-requests", "write")}
    oidc = bool(steps_using(job, AWS_CREDENTIALS) or steps_using(job, PULUMI_AUTH))
    assert (permissions.get("id-token") == "write") == oidc, "an OIDC token exactly where a role is assumed"
    comments = any(s.get("with", {}).get("comment-on-pr") is True for s in steps_using(job, PULUMI))
    comments = comments or "gh pr comment " in run_lines(job)
    assert (permissions.get("pull-requests") == "write") == comments, "PR write access only to comment"


@pytest.mark.parametrize(("job_id", "job"), JOBS)
def test_aws_credentials_only_by_role_assumption(job_id: str, job: dict[str, Any]) -> None:
    for step in steps_using(job, AWS_CREDENTIALS):
        inputs = step["with"]
        assert set(inputs) <= {"role-to-assume", "aws-region", "role-session-name"}
        assert inputs["role-to-assume"] == ROLE_ARN
        assert job["permissions"]["id-token"] == "write"
        # Each environment holds its own role ARN; the role trusts repo:<owner>/<repo>:environment:<env>.
        assert job.get("environment") in ENVIRONMENTS
        pulumi = pulumi_step(job)
        assert pulumi is not None
        region = stack_config(stack_file(stack_of(pulumi)))["aws:region"]
        assert inputs["aws-region"] == region, "credentials for the region the stack deploys to"


@pytest.mark.parametrize(("job_id", "job", "step"), [pytest.param(*j, id=j[0]) for j in pulumi_jobs()])
def test_pulumi_runs_with_keyless_logins_in_an_environment(job_id: str, job: dict, step: dict) -> None:
    steps = job["steps"]
    aws, *renewed = steps_using(job, AWS_CREDENTIALS)
    (auth,) = steps_using(job, PULUMI_AUTH)
    assert steps.index(aws) < steps.index(step) and steps.index(auth) < steps.index(step)
    assert auth["with"] == {
        "organization": PULUMI_ORG,
        "requested-token-type": "urn:pulumi:token-type:access_token:organization",
    }
    assert job["environment"] in ENVIRONMENTS
    # Credentials renewed after the Pulumi step are for the smoke run alone (one-hour role sessions).
    if renewed:
        (again,) = renewed
        assert steps.index(again) == steps.index(step) + 1
        assert steps[steps.index(again) + 1] == smoke_step(job)
        assert {k: v for k, v in again["with"].items() if k != "role-session-name"} == {
            k: v for k, v in aws["with"].items() if k != "role-session-name"
        }
        assert again["with"]["role-session-name"] != aws["with"]["role-session-name"]


# --- one update per stack at a time ---------------------------------------------------------------


def update_jobs() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [j for j in pulumi_jobs() if j[2]["with"]["command"] in UPDATES]


@pytest.mark.parametrize(("job_id", "job", "step"), [pytest.param(*j, id=j[0]) for j in update_jobs()])
def test_stack_updates_are_serialised_never_cancelled(job_id: str, job: dict, step: dict) -> None:
    assert job["concurrency"] == {"group": f"pulumi-{stack_of(step)}", "cancel-in-progress": False}


def test_previews_never_queue_in_a_stack_group() -> None:
    """GitHub keeps one pending run per group: a queued preview must not cancel a queued update."""
    update_groups = {job["concurrency"]["group"] for _, job, _ in update_jobs()}
    previews = [j for j in pulumi_jobs() if j[2]["with"]["command"] == "preview"]
    assert {stack_of(step) for _, _, step in previews} == {"dev", "prod"}
    for _, job, step in previews:
        group = job["concurrency"]["group"]
        assert group not in update_groups
        if stack_of(step) == "dev":  # from pull requests
            assert PR_NUMBER in group, "one preview group per PR: only a superseded preview of that PR is cancelled"
        else:
            assert job["concurrency"] == {"group": "pulumi-preview-prod", "cancel-in-progress": False}


# --- the policy pack and the virtualenvs ----------------------------------------------------------


def virtualenv(project_file: Path) -> str:
    return yaml.safe_load(project_file.read_text())["runtime"]["options"]["virtualenv"]


@pytest.mark.parametrize(("job_id", "job", "step"), [pytest.param(*j, id=j[0]) for j in pulumi_jobs()])
def test_program_and_policy_pack_have_their_virtualenvs(job_id: str, job: dict, step: dict) -> None:
    commands = run_lines(job)
    program_venv = virtualenv(ROOT / "Pulumi.yaml")
    assert f"python -m venv {program_venv}\n" in commands
    assert f"{program_venv}/bin/{PIP_INSTALL_LOCK} requirements.txt" in commands
    if step["with"]["command"] == "destroy":
        return
    assert step["with"]["policyPacks"] == "policy", "every preview and update runs the policy pack"
    assert (ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    policy_venv = f"policy/{virtualenv(ROOT / 'policy' / 'PulumiPolicy.yaml')}"
    assert f"python -m venv {policy_venv}\n" in commands
    assert f"{policy_venv}/bin/{PIP_INSTALL_LOCK} policy/requirements.txt" in commands


# --- pull requests --------------------------------------------------------------------------------


def test_pull_request_events_include_close() -> None:
    assert PR_WF["on"] == {"pull_request": {"types": ["opened", "synchronize", "reopened", "closed"]}}


def test_pr_preview_of_dev_is_commented_with_the_policy_pack() -> None:
    _, job, step = job_running_pulumi(PR_WF, "preview", "dev")
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["github-token"] == "${{ secrets.GITHUB_TOKEN }}"
    assert step["with"]["policyPacks"] == "policy"
    assert job["needs"] == "test"
    assert job["environment"] == "preview"
    assert "github.event.action != 'closed'" in job["if"]


def test_pr_code_never_reaches_prod() -> None:
    assert all(stack_of(step) != "prod" for _, _, step in pulumi_jobs(PR_WF))
    assert all(job.get("environment") in {None, "preview"} for job in PR_WF["jobs"].values())


def test_pr_aws_jobs_skip_forks() -> None:
    """Fork PRs get no OIDC token; their AWS jobs are skipped rather than failing."""
    for job in PR_WF["jobs"].values():
        if "environment" in job:
            assert SAME_REPO in job["if"]


def test_pr_stack_is_upserted_with_the_pr_overrides() -> None:
    _, job, step = job_running_pulumi(PR_WF, "up", PR_STACK)
    assert step["with"]["upsert"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert job["needs"] == "test"
    assert "github.event.action != 'closed'" in job["if"]
    config = config_step(job)
    assert job["steps"].index(config) < job["steps"].index(step)
    assert config["env"] == {"PR_NUMBER": PR_NUMBER}
    argv = shlex.split(config["run"])
    assert argv[2:5] == ["pr-${PR_NUMBER}", "--from", "Pulumi.dev.yaml"], "Pulumi.dev.yaml -> Pulumi.pr-<n>.yaml"
    overrides = config_overrides(config)
    assert overrides["dataplatform:removeDataOnDestroy"] == "true"
    assert overrides["dataplatform:ciRoleEnabled"] == "false"


def test_closing_the_pr_destroys_and_removes_its_stack() -> None:
    _, job, step = job_running_pulumi(PR_WF, "destroy", PR_STACK)
    assert step["with"]["remove"] is True
    assert step["with"]["upsert"] is True  # a PR closed before its stack existed: nothing to destroy, no error
    assert "github.event.action == 'closed'" in job["if"]
    assert "needs" not in job  # a closed PR runs no tests
    # The same settings as the updates used.
    _, up_job, _ = job_running_pulumi(PR_WF, "up", PR_STACK)
    assert config_step(job) == config_step(up_job)


def test_only_the_destroy_runs_when_the_pr_closes() -> None:
    for job_id, job in PR_WF["jobs"].items():
        step = pulumi_step(job)
        closing = step is not None and step["with"]["command"] == "destroy"
        expected = "github.event.action == 'closed'" if closing else "github.event.action != 'closed'"
        assert expected in job["if"], job_id


# --- main ------------------------------------------------------------------------------------------


def test_main_deploys_dev_then_prod_after_approval() -> None:
    """Update dev -> smoke-test dev -> preview prod -> (approval) -> update prod."""
    assert DEPLOY_WF["on"] == {"push": {"branches": ["main"]}}
    operations = {(s["with"]["command"], stack_of(s)) for _, _, s in pulumi_jobs(DEPLOY_WF)}
    assert operations == {("up", "dev"), ("preview", "prod"), ("up", "prod")}
    dev_id, dev, up_dev = job_running_pulumi(DEPLOY_WF, "up", "dev")
    preview_id, preview, _ = job_running_pulumi(DEPLOY_WF, "preview", "prod")
    _, prod, _ = job_running_pulumi(DEPLOY_WF, "up", "prod")
    assert dev["needs"] == ci_job(DEPLOY_WF)[0]
    # The smoke test is a step after dev's update: a failed smoke run fails the job, so prod waits.
    smoke = smoke_step(dev)
    assert dev["steps"].index(up_dev) < dev["steps"].index(smoke)
    assert "if" not in smoke and "continue-on-error" not in smoke
    assert smoke_argv(smoke)[smoke_argv(smoke).index("--stack") + 1] == "${PULUMI_ORG}/dev"
    assert preview["needs"] == dev_id
    assert prod["needs"] == preview_id
    assert dev["environment"] == "dev"
    assert preview["environment"] == "prod-preview"  # deployment branch main, no reviewers; reads prod
    assert prod["environment"] == "prod"  # its required reviewers are set in the repository settings


def test_prod_preview_runs_the_policy_pack_and_shows_its_diff_in_the_job_summary() -> None:
    """What the prod approval shows: this commit's prod diff, in the summary of the job it waits on."""
    _, job, step = job_running_pulumi(DEPLOY_WF, "preview", "prod")
    assert step["id"] == "preview"
    assert step["with"]["policyPacks"] == "policy"
    assert step["with"]["diff"] is True
    steps = job["steps"]
    (summary,) = steps[steps.index(step) + 1 :]
    assert summary["env"] == {"PREVIEW": "${{ steps.preview.outputs.output }}"}
    assert summary["run"].rstrip().endswith('} >> "$GITHUB_STEP_SUMMARY"')
    assert "printf '%s\\n' \"$PREVIEW\" | tail -c 1000000" in summary["run"]  # the 1 MiB summary limit
    # The preview only reads: no stack group of an update, and no write to the repository or the PR.
    assert job["permissions"] == {"contents": "read", "id-token": "write"}


# --- promotion: prod runs the image dev built and smoke-tested ----------------------------------------------

PROMOTE = "scripts/promote_image.py"


def promote_step(job: dict[str, Any], command: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if f"{PROMOTE} {command}" in str(s.get("run", ""))]
    assert len(found) == 1, f"one step runs {PROMOTE} {command}"
    return found[0]


def promote_argv(step: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The script's arguments in the step's `$(...)`, with the step's variables replaced by `env`."""
    (command,) = re.findall(r"\$\(\.venv/bin/python " + re.escape(PROMOTE) + r" (.*?)\)\"", step["run"], re.S)
    argv = shlex.split(command.replace("\\\n", " "))
    return [env.get(arg.removeprefix("$"), arg) if arg.startswith("$") else arg for arg in argv]


def batch_image_config(step: dict[str, Any]) -> Any:
    """What pulumi/actions sets before its command: `config-map` is YAML, key -> {value, secret}."""
    return yaml.safe_load(step["with"]["config-map"])


def test_prod_runs_the_image_dev_built_and_builds_none() -> None:
    """main builds and pushes the jobs image once, in dev's update (then smoke-tests it); prod's preview and
    update set batchImage to that image's copy in prod's repository, so prod builds nothing; the copy runs
    after the approval, before the update, and must be the image the approved preview showed."""
    dev_id, dev, up_dev = job_running_pulumi(DEPLOY_WF, "up", "dev")
    preview_id, preview, preview_step = job_running_pulumi(DEPLOY_WF, "preview", "prod")
    _, prod, up_prod = job_running_pulumi(DEPLOY_WF, "up", "prod")
    # dev: pulumi/actions sets every stack output as a step output; the job passes the image on.
    assert up_dev["id"] == "up" and "config-map" not in up_dev["with"]
    assert dev["outputs"] == {"batch_image": "${{ steps.up.outputs.batch_image }}"}
    # preview-prod: computes the promoted image (nothing copied yet) and previews prod with it.
    target = promote_step(preview, "target")
    aws = steps_using(preview, AWS_CREDENTIALS)[0]
    steps = preview["steps"]
    assert steps.index(aws) < steps.index(target) < steps.index(preview_step)
    assert aws["id"] == "aws" and target["id"] == "image"
    assert target["env"] == {
        "DEV_IMAGE": f"${{{{ needs.{dev_id}.outputs.batch_image }}}}",
        "ACCOUNT": "${{ steps.aws.outputs.aws-account-id }}",
    }
    assert batch_image_config(preview_step) == {
        "dataplatform:batchImage": {"value": "${{ steps.image.outputs.batch_image }}", "secret": False}
    }
    assert preview["outputs"] == {
        "dev_image": "${{ steps.image.outputs.dev_image }}",
        "batch_image": "${{ steps.image.outputs.batch_image }}",
    }
    # deploy-prod: copies after the approval, checks the copy is the previewed image, updates with it.
    copy = promote_step(prod, "copy")
    prod_aws = steps_using(prod, AWS_CREDENTIALS)[0]
    assert prod["steps"].index(prod_aws) < prod["steps"].index(copy) < prod["steps"].index(up_prod)
    assert prod_aws["id"] == "aws"
    assert copy["env"] == {
        "DEV_IMAGE": f"${{{{ needs.{preview_id}.outputs.dev_image }}}}",
        "PROD_IMAGE": f"${{{{ needs.{preview_id}.outputs.batch_image }}}}",
        "ACCOUNT": "${{ steps.aws.outputs.aws-account-id }}",
    }
    assert copy["run"].rstrip().endswith('test "$copied" = "$PROD_IMAGE"')
    assert batch_image_config(up_prod) == {
        "dataplatform:batchImage": {"value": f"${{{{ needs.{preview_id}.outputs.batch_image }}}}", "secret": False}
    }


def test_the_promotion_commands_name_prods_repository_and_parse() -> None:
    """Both commands name the repository the program creates for prod, in the stack files' region, and
    are what the script accepts: run with stand-in values, they print the same promoted image."""
    prod_repository = build_estate("prod", "Pulumi.prod.yaml").one("aws:ecr/repository:Repository").inputs["name"]
    region = stack_config("Pulumi.prod.yaml")["aws:region"]
    dev_image = f"210987654321.dkr.ecr.{region}.amazonaws.com/dataplatform-dev-batch@sha256:{'7' * 64}"
    env = {"DEV_IMAGE": dev_image, "ACCOUNT": "123456789012"}
    _, preview, _ = job_running_pulumi(DEPLOY_WF, "preview", "prod")
    _, prod, _ = job_running_pulumi(DEPLOY_WF, "up", "prod")
    target, copy = promote_argv(promote_step(preview, "target"), env), promote_argv(promote_step(prod, "copy"), env)
    assert target == [
        "target", "--source", dev_image, "--account", "123456789012", "--region", region,
        "--repository", prod_repository,
    ]  # fmt: skip
    assert copy == ["copy", *target[1:]]
    result = subprocess.run([sys.executable, PROMOTE, *target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    promoted = f"123456789012.dkr.ecr.{region}.amazonaws.com/{prod_repository}@sha256:{'7' * 64}"
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{promoted}\n", "")


# --- the smoke test -------------------------------------------------------------------------------


def smoke_step(job: dict[str, Any]) -> dict[str, Any]:
    found = [s for s in job.get("steps", []) if "-m smoke" in str(s.get("run", ""))]
    assert len(found) == 1, "one step runs python -m smoke"
    return found[0]


def smoke_argv(step: dict[str, Any]) -> list[str]:
    return shlex.split(step["run"])


def smoke_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(n, i, j) for n, i, j in all_jobs() if any("-m smoke" in str(s.get("run", "")) for s in j["steps"])]


def test_the_smoke_test_runs_after_each_dev_and_pr_stack_update() -> None:
    assert [(name, job_id) for name, job_id, _ in smoke_jobs()] == [
        ("deploy.yml", "deploy-dev"),
        ("pull-request.yml", "pr-stack"),
    ]


@pytest.mark.parametrize(("job_id", "job"), [pytest.param(i, j, id=f"{n}:{i}") for n, i, j in smoke_jobs()])
def test_the_workflow_smoke_commands_are_what_the_smoke_cli_accepts(job_id: str, job: dict) -> None:
    from smoke.cli import parse_args

    step = smoke_step(job)
    argv = smoke_argv(step)
    assert argv[:3] == [".venv/bin/python", "-m", "smoke"]
    args = parse_args(argv[3:])
    assert args.timeout_minutes == 40
    assert args.only == "", "every pipeline the stack builds"
    pulumi = pulumi_step(job)
    assert pulumi is not None
    # The stack the job just updated, as <org>/<stack> with the org and PR number from the environment.
    expected = stack_of(pulumi).replace(PR_NUMBER, "${PR_NUMBER}")
    assert args.stack == f"${{PULUMI_ORG}}/{expected}"
    assert step["env"]["PULUMI_ORG"] == PULUMI_ORG
    if "PR_NUMBER" in args.stack:
        assert step["env"]["PR_NUMBER"] == PR_NUMBER
    # boto3 for the smoke run, in the program's virtualenv.
    assert f".venv/bin/{PIP_INSTALL_LOCK} smoke/requirements.txt" in run_lines(job)
    # The Pulumi CLI (installed and logged in by the Pulumi steps) reads the outputs: after them.
    steps = job["steps"]
    assert steps.index(pulumi) < steps.index(step)
    assert steps.index(steps_using(job, PULUMI_AUTH)[0]) < steps.index(step)


def test_pr_stack_is_smoke_tested_after_its_update_and_the_result_commented() -> None:
    """up -> smoke -> summary and artifact (also when the smoke run failed) -> the PR comment."""
    up_id, job, up = job_running_pulumi(PR_WF, "up", PR_STACK)
    steps = job["steps"]
    smoke = smoke_step(job)
    summary_file = smoke_argv(smoke)[smoke_argv(smoke).index("--summary-file") + 1]
    assert smoke["id"] == "smoke"
    assert steps.index(up) < steps.index(smoke)
    after = steps[steps.index(smoke) + 1 :]
    assert [s.get("if") for s in after] == ["always() && steps.smoke.outcome != 'skipped'"] * 2
    assert after[0]["run"] == f'if [ -f {summary_file} ]; then cat {summary_file} >> "$GITHUB_STEP_SUMMARY"; fi'
    assert uses(after[1], "actions/upload-artifact")
    artifact = after[1]["with"]
    assert artifact == {"name": "smoke-summary", "path": summary_file, "if-no-files-found": "ignore"}

    commenters = [j for j in PR_WF["jobs"].values() if "gh pr comment " in run_lines(j)]
    assert len(commenters) == 1
    comment = commenters[0]
    assert comment["needs"] == up_id
    assert comment["if"].startswith("always() &&")
    assert f"(needs.{up_id}.result == 'success' || needs.{up_id}.result == 'failure')" in comment["if"]
    assert comment["permissions"] == {"pull-requests": "write"}
    assert "environment" not in comment and not steps_using(comment, AWS_CREDENTIALS)
    (download,) = [s for s in comment["steps"] if uses(s, "actions/download-artifact")]
    assert download["with"] == {"name": artifact["name"]}
    assert download["continue-on-error"] is True
    assert f'gh pr comment "$PR_NUMBER" --repo "$GITHUB_REPOSITORY" --body-file {summary_file}' in run_lines(comment)


def test_the_pr_stack_is_destroyed_whatever_the_smoke_test_said() -> None:
    """The destroy job needs no job (so neither the smoke run nor its comment) and runs on close."""
    destroy_id, destroy, _ = job_running_pulumi(PR_WF, "destroy", PR_STACK)
    assert "needs" not in destroy
    assert "needs." not in destroy["if"] and "smoke" not in destroy["if"]
    assert not any("-m smoke" in str(s.get("run", "")) for s in destroy["steps"])
    # Nothing the destroy waits on can fail it, and no job waits on a smoke job to run the destroy.
    assert all(destroy_id != job.get("needs") for job in PR_WF["jobs"].values())


# --- the tests job, timeouts, pinned actions ------------------------------------------------------


def ci_job(workflow: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [(i, j) for i, j in workflow["jobs"].items() if "bash .ci/run" in run_lines(j)]
    assert len(found) == 1, "one job runs the tests exactly as CI does (.ci/run)"
    return found[0]


@pytest.mark.parametrize("name", sorted(WF))
def test_tests_run_as_ci_does_before_any_pulumi_job(name: str) -> None:
    workflow = WF[name]
    test_id, job = ci_job(workflow)
    setup = {str(s["uses"]).split("@")[0]: s.get("with", {}) for s in job["steps"] if "uses" in s}
    assert setup["actions/setup-python"]["python-version"] == "3.11"
    assert setup["actions/setup-java"] == {"distribution": "temurin", "java-version": "17"}
    assert setup["actions/setup-node"]["node-version"] == "20"
    assert "sudo bash scripts/ensure-postgres.sh" in run_lines(job)
    # Every Pulumi job runs after the tests (directly or through another job), except a destroy.
    for job_id, pulumi_job, step in pulumi_jobs(workflow):
        if step["with"]["command"] == "destroy":
            continue
        chain, needs = [], pulumi_job.get("needs")
        while needs:
            chain.append(needs)
            needs = workflow["jobs"][needs].get("needs")
        assert test_id in chain, job_id


def test_both_workflows_test_the_same_way() -> None:
    assert ci_job(PR_WF)[1]["steps"] == ci_job(DEPLOY_WF)[1]["steps"]


@pytest.mark.parametrize(("job_id", "job"), JOBS)
def test_every_job_has_a_timeout(job_id: str, job: dict[str, Any]) -> None:
    assert isinstance(job["timeout-minutes"], int)
    assert 0 < job["timeout-minutes"] <= 180


PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+|[0-9a-f]{40})$")


@pytest.mark.parametrize(("job_id", "job"), JOBS)
def test_every_action_is_pinned(job_id: str, job: dict[str, Any]) -> None:
    for step in job["steps"]:
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a major tag or a commit"


# --- the PR stack's configuration, from the workflow, built ---------------------------------------


def pr_config_overrides() -> dict[str, str]:
    _, job, _ = job_running_pulumi(PR_WF, "up", PR_STACK)
    return config_overrides(config_step(job))


def test_the_config_step_writes_dev_plus_the_overrides(tmp_path: Path) -> None:
    """Run the workflow's own config step, as written, in a scratch checkout."""
    _, job, _ = job_running_pulumi(PR_WF, "up", PR_STACK)
    step = config_step(job)
    (tmp_path / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PR_NUMBER": "123"}
    result = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "Pulumi.pr-123.yaml"
    assert stack_config(str(written)) == {**stack_config("Pulumi.dev.yaml"), **pr_config_overrides()}


def test_pr_stack_estate_is_removable_and_has_no_ci_role() -> None:
    estate = build_estate("pr-123", "Pulumi.dev.yaml", pr_config_overrides())
    buckets = estate.of_type("aws:s3/bucket:Bucket")
    assert buckets
    assert all(b.inputs.get("forceDestroy") is True for b in buckets), [b.name for b in buckets]
    assert estate.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []


def test_pr_overrides_win_over_the_dev_settings() -> None:
    """Were dev to keep its data and create the CI role, a PR stack would still do neither."""
    dev_changed = {
        "dataplatform:removeDataOnDestroy": "false",
        "dataplatform:ciRoleEnabled": "true",
        "dataplatform:ciGithubRepository": "acme/dataplatform",
    }
    oidc = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    control = build_estate("dev", "Pulumi.dev.yaml", dev_changed)
    assert control.of_type(oidc), "the control: this dev configuration creates the OIDC provider"
    assert not any(b.inputs.get("forceDestroy") for b in control.of_type("aws:s3/bucket:Bucket"))

    estate = build_estate("pr-123", "Pulumi.dev.yaml", {**dev_changed, **pr_config_overrides()})
    assert estate.of_type(oidc) == []
    assert all(b.inputs.get("forceDestroy") is True for b in estate.of_type("aws:s3/bucket:Bucket"))


def test_pr_stack_gharchive_runs_download_one_hour() -> None:
    """The smoke run on a PR stack downloads one GH Archive hour file per run (dev keeps its 24)."""

    def max_hours(estate: Any) -> str:
        (ingest,) = [
            d
            for d in estate.of_type("aws:batch/jobDefinition:JobDefinition")
            if json.loads(d.inputs["containerProperties"])["command"] == ["gharchive-ingest"]
        ]
        environment = json.loads(ingest.inputs["containerProperties"])["environment"]
        return {e["name"]: e["value"] for e in environment}["GHARCHIVE_MAX_HOURS"]

    assert pr_config_overrides()["dataplatform:gharchiveMaxHoursPerRun"] == "1"
    assert max_hours(build_estate("pr-123", "Pulumi.dev.yaml", pr_config_overrides())) == "1"
    assert max_hours(build_estate("dev", "Pulumi.dev.yaml")) == "24"
