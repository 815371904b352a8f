"""Compute: AWS Batch on Fargate running a container image built here, and AWS Glue 5.0 jobs."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import naming
from components.aws_limits import BATCH_RETRY_ATTEMPTS, FARGATE_MEMORY_MIB
from components.config import ECR_IMAGE_EXAMPLE, parse_ecr_image
from components.iam import objects, service_role, statement
from components.storage import s3_uri, stateful
from job_runtime import errors, metrics

# Mirrors .dockerignore: local caches must not change the tag (that would be preview noise).
_NOT_IMAGE_CONTENT = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".git", "build", "dist"}
# Where packages shipped to Glue are zipped (project-relative; git ignores build/).
GLUE_PACKAGE_BUILD_DIR = Path("build") / "glue-py-files"
# Fixed timestamp of every entry in a built zip (the earliest a zip can record), so equal files give equal bytes.
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# The tag every build of the jobs image is pushed under, in each stack's repository: the newest image there,
# and so the layer cache of the next build (its own stack's and, through `cache_stacks`, other stacks').
CURRENT_IMAGE_TAG = "current"
# What ECR needs to serve an image to a puller: the manifest, the layers' download URLs, the layers' presence.
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def project_relative(path: str | Path) -> str:
    """`path` relative to the working directory, which Pulumi sets to the program's project directory:
    inputs then read `glue_scripts/x.py`, not where this checkout happens to live (that would be preview
    noise). Paths in Args are taken relative to the same directory."""
    return os.path.relpath(path)


def code_files(path: Path) -> list[Path]:
    """A file, or a directory's files without caches and build output, sorted."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not (_NOT_IMAGE_CONTENT & set(p.relative_to(path).parts))
        and not any(part.endswith(".egg-info") for part in p.parts)
        and p.suffix != ".pyc"
    )


def files_hash(root: Path, paths: Sequence[Path]) -> str:
    """sha256 over the files of `paths` (files or directories): names relative to `root`, and bytes."""
    digest, root = hashlib.sha256(), root.resolve()
    for path in paths:
        for file in code_files(path.resolve()):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def content_hash(path: Path) -> str:
    """sha256 over a file or a directory's files (names and bytes): the tag that changes only with the code."""
    return files_hash(path if path.is_dir() else path.parent, [path])


def dockerfile_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile's COPY/ADD instructions read (multi-stage `--from` copies excluded)."""
    sources = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        words = line.split()
        if words and words[0].upper() in ("COPY", "ADD") and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def image_content_hash(context: Path, dockerfile: Path) -> str:
    """sha256 over the Dockerfile and exactly the files it copies from the build context: the image's
    `dataplatform.content-hash` label."""
    return files_hash(context, [dockerfile, *(context / source for source in dockerfile_sources(dockerfile))])


def python_package_zip(package: Path, build_dir: Path) -> Path:
    """A zip of a Python package's modules under `<package name>/` (the layout Glue's --extra-py-files
    imports from), byte-for-byte the same for the same files; written once under `build_dir`, named by
    its content hash."""
    modules = [p for p in code_files(package) if p.suffix == ".py"]
    target = build_dir / f"{package.name}-{files_hash(package.parent, modules)[:16]}.zip"
    if not target.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for module in modules:
                entry = zipfile.ZipInfo(module.relative_to(package.parent).as_posix(), _ZIP_TIMESTAMP)
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, module.read_bytes(), zipfile.ZIP_DEFLATED)
        partial.replace(target)
    return target


@dataclass(frozen=True, kw_only=True)
class BatchEnvironment:
    """What every job definition on one Batch compute shares, as plain values: `BatchCompute.job_environment`,
    or the same values read from another stack (a stack reference) or given by another program."""

    # The image every job runs, pinned by digest (<repository>@sha256:<digest>).
    image_uri: pulumi.Input[str]
    # The ECS task execution role: pulls the image and writes the container's logs.
    execution_role_arn: pulumi.Input[str]
    # The CloudWatch Logs group the containers log to (awslogs driver).
    log_group_name: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class BatchComputeArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    # Directory holding the Dockerfile (batch_image/), relative to the program's directory; needed unless
    # `image` is given.
    image_context: str = ""
    # Docker build context: the project directory, so the image can install job_runtime/ beside the
    # jobs (its .dockerignore sends only what the Dockerfile copies). The hash of the Dockerfile and of
    # exactly the files it copies labels the image.
    build_context: str = "."
    max_vcpus: int = 16
    # Fargate Spot first, on-demand Fargate as the fallback.
    use_spot: bool = False
    log_retention_days: int = 30
    # Untagged images (each build's predecessor, once it moves the `current` tag) expire after this many
    # days; at most `keep_images` images are kept in all.
    untagged_image_days: int = 7
    keep_images: int = 20
    remove_data_on_destroy: bool = False
    # An ECR image pinned by digest (<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<hex>) that
    # every job runs: the stack then builds and pushes nothing, and its tasks' execution role may pull that
    # image's repository. Empty: build `image_context` and push it to this stack's repository.
    image: str = ""
    # Other stacks of this project (same account and region) whose current image seeds the layer cache
    # besides this stack's own, e.g. ("dev",): a new pull-request stack, whose repository is empty, then
    # reuses the layers main last built. A missing cache image only costs the cache.
    cache_stacks: tuple[str, ...] = ()
    # Accounts whose principals may pull this stack's images (the repository policy), e.g. the account of a
    # stack that promotes them. Nothing outside this account may pull without it.
    pull_account_ids: Sequence[str] = ()


class BatchCompute(pulumi.ComponentResource):
    """What every Batch job of the estate shares: an ECR repository (scan on push, KMS, lifecycle, and a
    policy letting `pull_account_ids` pull), the jobs image referenced by digest, Fargate compute
    environment(s) and one job queue, an encrypted log group and the tasks' execution role. The image is
    either built here for linux/amd64 (reusing the layers of the repository's current image) and pushed,
    or, with `image` set, an image built elsewhere (a promotion): nothing is built or pushed then. Each job
    adds a `BatchJob` (its own role and job definition) on top."""

    job_queue_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    # <repository>@sha256:<digest>: what every job runs. The pushed image's (known only after a successful
    # push), or `image` as given.
    image_uri: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    # The image, execution role and log group every BatchJob on this compute takes (BatchJobArgs.compute).
    job_environment: BatchEnvironment

    def __init__(self, name: str, args: BatchComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:compute:BatchCompute", name, None, opts)
        promoted = parse_ecr_image(args.image) if args.image else None
        if args.image and promoted is None:
            raise ValueError(f"BatchCompute {name}: image must be an ECR image pinned by digest, {ECR_IMAGE_EXAMPLE}")
        if not args.image and not args.image_context:
            raise ValueError(f"BatchCompute {name}: needs image_context (a directory with a Dockerfile) or image")
        child = pulumi.ResourceOptions(parent=self)

        repo = aws.ecr.Repository(
            f"{name}-repo",
            name=naming.physical(name, 256),
            # Each build moves the `current` tag (the next build's layer cache); consumers pin the digest.
            image_tag_mutability="MUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=args.remove_data_on_destroy,
            opts=stateful(args.remove_data_on_destroy, self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repo-lifecycle",
            repository=repo.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"drop untagged images after {args.untagged_image_days} days",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": args.untagged_image_days,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": f"keep the newest {args.keep_images} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": args.keep_images,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=pulumi.ResourceOptions(parent=repo),
        )

        if args.pull_account_ids:
            # Cross-account pulls need the repository's policy as well as the puller's own IAM policy
            # (Amazon ECR User Guide, "Private repository policy examples", "Allow another account").
            aws.ecr.RepositoryPolicy(
                f"{name}-repo-policy",
                repository=repo.name,
                policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PullFromAccounts",
                                "Effect": "Allow",
                                "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in args.pull_account_ids]},
                                "Action": ECR_PULL_ACTIONS,
                            }
                        ],
                    }
                ),
                opts=pulumi.ResourceOptions(parent=repo),
            )

        if promoted is not None:
            # Built, tested and pushed elsewhere: run exactly those bytes.
            self.image_uri = pulumi.Output.from_input(promoted.uri)
            pulled_repository: pulumi.Input[str] = promoted.repository_arn
        else:
            self.image_uri = self._build_image(name, args, repo)
            pulled_repository = repo.arn

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/batch/{naming.physical(name, 200)}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        execution_role = service_role(
            f"{name}-execution-role",
            f"{name}-exec",
            "ecs-tasks.amazonaws.com",
            args.account_id,
            [
                statement(["ecr:GetAuthorizationToken"], ["*"]),
                # Fargate pulls the image as the execution role (Amazon ECS Developer Guide, "Amazon ECS
                # task execution IAM role"); a token from any registry call, then the image's repository.
                statement(ECR_PULL_ACTIONS, [pulled_repository]),
                statement(["logs:CreateLogStream", "logs:PutLogEvents"], [pulumi.Output.concat(log_group.arn, ":*")]),
            ],
            parent=self,
        )

        capacity = ["FARGATE_SPOT", "FARGATE"] if args.use_spot else ["FARGATE"]
        environments = [
            aws.batch.ComputeEnvironment(
                f"{name}-{kind.lower().replace('_', '-')}",
                name_prefix=naming.physical_prefix(f"{name}-{kind.lower()}", 128),
                type="MANAGED",
                state="ENABLED",
                compute_resources={
                    "type": kind,
                    "max_vcpus": args.max_vcpus,
                    "subnets": args.subnet_ids,
                    "security_group_ids": args.security_group_ids,
                },
                opts=child,
            )
            for kind in capacity
        ]
        queue = aws.batch.JobQueue(
            f"{name}-queue",
            name=naming.physical(name, 128),
            state="ENABLED",
            priority=1,
            compute_environment_orders=[
                {"order": i + 1, "compute_environment": env.arn} for i, env in enumerate(environments)
            ],
            opts=child,
        )
        self.job_queue_arn = queue.arn
        self.repository_url = repo.repository_url
        self.log_group_name = log_group.name
        self.execution_role_arn = execution_role.arn
        self.job_environment = BatchEnvironment(
            image_uri=self.image_uri, execution_role_arn=self.execution_role_arn, log_group_name=self.log_group_name
        )
        self.register_outputs(
            {
                "job_queue_arn": self.job_queue_arn,
                "repository_url": self.repository_url,
                "image_uri": self.image_uri,
                "log_group_name": self.log_group_name,
            }
        )

    def _build_image(self, name: str, args: BatchComputeArgs, repo: aws.ecr.Repository) -> pulumi.Output[str]:
        """Builds the jobs image for linux/amd64 and pushes it as the repository's `current` image; returns
        its pushed digest. The build starts from the layers of the current images of this stack's
        repository and of `cache_stacks`' (BuildKit inline cache, so every pushed image carries the cache
        metadata the next build reads)."""
        context, dockerfile = Path(args.build_context), Path(args.image_context) / "Dockerfile"
        token = aws.ecr.get_authorization_token_output(
            registry_id=repo.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        registry = repo.repository_url.apply(lambda url: url.partition("/")[0])
        # Another stack's repository is named as naming.physical names this one's, with that stack's name.
        others = [stack for stack in args.cache_stacks if stack != pulumi.get_stack()]
        cache_repositories: list[pulumi.Input[str]] = [
            repo.name,
            *(naming.physical(name, 256, stack) for stack in others),
        ]
        image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(repo.repository_url, ":", CURRENT_IMAGE_TAG),
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(dockerfile),
                platform="linux/amd64",
                args={
                    "BUILDKIT_INLINE_CACHE": "1",
                    # A label of what the image holds: the Dockerfile and exactly the files it copies.
                    "CONTENT_HASH": image_content_hash(context, dockerfile),
                },
                cache_from=docker.CacheFromArgs(
                    images=[pulumi.Output.concat(registry, "/", r, ":", CURRENT_IMAGE_TAG) for r in cache_repositories]
                ),
            ),
            registry=docker.RegistryArgs(
                server=repo.repository_url, username=token.user_name, password=pulumi.Output.secret(token.password)
            ),
            # Previews (pull requests, machines without Docker) must not need a Docker engine.
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The digest, not the tag: what runs is exactly what was pushed, and every consumer waits
        # for the push to succeed.
        return image.repo_digest


@dataclass(frozen=True, kw_only=True)
class BatchJobArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The registry name of the pipeline the job belongs to ("render-logs"): its metrics' Pipeline dimension.
    pipeline: str
    # The image, task execution role and log group the job runs with (BatchCompute.job_environment, or the
    # same values from another stack or program).
    compute: BatchEnvironment
    # Container command: the image's console script and its flags; "Ref::x" takes the submitted parameter x.
    command: list[str]
    # What the job may do, as IAM statements (least privilege is the caller's to state).
    job_role_statements: list[dict[str, Any]]
    # Tags of the job's role, e.g. the database roles Redshift grants it (warehouse_access.db_roles_tag).
    role_tags: dict[str, str] = field(default_factory=dict)
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # Public IP for tasks in public subnets (no NAT); the security group still admits nothing.
    assign_public_ip: bool = False
    vcpu: float = 1
    memory_mib: int = 2048
    timeout_minutes: int = 60
    # Attempts in total; only `retry_exit_codes` and image-pull failures are retried.
    retry_attempts: int = 3
    # Default: the transient-failure exit code of the jobs (job_runtime.errors.EXIT_TRANSIENT).
    retry_exit_codes: tuple[str, ...] = (str(errors.EXIT_TRANSIENT),)


class BatchJob(pulumi.ComponentResource):
    """One job on the shared Batch compute: its own task role and a Fargate job definition (read-only
    root file system, a timeout) whose retry strategy retries transient exit codes and never bad input."""

    job_definition_arn: pulumi.Output[str]
    job_definition_name: pulumi.Output[str]
    job_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BatchJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:compute:BatchJob", name, None, opts)
        allowed = FARGATE_MEMORY_MIB.get(args.vcpu)
        if not allowed or args.memory_mib not in allowed:
            raise ValueError(f"BatchJob {name}: Fargate does not offer {args.vcpu:g} vCPU with {args.memory_mib} MiB")
        fewest, most = BATCH_RETRY_ATTEMPTS
        if not fewest <= args.retry_attempts <= most:
            raise ValueError(f"BatchJob {name}: retry_attempts must be {fewest} to {most}, got {args.retry_attempts}")
        child = pulumi.ResourceOptions(parent=self)
        job_role = service_role(
            f"{name}-role",
            f"{name}-job",
            "ecs-tasks.amazonaws.com",
            args.account_id,
            args.job_role_statements,
            parent=self,
            tags=args.role_tags or None,
        )
        container = {
            "image": args.compute.image_uri,
            "command": args.command,
            "jobRoleArn": job_role.arn,
            "executionRoleArn": args.compute.execution_role_arn,
            "resourceRequirements": [
                {"type": "VCPU", "value": f"{args.vcpu:g}"},
                {"type": "MEMORY", "value": str(args.memory_mib)},
            ],
            # The Stack and Pipeline dimensions of the job's run metrics (job_runtime.metrics).
            "environment": [
                {"name": k, "value": v}
                for k, v in sorted(
                    {
                        **args.environment,
                        metrics.STACK_ENV: pulumi.get_stack(),
                        metrics.PIPELINE_ENV: args.pipeline,
                    }.items()
                )
            ],
            "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            "networkConfiguration": {"assignPublicIp": "ENABLED" if args.assign_public_ip else "DISABLED"},
            "readonlyRootFilesystem": True,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": args.compute.log_group_name,
                    "awslogs-region": args.region,
                    "awslogs-stream-prefix": name,
                },
            },
        }
        # First match wins: transient exit codes and image pulls retry, any other exit code stops.
        retry_rules: list[aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgsDict] = [
            {"on_exit_code": code, "action": "RETRY"} for code in args.retry_exit_codes
        ]
        retry_rules += [
            {"on_reason": "CannotPullContainerError*", "action": "RETRY"},
            {"on_exit_code": "*", "action": "EXIT"},
        ]
        definition = aws.batch.JobDefinition(
            f"{name}-definition",
            name=naming.physical(name, 128),
            type="container",
            platform_capabilities=["FARGATE"],
            container_properties=pulumi.Output.json_dumps(container),
            retry_strategy={"attempts": args.retry_attempts, "evaluate_on_exits": retry_rules},
            timeout={"attempt_duration_seconds": args.timeout_minutes * 60},
            propagate_tags=True,
            opts=child,
        )
        self.job_definition_arn = definition.arn
        self.job_definition_name = definition.name
        self.job_role_arn = job_role.arn
        self.register_outputs(
            {"job_definition_arn": self.job_definition_arn, "job_definition_name": self.job_definition_name}
        )


def job_log_group_prefix(job_name: str) -> str:
    """The `--custom-logGroup-prefix` of a Glue job: its groups are <prefix>/output and <prefix>/error."""
    return f"/aws-glue/jobs/{job_name}"


def glue_security_configuration(
    name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource, *, encrypt_logs: bool = True
) -> aws.glue.SecurityConfiguration:
    """Encrypts what a Glue job or crawler writes to S3 and its bookmarks with the estate key, and its
    CloudWatch logs unless `encrypt_logs` is false (for jobs whose log groups are themselves KMS-encrypted)."""
    cloudwatch: aws.glue.SecurityConfigurationEncryptionConfigurationCloudwatchEncryptionArgsDict = (
        {"cloudwatch_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn}
        if encrypt_logs
        else {"cloudwatch_encryption_mode": "DISABLED"}
    )
    return aws.glue.SecurityConfiguration(
        f"{name}-security",
        name=naming.physical(f"{name}-security", 255),
        encryption_configuration={
            "cloudwatch_encryption": cloudwatch,
            "job_bookmarks_encryption": {"job_bookmarks_encryption_mode": "CSE-KMS", "kms_key_arn": kms_key_arn},
            "s3_encryption": {"s3_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn},
        },
        # Glue cannot change a security configuration, and its name is fixed: replace it by deleting first.
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )


@dataclass(frozen=True, kw_only=True)
class GlueJobArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The registry name of the pipeline the job belongs to ("sales"): its metrics' Pipeline dimension.
    pipeline: str
    kms_key_arn: pulumi.Input[str]
    # Local PySpark script; uploaded under a content-hashed key so a change shows as a change.
    script_path: str
    scripts_bucket: pulumi.Input[str]
    scripts_bucket_arn: pulumi.Input[str]
    # Local modules (e.g. glue_scripts/glue_common.py) and packages (directories, e.g. job_runtime/, shipped
    # as a zip) the script imports, shipped via --extra-py-files.
    extra_py_files: tuple[str, ...] = ()
    # What the job may do besides reading its script and logging (least privilege is the caller's).
    role_statements: list[dict[str, Any]]
    # Tags of the job's role, e.g. the database roles Redshift grants it (warehouse_access.db_roles_tag).
    role_tags: dict[str, str] = field(default_factory=dict)
    # Job arguments ("--name": value) every run receives.
    arguments: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_retries: int = 1
    # Glue job bookmarks: process only new input on each run.
    bookmarks: bool = False
    max_concurrent_runs: int = 1
    # Retention of the job's two log groups (a value CloudWatch Logs accepts).
    log_retention_days: int = 30


def with_multipart_abort(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`statements` where every Allow of s3:PutObject also allows s3:AbortMultipartUpload on the same
    resources: Spark's S3 committers upload large files in parts and abort the parts of a failed
    write, which S3 authorises with s3:AbortMultipartUpload alone (without it the parts stay, billed)."""
    result = []
    for stmt in statements:
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        if stmt["Effect"] == "Allow" and "s3:PutObject" in actions and "s3:AbortMultipartUpload" not in actions:
            stmt = {**stmt, "Action": sorted([*actions, "s3:AbortMultipartUpload"])}
        result.append(stmt)
    return result


class GlueJob(pulumi.ComponentResource):
    """A Glue 5.0 (Spark 3.5, Python 3.11) job: its script uploaded with a content hash, a security
    configuration encrypting S3 output and bookmarks with the estate key, its own two log groups
    (`/aws-glue/jobs/<job>/output` and `/error`, KMS-encrypted, the stack's so destroy removes them,
    the only groups its role may write to), job metrics, a timeout and bounded retries."""

    job_name: pulumi.Output[str]
    # Where Glue 5.0 writes the driver's and executors' logs (the stack traces of a failed run).
    error_log_group_name: pulumi.Output[str]
    job_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    script_location: pulumi.Output[str]

    def __init__(self, name: str, args: GlueJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:compute:GlueJob", name, None, opts)
        if not 0 <= args.max_retries <= 10:
            raise ValueError(f"GlueJob {name}: max_retries must be 0 to 10, got {args.max_retries}")
        child = pulumi.ResourceOptions(parent=self)
        script = Path(args.script_path)
        key = f"glue/{script.stem}/{content_hash(script)[:16]}.py"
        script_object = aws.s3.BucketObjectv2(
            f"{name}-script",
            bucket=args.scripts_bucket,
            key=key,
            source=pulumi.FileAsset(project_relative(script)),
            content_type="text/x-python",
            opts=child,
        )
        self.script_location = pulumi.Output.concat("s3://", script_object.bucket, "/", script_object.key)
        # Each module keeps its file name (that is what the script imports) under a content-hashed folder;
        # a package travels as `<package>.zip` holding `<package>/...`, which Glue puts on the Python path
        # (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html#aws-glue-programming-python-libraries-zipping).
        uploads = [
            Path(module) if Path(module).is_file() else python_package_zip(Path(module), GLUE_PACKAGE_BUILD_DIR)
            for module in args.extra_py_files
        ]
        module_locations = []
        for module, upload in zip(args.extra_py_files, uploads, strict=True):
            name_in_bucket = upload.name if upload.suffix == ".py" else f"{Path(module).name}.zip"
            module_key = f"glue/{script.stem}/lib/{content_hash(upload)[:16]}/{name_in_bucket}"
            module_object = aws.s3.BucketObjectv2(
                f"{name}-lib-{Path(module).stem.replace('_', '-')}",
                bucket=args.scripts_bucket,
                key=module_key,
                source=pulumi.FileAsset(project_relative(upload)),
                content_type="text/x-python" if upload.suffix == ".py" else "application/zip",
                opts=child,
            )
            module_locations.append(pulumi.Output.concat("s3://", module_object.bucket, "/", module_key))

        # Glue 5.0 writes to <--custom-logGroup-prefix>/output and /error. The groups carry the estate
        # key themselves, so the security configuration does not encrypt logs: with CloudWatch
        # encryption on, Glue documents group names of its own (after the security configuration).
        security = glue_security_configuration(name, args.kms_key_arn, self, encrypt_logs=False)
        physical_name = naming.physical(name, 255)
        log_prefix = job_log_group_prefix(physical_name)
        log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-{kind}-logs",
                name=f"{log_prefix}/{kind}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for kind in ("output", "error")
        }
        temp_prefix = f"glue-temp/{script.stem}/"
        role = service_role(
            f"{name}-role",
            f"{name}-glue",
            "glue.amazonaws.com",
            args.account_id,
            with_multipart_abort(
                [
                    # The job's own code folder, not the exact hashed keys: a script change then
                    # shows in preview as the object and the job only, not also this policy.
                    statement(["s3:GetObject"], objects(args.scripts_bucket_arn, f"glue/{script.stem}/")),
                    statement(
                        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                        objects(args.scripts_bucket_arn, temp_prefix),
                    ),
                    statement(
                        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                        [g.arn for g in log_groups.values()]
                        + [pulumi.Output.concat(g.arn, ":*") for g in log_groups.values()],
                    ),
                    # --enable-metrics and --enable-observability-metrics publish to the "Glue" namespace.
                    statement(
                        ["cloudwatch:PutMetricData"],
                        ["*"],
                        condition={"StringEquals": {"cloudwatch:namespace": "Glue"}},
                    ),
                    statement(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                    *args.role_statements,
                ]
            ),
            parent=self,
            tags=args.role_tags or None,
        )
        extra_py_files = (
            {"--extra-py-files": pulumi.Output.all(*module_locations).apply(",".join)} if module_locations else {}
        )
        job = aws.glue.Job(
            f"{name}-job",
            name=physical_name,
            role_arn=role.arn,
            glue_version="5.0",
            command={"name": "glueetl", "script_location": self.script_location, "python_version": "3"},
            default_arguments={
                "--job-language": "python",
                # Glue 5.0 always logs in real time; this only chooses the groups.
                "--custom-logGroup-prefix": log_prefix,
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--job-bookmark-option": "job-bookmark-enable" if args.bookmarks else "job-bookmark-disable",
                "--TempDir": s3_uri(args.scripts_bucket, temp_prefix),
                # The Stack and Pipeline dimensions of the job's run metrics (job_runtime.metrics).
                metrics.STACK_ARGUMENT: pulumi.get_stack(),
                metrics.PIPELINE_ARGUMENT: args.pipeline,
                **extra_py_files,
                **args.arguments,
            },
            worker_type=args.worker_type,
            number_of_workers=args.number_of_workers,
            timeout=args.timeout_minutes,
            max_retries=args.max_retries,
            security_configuration=security.name,
            execution_property={"max_concurrent_runs": args.max_concurrent_runs},
            # Its log groups exist before any run can write (else Glue would create them, unencrypted,
            # outside the stack).
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(log_groups.values())),
        )
        self.job_name = job.name
        self.error_log_group_name = log_groups["error"].name
        self.job_arn = job.arn
        self.role_arn = role.arn
        self.register_outputs(
            {"job_name": self.job_name, "job_arn": self.job_arn, "script_location": self.script_location}
        )
