"""Compute: AWS Batch on Fargate running a container image built here, and AWS Glue 5.0 jobs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import naming
from components.config import FARGATE_MEMORY_MIB
from components.iam import objects, service_role, statement
from components.storage import s3_uri

# Mirrors batch_image/.dockerignore: local caches must not change the tag (that would be preview noise).
_NOT_IMAGE_CONTENT = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".git", "build", "dist"}


def project_relative(path: str | Path) -> str:
    """`path` relative to the working directory, which Pulumi sets to the project directory: inputs
    then read `glue_scripts/x.py`, not where this checkout happens to live (that would be preview noise)."""
    return os.path.relpath(path)


def content_hash(path: Path) -> str:
    """sha256 over a file or a directory's files (names and bytes): the tag that changes only with the code."""
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not (_NOT_IMAGE_CONTENT & set(p.relative_to(path).parts))
            and not any(part.endswith(".egg-info") for part in p.parts)
            and p.suffix != ".pyc"
        )
    )
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path if path.is_dir() else path.parent).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class BatchComputeArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # Directory holding the Dockerfile; its content hash is the image tag.
    image_context: str
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    max_vcpus: int = 16
    # Fargate Spot first, on-demand Fargate as the fallback.
    use_spot: bool = False
    log_retention_days: int = 30
    # Untagged images expire after a day; this many tagged images are kept.
    keep_images: int = 20
    remove_data_on_destroy: bool = False


class BatchCompute(pulumi.ComponentResource):
    """What every Batch job of the estate shares: an ECR repository (immutable tags, scan on push,
    KMS, lifecycle), the jobs image built for linux/amd64 and tagged by content, Fargate compute
    environment(s) and one job queue, an encrypted log group and the tasks' execution role.
    Each job adds a `BatchJob` (its own role and job definition) on top."""

    job_queue_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BatchComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:compute:BatchCompute", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = not args.remove_data_on_destroy

        repo = aws.ecr.Repository(
            f"{name}-repo",
            name=naming.physical(name, 256),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=args.remove_data_on_destroy,
            opts=pulumi.ResourceOptions(parent=self, protect=keep, retain_on_delete=keep),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repo-lifecycle",
            repository=repo.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "drop untagged layers after a day",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 1,
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

        context = Path(args.image_context)
        tag = content_hash(context)[:16]
        token = aws.ecr.get_authorization_token_output(
            registry_id=repo.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.image_uri = pulumi.Output.concat(repo.repository_url, ":", tag)
        docker.Image(
            f"{name}-image",
            image_name=self.image_uri,
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(context / "Dockerfile"),
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=repo.repository_url, username=token.user_name, password=pulumi.Output.secret(token.password)
            ),
            # Previews (pull requests, machines without Docker) must not need a Docker engine.
            build_on_preview=False,
            opts=child,
        )

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
                statement(
                    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [repo.arn]
                ),
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
        self.register_outputs(
            {
                "job_queue_arn": self.job_queue_arn,
                "repository_url": self.repository_url,
                "image_uri": self.image_uri,
                "log_group_name": self.log_group_name,
            }
        )


@dataclass(frozen=True, kw_only=True)
class BatchJobArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    # The shared image, queue, logs and execution role.
    compute: BatchCompute
    # Container command: the image's console script and its flags; "Ref::x" takes the submitted parameter x.
    command: list[str]
    # What the job may do, as IAM statements (least privilege is the caller's to state).
    job_role_statements: list[dict[str, Any]]
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # Public IP for tasks in public subnets (no NAT); the security group still admits nothing.
    assign_public_ip: bool = False
    vcpu: float = 1
    memory_mib: int = 2048
    timeout_minutes: int = 60
    # Attempts in total; only `retry_exit_codes` and image-pull failures are retried.
    retry_attempts: int = 3
    retry_exit_codes: tuple[str, ...] = ("4",)


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
        if not 1 <= args.retry_attempts <= 10:
            raise ValueError(f"BatchJob {name}: retry_attempts must be 1 to 10, got {args.retry_attempts}")
        child = pulumi.ResourceOptions(parent=self)
        job_role = service_role(
            f"{name}-role",
            f"{name}-job",
            "ecs-tasks.amazonaws.com",
            args.account_id,
            args.job_role_statements,
            parent=self,
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
            "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
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


def glue_security_configuration(
    name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource
) -> aws.glue.SecurityConfiguration:
    """Encrypts what a Glue job or crawler writes to S3, its logs and its bookmarks with the estate key."""
    return aws.glue.SecurityConfiguration(
        f"{name}-security",
        name=naming.physical(f"{name}-security", 255),
        encryption_configuration={
            "cloudwatch_encryption": {"cloudwatch_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn},
            "job_bookmarks_encryption": {"job_bookmarks_encryption_mode": "CSE-KMS", "kms_key_arn": kms_key_arn},
            "s3_encryption": {"s3_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn},
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True, kw_only=True)
class GlueJobArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # Local PySpark script; uploaded under a content-hashed key so a change shows as a change.
    script_path: str
    scripts_bucket: pulumi.Input[str]
    scripts_bucket_arn: pulumi.Input[str]
    # Local modules the script imports (e.g. glue_scripts/glue_common.py), shipped via --extra-py-files.
    extra_py_files: tuple[str, ...] = ()
    # What the job may do besides reading its script and logging (least privilege is the caller's).
    role_statements: list[dict[str, Any]]
    # Job arguments ("--name": value) every run receives.
    arguments: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_retries: int = 1
    # Glue job bookmarks: process only new input on each run.
    bookmarks: bool = False
    max_concurrent_runs: int = 1


class GlueJob(pulumi.ComponentResource):
    """A Glue 5.0 (Spark 3.5, Python 3.11) job: its script uploaded with a content hash, a security
    configuration encrypting S3 output, logs and bookmarks with the estate key, continuous logging,
    a timeout and bounded retries."""

    job_name: pulumi.Output[str]
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
        # Each module keeps its file name (that is what the script imports) under a content-hashed folder.
        module_keys = [
            f"glue/{script.stem}/lib/{content_hash(Path(module))[:16]}/{Path(module).name}"
            for module in args.extra_py_files
        ]
        module_locations = [
            pulumi.Output.concat(
                "s3://",
                aws.s3.BucketObjectv2(
                    f"{name}-lib-{Path(module).stem.replace('_', '-')}",
                    bucket=args.scripts_bucket,
                    key=module_key,
                    source=pulumi.FileAsset(project_relative(module)),
                    content_type="text/x-python",
                    opts=child,
                ).bucket,
                "/",
                module_key,
            )
            for module, module_key in zip(args.extra_py_files, module_keys, strict=True)
        ]

        security = glue_security_configuration(name, args.kms_key_arn, self)
        glue_logs = pulumi.Output.concat("arn:aws:logs:", args.region, ":", args.account_id, ":log-group:/aws-glue/*")
        temp_prefix = f"glue-temp/{script.stem}/"
        role = service_role(
            f"{name}-role",
            f"{name}-glue",
            "glue.amazonaws.com",
            args.account_id,
            [
                # The job's own code folder, not the exact hashed keys: a script change then
                # shows in preview as the object and the job only, not also this policy.
                statement(["s3:GetObject"], objects(args.scripts_bucket_arn, f"glue/{script.stem}/")),
                statement(
                    ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    objects(args.scripts_bucket_arn, temp_prefix),
                ),
                statement(
                    ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    [glue_logs],
                ),
                statement(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                *args.role_statements,
            ],
            parent=self,
        )
        extra_py_files = (
            {"--extra-py-files": pulumi.Output.all(*module_locations).apply(",".join)} if module_locations else {}
        )
        job = aws.glue.Job(
            f"{name}-job",
            name=naming.physical(name, 255),
            role_arn=role.arn,
            glue_version="5.0",
            command={"name": "glueetl", "script_location": self.script_location, "python_version": "3"},
            default_arguments={
                "--job-language": "python",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--job-bookmark-option": "job-bookmark-enable" if args.bookmarks else "job-bookmark-disable",
                "--TempDir": s3_uri(args.scripts_bucket, temp_prefix),
                **extra_py_files,
                **args.arguments,
            },
            worker_type=args.worker_type,
            number_of_workers=args.number_of_workers,
            timeout=args.timeout_minutes,
            max_retries=args.max_retries,
            security_configuration=security.name,
            execution_property={"max_concurrent_runs": args.max_concurrent_runs},
            opts=child,
        )
        self.job_name = job.name
        self.job_arn = job.arn
        self.role_arn = role.arn
        self.register_outputs(
            {"job_name": self.job_name, "job_arn": self.job_arn, "script_location": self.script_location}
        )
