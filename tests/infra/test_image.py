"""The Batch jobs image: how it is built (a digest-pinned base, the hashed lock, the layer cache) and how prod
runs dev's image instead of building one (the `batchImage` setting, the promotion script).

The AWS rules the promotion relies on, each checked below where it applies:
- Fargate pulls a private ECR image as the task's execution role, also from a repository in another
  account (Amazon ECS Developer Guide, "Amazon ECS task execution IAM role",
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html); the role
  needs ecr:GetAuthorizationToken (it names no resource) and ecr:BatchGetImage and
  ecr:GetDownloadUrlForLayer on the repository (Amazon ECR User Guide, "Using Amazon ECR images with
  Amazon ECS", https://docs.aws.amazon.com/AmazonECR/latest/userguide/ECR_on_ECS.html).
- A repository admits principals of another account only through its repository policy, and they need
  their own IAM permission too (Amazon ECR User Guide, "Private repository policies",
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html, and "Private
  repository policy examples", "Allow another account",
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html).
- A puller needs no KMS permission on a KMS-encrypted repository: ECR decrypts through the grants it
  creates on the key (Amazon ECR User Guide, "Encryption at rest",
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html).
- An ECR authorization token opens every registry the caller's IAM principal may access
  (GetAuthorizationToken, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html):
  one login covers dev's and prod's registries.
- AWS Batch accepts an image named by digest, `repository@sha256:...` (ContainerProperties `image`,
  https://docs.aws.amazon.com/batch/latest/APIReference/API_ContainerProperties.html).
- ECR expires images by its lifecycle policy's rules, untagged images by age and any image beyond a
  count (Amazon ECR User Guide, "Lifecycle policies",
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html): the promoted copy is tagged.
- BuildKit reuses the layers of a `cacheFrom` image only if that image was pushed with its inline cache
  metadata, which the build argument BUILDKIT_INLINE_CACHE=1 writes (Docker docs, "Inline cache",
  https://docs.docker.com/build/cache/backends/inline/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components.compute import BatchCompute, BatchComputeArgs
from components.config import ConfigError, parse_ecr_image
from pipelines.registry import load_stack_config
from scripts import promote_image
from tests.infra.harness import ACCOUNT, REGION, ROOT, Estate, build_estate, run_under_mocks
from tests.infra.test_access import decision, statements
from tests.integration.test_batch_image import instructions

LOCK = ROOT / "batch_image" / "requirements.txt"
DIGEST = "sha256:" + "7" * 64
# Dev's image in dev's account, and its copy in prod's repository (what CI sets prod's batchImage to).
DEV_ACCOUNT = "210987654321"
DEV_IMAGE = f"{DEV_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch@{DIGEST}"
PROD_REPOSITORY = "dataplatform-prod-batch"
PROD_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PROD_REPOSITORY}@{DIGEST}"
IMAGE = "docker:index/image:Image"
JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"


def container(definition: Any) -> dict[str, Any]:
    return json.loads(definition.inputs["containerProperties"])


def execution_statements(estate: Estate) -> list[dict[str, Any]]:
    return statements(estate.named("batch-execution-role-policy").inputs["policy"])


@pytest.fixture(scope="module")
def prod_built() -> Estate:
    return build_estate("prod", "Pulumi.prod.yaml")


@pytest.fixture(scope="module")
def prod_promoted() -> Estate:
    """Prod as CI deploys it: batchImage is the copy of dev's image in prod's own repository."""
    return build_estate("prod", "Pulumi.prod.yaml", {"dataplatform:batchImage": PROD_IMAGE})


@pytest.fixture(scope="module")
def prod_cross_account() -> Estate:
    """Prod running dev's image straight from dev's repository in dev's account (no copy)."""
    return build_estate("prod", "Pulumi.prod.yaml", {"dataplatform:batchImage": DEV_IMAGE})


@pytest.fixture(scope="module")
def dev_serving() -> Estate:
    """Dev whose repository admits prod's account (the copy runs as prod's deploy role)."""
    return build_estate("dev", "Pulumi.dev.yaml", {"dataplatform:ecrPullAccountIds": json.dumps([ACCOUNT])})


# --- the Dockerfile ----------------------------------------------------------------------------------------


def test_the_base_image_is_pinned_by_digest() -> None:
    """The tag says which Python release; the digest is what the build pulls, so a re-pushed tag changes
    nothing until the digest in the Dockerfile changes (the multi-platform index digest of
    python:3.11.14-slim-bookworm as Docker publishes it; the build takes its linux/amd64 image)."""
    (base,) = [args for kind, args in instructions() if kind == "FROM"]
    image, _, digest = base.partition("@")
    assert re.fullmatch(r"public\.ecr\.aws/docker/library/python:3\.11\.\d+-slim-bookworm", image)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_dependencies_come_from_the_hashed_lock_and_nothing_else_is_downloaded() -> None:
    runs = [args for kind, args in instructions() if kind == "RUN" and "pip install" in args]
    assert [re.search(r"pip install [^&]*", run)[0].strip() for run in runs] == [  # type: ignore[index]
        "pip install --no-cache-dir --require-hashes --requirement /tmp/requirements.txt",
        "pip install --no-cache-dir --no-deps --no-build-isolation /tmp/build/job_runtime /tmp/build/batch_image",
    ]
    assert ("COPY", "batch_image/requirements.txt /tmp/requirements.txt") in instructions()
    # The lock pins every package to one version with the hashes of its files; the build backend the local
    # packages need (--no-build-isolation) is one of them.
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", LOCK.read_text(), re.M
    )
    named = [line for line in LOCK.read_text().splitlines() if line and not line.startswith((" ", "#"))]
    assert len(entries) == len(named) > 0
    assert "setuptools" in {name for name, _, _ in entries}


def test_the_image_is_labelled_with_its_content_hash_last() -> None:
    """The label is the last instruction: a new hash changes the image's metadata, not a cached layer."""
    assert instructions()[-2:] == [
        ("ARG", "CONTENT_HASH=unknown"),
        ("LABEL", "dataplatform.content-hash=$CONTENT_HASH"),
    ]


# --- building: the layer cache --------------------------------------------------------------------------


def test_dev_builds_for_linux_amd64_from_its_repositorys_current_image(dev_serving: Estate) -> None:
    repository = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch"
    build = dev_serving.one(IMAGE).inputs
    assert build["imageName"] == f"{repository}:current"
    assert build["build"]["platform"] == "linux/amd64"
    assert build["build"]["cacheFrom"] == {"images": [f"{repository}:current"]}
    assert build["build"]["args"]["BUILDKIT_INLINE_CACHE"] == "1"
    assert build["buildOnPreview"] is False
    # The job definitions run the pushed digest, not the moving tag.
    for definition in dev_serving.of_type(JOB_DEFINITION):
        assert container(definition)["image"].startswith(f"{repository}@sha256:"), definition.name


def test_a_new_pull_request_stack_reuses_the_layers_dev_last_built() -> None:
    pr = build_estate("pr-7", "Pulumi.dev.yaml")
    registry = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert pr.one(IMAGE).inputs["build"]["cacheFrom"] == {
        "images": [f"{registry}/dataplatform-pr-7-batch:current", f"{registry}/dataplatform-dev-batch:current"]
    }


def test_untagged_images_are_kept_a_week_and_twenty_images_in_all(dev_serving: Estate) -> None:
    """Each build moves `current`, leaving its predecessor untagged: kept 7 days, so a promotion waiting
    for its approval still finds the dev image its preview named."""
    policy = json.loads(dev_serving.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert [(r["selection"], r["action"]) for r in policy["rules"]] == [
        (
            {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
            {"type": "expire"},
        ),
        ({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20}, {"type": "expire"}),
    ]


# --- promotion: prod runs the given digest and builds nothing -------------------------------------------------


def test_a_promoted_stack_builds_nothing_and_is_otherwise_the_same(prod_built: Estate, prod_promoted: Estate) -> None:
    built = Counter(r.type for r in prod_built.resources)
    promoted = Counter(r.type for r in prod_promoted.resources)
    assert promoted[IMAGE] == 0
    assert built - promoted == Counter({IMAGE: 1})
    assert promoted - built == Counter()
    # Nothing asks for a registry login either.
    assert not any(r.type.startswith("docker:") for r in prod_promoted.resources)


@pytest.mark.parametrize("fixture", ["prod_promoted", "prod_cross_account"])
def test_every_job_definition_runs_exactly_the_given_image(fixture: str, request: pytest.FixtureRequest) -> None:
    estate: Estate = request.getfixturevalue(fixture)
    image = PROD_IMAGE if fixture == "prod_promoted" else DEV_IMAGE
    definitions = estate.of_type(JOB_DEFINITION)
    assert sorted(d.name for d in definitions) == [
        "covid-copy-definition",
        "gharchive-ingest-definition",
        "render-logs-job-definition",
    ]
    for definition in definitions:
        assert container(definition)["image"] == image, definition.name


def test_the_execution_role_pulls_the_copy_from_prods_repository(prod_promoted: Estate) -> None:
    granted = execution_statements(prod_promoted)
    own = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{PROD_REPOSITORY}"
    assert prod_promoted.one("aws:ecr/repository:Repository").inputs["name"] == PROD_REPOSITORY
    assert decision(granted, "ecr:GetAuthorizationToken", "*", {}) == "Allow"
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
        assert decision(granted, action, own, {}) == "Allow"
    # Pulls only: no push, no other repository.
    assert decision(granted, "ecr:PutImage", own, {}) == "ImplicitDeny"
    dev_repository = f"arn:aws:ecr:{REGION}:{DEV_ACCOUNT}:repository/dataplatform-dev-batch"
    assert decision(granted, "ecr:BatchGetImage", dev_repository, {}) == "ImplicitDeny"


def test_the_execution_role_may_pull_a_cross_account_image_that_the_source_repository_admits(
    prod_cross_account: Estate,
) -> None:
    """The repository ARN comes from the image URI: dev's account, dev's region, dev's repository."""
    granted = execution_statements(prod_cross_account)
    dev_repository = f"arn:aws:ecr:{REGION}:{DEV_ACCOUNT}:repository/dataplatform-dev-batch"
    pull = [s for s in granted if "ecr:BatchGetImage" in s["Action"]]
    assert pull == [
        {
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [dev_repository],
        }
    ]
    own = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{PROD_REPOSITORY}"
    assert decision(granted, "ecr:BatchGetImage", own, {}) == "ImplicitDeny"


def test_a_serving_repository_admits_the_listed_accounts_to_pull_only(dev_serving: Estate) -> None:
    policy = dev_serving.one("aws:ecr/repositoryPolicy:RepositoryPolicy").inputs
    assert policy["repository"] == "dataplatform-dev-batch"
    document = statements(policy["policy"])
    assert document == [
        {
            "Sid": "PullFromAccounts",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]},
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        }
    ]
    # A repository policy has no Resource element: it is the repository's own.
    repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/dataplatform-dev-batch"
    prod_account = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert decision(document, "ecr:BatchGetImage", repository, {}, prod_account) == "Allow"
    assert decision(document, "ecr:PutImage", repository, {}, prod_account) == "ImplicitDeny"


def test_a_repository_without_pull_accounts_has_no_policy(prod_built: Estate) -> None:
    assert prod_built.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy") == []


# --- the setting's validation ---------------------------------------------------------------------------------


def problems(**values: str) -> list[str]:
    raw = {f"dataplatform:{k}": v for k, v in values.items()}
    with pytest.raises(ConfigError) as raised:
        load_stack_config(raw, "dataplatform", "prod", "eu-west-1")
    return raised.value.problems


BATCH_IMAGE_RULE = (
    "must be empty (the stack builds its image) or an ECR image pinned by digest, e.g. "
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dataplatform-dev-batch@sha256:<64 hex digits>"
)


@pytest.mark.parametrize(
    "value",
    [
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch:current",  # a tag moves
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch@sha256:{'7' * 63}",  # short digest
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch@sha256:{'A' * 64}",  # upper-case hex
        f"public.ecr.aws/docker/library/python@{DIGEST}",  # not a private registry the role can be granted
        f"docker.io/library/python@{DIGEST}",
        f"12345678901.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch@{DIGEST}",  # 11-digit account
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/Dataplatform@{DIGEST}",  # ECR names are lower case
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/a@{DIGEST}",  # 1 character: ECR wants 2 to 256
        f" {PROD_IMAGE}",
    ],
)
def test_a_batch_image_that_is_not_an_ecr_image_by_digest_is_a_config_error(value: str) -> None:
    assert problems(batchImage=value) == [f"dataplatform:batchImage = {value!r} is invalid: {BATCH_IMAGE_RULE}"]


def test_pull_account_ids_are_twelve_digit_account_ids_listed_once() -> None:
    assert problems(ecrPullAccountIds=json.dumps(["12345678901", "prod"])) == [
        'dataplatform:ecrPullAccountIds = ["12345678901", "prod"] is invalid: not 12-digit AWS account ids: '
        "12345678901, prod"
    ]
    assert problems(ecrPullAccountIds=json.dumps([ACCOUNT, ACCOUNT])) == [
        f'dataplatform:ecrPullAccountIds = ["{ACCOUNT}", "{ACCOUNT}"] is invalid: lists an account twice'
    ]


def test_a_bad_batch_image_fails_the_program_before_anything_is_built() -> None:
    with pytest.raises(ConfigError, match=r"dataplatform:batchImage = 'nginx:latest' is invalid"):
        build_estate("prod", "Pulumi.prod.yaml", {"dataplatform:batchImage": "nginx:latest"})


def test_the_component_refuses_an_image_that_is_not_pinned_by_digest() -> None:
    """BatchCompute used from another program checks its `image` itself: a tag could move under the jobs."""

    def program() -> None:
        BatchCompute(
            "batch",
            BatchComputeArgs(
                account_id=ACCOUNT,
                region=REGION,
                kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k",
                image_context="batch_image",
                subnet_ids=[],
                security_group_ids=[],
                image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch:current",
            ),
        )

    with pytest.raises(ValueError, match=r"^BatchCompute batch: image must be an ECR image pinned by digest, e\.g\. "):
        run_under_mocks("dev", {}, program)


@pytest.mark.parametrize(
    ("uri", "arn"),
    [
        (PROD_IMAGE, f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{PROD_REPOSITORY}"),
        (
            f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/team/jobs@{DIGEST}",
            f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/team/jobs",
        ),
        (
            f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com/jobs@{DIGEST}",
            f"arn:aws-us-gov:ecr:us-gov-west-1:{ACCOUNT}:repository/jobs",
        ),
    ],
)
def test_the_repository_arn_follows_the_image_uri(uri: str, arn: str) -> None:
    """ECR repository ARNs: arn:<partition>:ecr:<region>:<account>:repository/<name> (Service Authorization
    Reference, "Actions, resources, and condition keys for Amazon Elastic Container Registry",
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html)."""
    image = parse_ecr_image(uri)
    assert image is not None and image.repository_arn == arn and image.uri == uri


# --- the promotion script (what deploy-prod runs) -----------------------------------------------------------


def promotion(command: str, source: str = DEV_IMAGE, repository: str = PROD_REPOSITORY) -> list[str]:
    """The script's arguments as deploy.yml passes them, into `repository` of prod's account and region."""
    return [command, "--source", source, "--account", ACCOUNT, "--region", REGION, "--repository", repository]


def test_target_is_the_same_digest_in_prods_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert promote_image.main(promotion("target"), run=_no_calls) == 0
    assert capsys.readouterr().out == f"{PROD_IMAGE}\n"


@pytest.mark.parametrize(
    ("source", "repository", "message"),
    [
        (
            "dataplatform-dev-batch:current",
            PROD_REPOSITORY,
            "promote_image: --source 'dataplatform-dev-batch:current' is not an ECR image pinned by digest, e.g. "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dataplatform-dev-batch@sha256:<64 hex digits>\n",
        ),
        (
            DEV_IMAGE,
            "Prod",
            f"promote_image: --account '{ACCOUNT}', --region '{REGION}' and --repository 'Prod' do not name an "
            "ECR repository\n",
        ),
    ],
)
def test_a_bad_promotion_stops_with_what_to_fix(
    source: str, repository: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote_image.main(promotion("copy", source, repository), run=_no_calls) == 2
    assert capsys.readouterr() == ("", message)


def _no_calls(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    raise AssertionError(f"nothing may be run, got {args}")


@pytest.fixture
def skopeo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A skopeo on PATH, which `copy` looks for before it runs anything (the runs themselves are faked)."""
    (tmp_path / "skopeo").write_text("#!/bin/sh\n")
    (tmp_path / "skopeo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.usefixtures("skopeo")
def test_copy_logs_in_copies_by_digest_with_a_tag_and_checks_the_digest(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[list[str], str | None]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, kwargs.get("input")))
        assert kwargs["check"] is (argv[2] != "describe-repositories")  # that one's failure is explained
        return subprocess.CompletedProcess(
            argv, 0, stdout="token" if argv[1:3] == ["ecr", "get-login-password"] else ""
        )

    assert promote_image.main(promotion("copy"), run=run) == 0
    assert capsys.readouterr().out == f"{PROD_IMAGE}\n"
    auth = calls[2][0][3]
    dev_registry, prod_registry = DEV_IMAGE.partition("/")[0], PROD_IMAGE.partition("/")[0]
    login = ["skopeo", "login", "--authfile", auth, "--username", "AWS", "--password-stdin"]
    assert calls == [
        (
            [
                "aws", "ecr", "describe-repositories", "--region", REGION, "--registry-id", ACCOUNT,
                "--repository-names", PROD_REPOSITORY,
            ],
            None,
        ),
        (["aws", "ecr", "get-login-password", "--region", REGION], None),
        ([*login, dev_registry], "token"),  # the password on stdin, never in an argument
        (["aws", "ecr", "get-login-password", "--region", REGION], None),
        ([*login, prod_registry], "token"),
        (
            [
                "skopeo", "copy", "--authfile", auth, "--all", "--preserve-digests",
                f"docker://{DEV_IMAGE}", f"docker://{prod_registry}/{PROD_REPOSITORY}:promoted-{'7' * 16}",
            ],
            None,
        ),
        (
            [
                "aws", "ecr", "describe-images", "--region", REGION, "--registry-id", ACCOUNT,
                "--repository-name", PROD_REPOSITORY, "--image-ids", f"imageDigest={DIGEST}",
            ],
            None,
        ),
    ]  # fmt: skip
    assert not Path(auth).exists()  # the logins live only as long as the copy


@pytest.mark.usefixtures("skopeo")
def test_copy_into_a_stack_never_deployed_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert argv[2] == "describe-repositories", "nothing is copied into a repository that is not there"
        return subprocess.CompletedProcess(argv, 254, stdout="", stderr="RepositoryNotFoundException\n")

    assert promote_image.main(promotion("copy"), run=run) == 2
    assert capsys.readouterr().err == (
        f"promote_image: repository {PROD_REPOSITORY} does not exist in account {ACCOUNT} ({REGION}) or cannot be "
        "read: deploy the stack once so that it creates it (RepositoryNotFoundException)\n"
    )


@pytest.mark.usefixtures("skopeo")
def test_copy_stops_when_the_copy_fails(capsys: pytest.CaptureFixture[str]) -> None:
    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if argv[:2] == ["skopeo", "copy"]:
            raise subprocess.CalledProcessError(1, argv, stderr="manifest unknown")
        return subprocess.CompletedProcess(argv, 0, stdout="token")

    assert promote_image.main(promotion("copy"), run=run) == 1
    assert capsys.readouterr() == ("", "promote_image: skopeo copy failed (1): manifest unknown\n")


def test_the_script_runs_from_the_repository_root_with_the_programs_virtualenv() -> None:
    """As the workflow runs it: `.venv/bin/python scripts/promote_image.py target ...`."""
    result = subprocess.run(
        [sys.executable, "scripts/promote_image.py", *promotion("target")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{PROD_IMAGE}\n", "")
