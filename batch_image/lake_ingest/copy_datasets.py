"""`copy-datasets`: bring configured source datasets (S3 prefixes) into the landing bucket, copying only what changed.

Each dataset NAME=PREFIX lands under `<target prefix><NAME>/` with the same relative keys. Every copy records the
source's ETag, size and URI in the target's user metadata (`source-etag`, `source-size`, `source-uri`); an object
is copied again only when its target is missing or what it records differs from the source listing. Objects that
disappeared from the source stay in the landing zone and are reported as `kept_not_in_source`.

Copies are S3 server-side (the managed copy: CopyObject, or UploadPartCopy for big objects), so data never passes
through the container, and the target bucket's default encryption applies. Flags fall back to environment variables
so the Batch job definition carries the whole configuration. The last stdout line is the run summary as a CloudWatch
Embedded Metric Format line (job_runtime.metrics): Files is the objects copied; no rows are parsed, so the row counts
are 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from job_runtime import errors, metrics
from job_runtime.errors import EXIT_OK, BadInputError, JobError, TransientError, describe_aws_error

log = logging.getLogger("lake_ingest.copy_datasets")

JOB = "copy-datasets"
METRICS_JOB = "copy_datasets"  # the Job dimension of its metrics
PIPELINE = "covid19"  # pipelines/registry.py: the Pipeline dimension unless METRICS_PIPELINE says
META_ETAG = "source-etag"
META_SIZE = "source-size"
META_URI = "source-uri"
MIB = 1024 * 1024
DEFAULT_PART_SIZE_MIB = 64
MIN_PART_SIZE_MIB = 5  # S3's smallest allowed part (except the last one)
MAX_PART_SIZE_MIB = 5 * 1024  # S3's largest allowed part, and the largest single CopyObject
COPY_CONCURRENCY = 16
HEAD_CONCURRENCY = 16
DEFAULT_MAX_ATTEMPTS = 8  # botocore standard-mode attempts per request unless AWS_MAX_ATTEMPTS says otherwise
PROGRESS_EVERY = 100

_NAME = re.compile(r"[a-z0-9_]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_URI_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")  # printable ASCII stays readable


# --- configuration ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    prefix: str  # folder in the source bucket, ending in "/"


@dataclass(frozen=True)
class Settings:
    source_bucket: str
    datasets: tuple[Dataset, ...]
    target_bucket: str
    target_prefix: str  # "" or a folder ending in "/"
    source_region: str | None = None
    part_size_mib: int = DEFAULT_PART_SIZE_MIB

    @property
    def target(self) -> str:
        return f"s3://{self.target_bucket}/{self.target_prefix}"

    def dataset_target_prefix(self, dataset: Dataset) -> str:
        return f"{self.target_prefix}{dataset.name}/"


def parse_dataset_flag(value: str) -> tuple[str, str]:
    name, sep, prefix = value.partition("=")
    if not sep:
        raise BadInputError(f"--dataset {value!r}: expected NAME=PREFIX, e.g. cases=enigma-jhu/csv/")
    return name.strip(), prefix.strip()


def parse_datasets_env(value: str) -> list[tuple[str, str]]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"COPY_DATASETS {value!r}: not valid JSON ({exc.msg})") from exc
    if not isinstance(parsed, dict):
        raise BadInputError(
            f'COPY_DATASETS {value!r}: expected a JSON object of NAME to PREFIX, e.g. {{"cases": "enigma-jhu/csv/"}}'
        )
    pairs: list[tuple[str, str]] = []
    for name, prefix in parsed.items():
        if not isinstance(prefix, str):
            raise BadInputError(f"COPY_DATASETS: dataset {name!r} has prefix {prefix!r}; expected a string")
        pairs.append((name, prefix))
    return pairs


def validate_datasets(pairs: Iterable[tuple[str, str]], origin: str) -> tuple[Dataset, ...]:
    """`origin` names where the values came from (--dataset or COPY_DATASETS) so the message can point at it."""
    datasets: list[Dataset] = []
    seen: set[str] = set()
    for name, prefix in pairs:
        if not _NAME.fullmatch(name):
            raise BadInputError(f"{origin}: dataset name {name!r} must match [a-z0-9_]+")
        if name in seen:
            raise BadInputError(f"{origin}: dataset {name!r} is given more than once")
        if not prefix.endswith("/") or prefix.startswith("/") or "://" in prefix or "//" in prefix:
            raise BadInputError(
                f"{origin}: dataset {name!r} prefix {prefix!r} must be a folder in the source bucket ending in '/', "
                "e.g. enigma-jhu/csv/"
            )
        seen.add(name)
        datasets.append(Dataset(name, prefix))
    if not datasets:
        raise BadInputError(f"{origin}: at least one dataset NAME=PREFIX is required")
    return tuple(datasets)


def split_target(value: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/(.*)", value)
    if not match or not _BUCKET.fullmatch(match.group(1)):
        raise BadInputError(f"--target {value!r}: expected s3://bucket/prefix/ (a valid bucket name, then a folder)")
    bucket, prefix = match.groups()
    if prefix and (not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix):
        raise BadInputError(f"--target {value!r}: the prefix must be a folder ending in '/', e.g. s3://{bucket}/raw/")
    return bucket, prefix


def build_settings(args: argparse.Namespace) -> Settings:
    """Validate the raw flag/env values; every problem is BAD INPUT naming the flag and the value."""
    if not _BUCKET.fullmatch(args.source_bucket) or ".." in args.source_bucket:
        raise BadInputError(f"--source-bucket {args.source_bucket!r}: not a bucket name (give the name, not a URI)")
    if args.dataset:
        datasets = validate_datasets((parse_dataset_flag(v) for v in args.dataset), "--dataset")
    else:
        datasets = validate_datasets(parse_datasets_env(args.datasets_env), "COPY_DATASETS")
    target_bucket, target_prefix = split_target(args.target)
    if args.source_region is not None and not _REGION.fullmatch(args.source_region):
        raise BadInputError(f"--source-region {args.source_region!r}: not an AWS region name, e.g. us-east-2")
    try:
        part_size = int(args.part_size_mib)
    except ValueError:
        part_size = -1
    if not MIN_PART_SIZE_MIB <= part_size <= MAX_PART_SIZE_MIB:
        raise BadInputError(
            f"--part-size-mib {args.part_size_mib!r}: must be a whole number from {MIN_PART_SIZE_MIB} "
            f"to {MAX_PART_SIZE_MIB}"
        )
    settings = Settings(args.source_bucket, datasets, target_bucket, target_prefix, args.source_region, part_size)
    if settings.source_bucket == target_bucket:
        for dataset in datasets:
            landing = settings.dataset_target_prefix(dataset)
            if landing.startswith(dataset.prefix) or dataset.prefix.startswith(landing):
                raise BadInputError(
                    f"--target {args.target!r}: {landing!r} overlaps dataset {dataset.name!r} prefix "
                    f"{dataset.prefix!r} in the same bucket; copies would be copied again on the next run"
                )
    return settings


# --- pure planning ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceObject:
    key: str  # full key in the source bucket
    etag: str  # as listed (quotes are ignored when comparing)
    size: int


@dataclass(frozen=True)
class TargetObject:
    key: str  # full key in the target bucket
    size: int


@dataclass(frozen=True)
class Recorded:
    """What a landed object says it was copied from (its user metadata)."""

    etag: str
    size: int


@dataclass(frozen=True)
class Copy:
    source_bucket: str
    source_key: str
    target_key: str
    etag: str  # the listed source ETag, unquoted
    size: int

    @property
    def source_uri(self) -> str:
        return f"s3://{self.source_bucket}/{self.source_key}"

    def metadata(self) -> dict[str, str]:
        # User metadata travels as HTTP headers: keep it ASCII (non-ASCII key characters are percent-encoded).
        return {
            META_ETAG: self.etag,
            META_SIZE: str(self.size),
            META_URI: quote(self.source_uri, safe=_URI_SAFE),
        }


@dataclass(frozen=True)
class DatasetPlan:
    dataset: Dataset
    listed: int
    copies: tuple[Copy, ...]
    unchanged: tuple[str, ...]  # target keys already holding the listed source version
    kept_not_in_source: tuple[str, ...]  # target keys whose source object is gone; left in place

    @property
    def bytes_to_copy(self) -> int:
        return sum(c.size for c in self.copies)


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


def is_placeholder(key: str) -> bool:
    """Console-created "folders" are zero-byte keys ending in '/': there is nothing to copy."""
    return key.endswith("/")


def target_key_for(dataset: Dataset, landing_prefix: str, source_key: str) -> str:
    if not source_key.startswith(dataset.prefix):
        raise ValueError(f"{source_key!r} is not under {dataset.prefix!r}")
    return f"{landing_prefix}{source_key[len(dataset.prefix) :]}"


def real_objects(objects: Iterable[SourceObject], dataset: Dataset) -> list[SourceObject]:
    return [o for o in objects if o.key.startswith(dataset.prefix) and not is_placeholder(o.key)]


def keys_needing_metadata(
    dataset: Dataset, landing_prefix: str, sources: Iterable[SourceObject], targets: Mapping[str, TargetObject]
) -> list[str]:
    """Target keys whose recorded source must be read (HeadObject): they exist and have the source's size.

    A missing target or one of another size is copied without asking; listings carry no user metadata, and the
    target's own ETag cannot be compared (SSE-KMS and multipart copies give the copy an ETag of its own).
    """
    needed = []
    for obj in real_objects(sources, dataset):
        key = target_key_for(dataset, landing_prefix, obj.key)
        target = targets.get(key)
        if target is not None and target.size == obj.size:
            needed.append(key)
    return needed


def plan_dataset(
    dataset: Dataset,
    source_bucket: str,
    landing_prefix: str,
    sources: Iterable[SourceObject],
    targets: Mapping[str, TargetObject],
    recorded: Mapping[str, Recorded | None],
) -> DatasetPlan:
    """Decide what to copy. `targets` is the listing of `landing_prefix`; `recorded` the metadata read for (at
    least) `keys_needing_metadata`: a target without a matching record is copied again, never trusted."""
    objects = real_objects(sources, dataset)
    copies: list[Copy] = []
    unchanged: list[str] = []
    planned: set[str] = set()
    for obj in objects:
        key = target_key_for(dataset, landing_prefix, obj.key)
        planned.add(key)
        etag = normalize_etag(obj.etag)
        target = targets.get(key)
        record = recorded.get(key)
        if target is not None and target.size == obj.size and record == Recorded(etag, obj.size):
            unchanged.append(key)
        else:
            copies.append(Copy(source_bucket, obj.key, key, etag, obj.size))
    kept = sorted(k for k in targets if k.startswith(landing_prefix) and not is_placeholder(k) and k not in planned)
    return DatasetPlan(dataset, len(objects), tuple(copies), tuple(unchanged), tuple(kept))


def recorded_from_metadata(metadata: Mapping[str, str]) -> Recorded | None:
    """The record a previous copy left, or None when absent or unreadable (the object is then copied again)."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    etag, size = lowered.get(META_ETAG), lowered.get(META_SIZE)
    if not etag or size is None or not size.isdigit():
        return None
    return Recorded(normalize_etag(etag), int(size))


# --- AWS I/O ---------------------------------------------------------------------------------------------------


def classify_aws_error(exc: BaseException, action: str) -> JobError:
    """Map a boto3/s3transfer failure to the exit code Batch should act on (it retries TransientError only).

    Two cases read better here than in general: a failed If-Match (the source changed since the listing:
    a retry re-lists) and a missing bucket (a configuration error: names the bucket)."""
    if isinstance(exc, JobError):
        return exc
    failure = describe_aws_error(exc)
    if failure.code in {"PreconditionFailed", "412"} or failure.status == 412:
        return TransientError(f"{action}: the source object changed while it was being copied; a retry re-lists")
    if failure.code == "NoSuchBucket":
        bucket = getattr(exc, "response", {}).get("Error", {}).get("BucketName", "")
        return JobError(f"{action}: bucket {bucket!r} does not exist (NoSuchBucket)")
    error = errors.classify_aws_error(exc, action)
    # The run summary tells a person reading it that Batch will run the job again.
    return TransientError(f"{error} (retryable)") if failure.code and failure.transient else error


def s3_client(region: str | None = None, pool: int = COPY_CONCURRENCY + HEAD_CONCURRENCY):  # pragma: no cover
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling and 5xx before we give up and exit 4 for Batch to retry.
    retries: dict[str, Any] = {"mode": "standard"}
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["total_max_attempts"] = DEFAULT_MAX_ATTEMPTS
    return boto3.client("s3", region_name=region, config=Config(retries=retries, max_pool_connections=pool))


def list_source(client, bucket: str, prefix: str) -> Iterator[SourceObject]:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield SourceObject(item["Key"], item["ETag"], int(item["Size"]))
    except Exception as exc:
        raise classify_aws_error(exc, f"listing s3://{bucket}/{prefix}") from exc


def list_target(client, bucket: str, prefix: str) -> dict[str, TargetObject]:
    try:
        return {
            item["Key"]: TargetObject(item["Key"], int(item["Size"]))
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }
    except Exception as exc:
        raise classify_aws_error(exc, f"listing s3://{bucket}/{prefix}") from exc


def read_recorded(client, bucket: str, keys: Sequence[str]) -> dict[str, Recorded | None]:
    """HeadObject each key (concurrently: metadata is not in listings). A key gone meanwhile records None."""
    from botocore.exceptions import ClientError

    def head(key: str) -> Recorded | None:
        try:
            return recorded_from_metadata(client.head_object(Bucket=bucket, Key=key).get("Metadata", {}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return None
            raise classify_aws_error(exc, f"reading metadata of s3://{bucket}/{key}") from exc
        except Exception as exc:
            raise classify_aws_error(exc, f"reading metadata of s3://{bucket}/{key}") from exc

    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=min(HEAD_CONCURRENCY, len(keys))) as pool:
        return dict(zip(keys, pool.map(head, keys), strict=True))


@dataclass
class DatasetStats:
    listed: int = 0
    copied: int = 0
    unchanged: int = 0
    bytes_copied: int = 0
    kept_not_in_source: int = 0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "listed": self.listed,
            "copied": self.copied,
            "unchanged": self.unchanged,
            "bytes_copied": self.bytes_copied,
            "kept_not_in_source": self.kept_not_in_source,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def execute_copies(
    client, source_client, target_bucket: str, copies: Sequence[Copy], part_size_mib: int, stats: DatasetStats
) -> None:
    """Managed server-side copies, several at a time; the first failure cancels the rest and is raised.

    Each copy is pinned to the listed source version (CopySourceIfMatch), so the recorded ETag is the one copied.
    `stats` is updated per finished copy, so a failed run still reports what it did copy.
    """
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(
        multipart_threshold=part_size_mib * MIB,
        multipart_chunksize=part_size_mib * MIB,
        max_concurrency=COPY_CONCURRENCY,
        preferred_transfer_client="classic",
    )

    def done(item: Copy) -> None:
        stats.copied += 1
        stats.bytes_copied += item.size
        log.debug("copied %s -> s3://%s/%s (%d bytes)", item.source_uri, target_bucket, item.target_key, item.size)

    manager = create_transfer_manager(client, config)
    submitted: list[Any] = []
    failure: tuple[int, JobError, Exception] | None = None
    clean = False
    try:
        for item in copies:
            extra = {"Metadata": item.metadata(), "MetadataDirective": "REPLACE", "CopySourceIfMatch": f'"{item.etag}"'}
            source = {"Bucket": item.source_bucket, "Key": item.source_key}
            submitted.append(manager.copy(source, target_bucket, item.target_key, extra, source_client=source_client))
        for index, (item, future) in enumerate(zip(copies, submitted, strict=True)):
            try:
                future.result()
            except Exception as exc:
                action = f"copying {item.source_uri} to s3://{target_bucket}/{item.target_key}"
                failure = (index, classify_aws_error(exc, action), exc)
                break
            done(item)
            if stats.copied % PROGRESS_EVERY == 0:
                log.info("... %d of %d copied (%d bytes)", stats.copied, len(copies), stats.bytes_copied)
        clean = failure is None
    finally:
        # On a failure (or an interrupt) cancel what is still queued; in-flight multipart copies are aborted.
        manager.shutdown(cancel=not clean)
    if failure is not None:
        index, error, cause = failure
        for item, future in list(zip(copies, submitted, strict=True))[index + 1 :]:
            try:
                future.result()  # copies that finished after the failing one still count
            except Exception:  # noqa: S112 - cancelled or failed as well: not copied
                continue
            done(item)
        raise error from cause


@dataclass
class RunState:
    settings: Settings | None = None
    datasets: dict[str, DatasetStats] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def copy_dataset(settings: Settings, dataset: Dataset, client, source_client, stats: DatasetStats) -> None:
    source_uri = f"s3://{settings.source_bucket}/{dataset.prefix}"
    landing = settings.dataset_target_prefix(dataset)
    landing_uri = f"s3://{settings.target_bucket}/{landing}"
    sources = list(list_source(source_client, settings.source_bucket, dataset.prefix))
    stats.listed = len(real_objects(sources, dataset))
    log.info("%s: listed %d object(s) under %s", dataset.name, stats.listed, source_uri)
    if stats.listed == 0:
        raise BadInputError(
            f"dataset {dataset.name!r}: no objects under {source_uri} (is the prefix {dataset.prefix!r} right?)"
        )
    targets = list_target(client, settings.target_bucket, landing)
    to_head = keys_needing_metadata(dataset, landing, sources, targets)
    recorded = read_recorded(client, settings.target_bucket, to_head)
    plan = plan_dataset(dataset, settings.source_bucket, landing, sources, targets, recorded)
    stats.unchanged = len(plan.unchanged)
    stats.kept_not_in_source = len(plan.kept_not_in_source)
    log.info(
        "%s: %d to copy (%d bytes), %d unchanged, %d kept in %s but no longer in the source",
        dataset.name,
        len(plan.copies),
        plan.bytes_to_copy,
        stats.unchanged,
        stats.kept_not_in_source,
        landing_uri,
    )
    for key in plan.kept_not_in_source[:10]:
        log.info("%s: kept s3://%s/%s (not in the source any more)", dataset.name, settings.target_bucket, key)
    execute_copies(client, source_client, settings.target_bucket, plan.copies, settings.part_size_mib, stats)
    log.info(
        "%s: copied %d, unchanged %d, %d bytes copied into %s",
        dataset.name,
        stats.copied,
        stats.unchanged,
        stats.bytes_copied,
        landing_uri,
    )


def run(settings: Settings, client, source_client, state: RunState) -> None:
    """Copy every dataset. An empty source prefix is recorded and the others still run (BadInputError at the
    end); any other failure stops the run at once."""
    bad: list[str] = []
    for dataset in settings.datasets:
        stats = state.datasets[dataset.name] = DatasetStats()
        try:
            copy_dataset(settings, dataset, client, source_client, stats)
        except BadInputError as exc:
            stats.error = str(exc)
            bad.append(str(exc))
            log.error("%s", exc)
        except JobError as exc:
            stats.error = str(exc)
            raise
    if bad:
        raise BadInputError("; ".join(bad))


# --- CLI -------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog=JOB, description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--source-bucket", default=env("COPY_SOURCE_BUCKET"), help="source bucket name [env COPY_SOURCE_BUCKET]"
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="NAME=PREFIX",
        help='repeatable; NAME is [a-z0-9_]+, PREFIX a source folder ending in "/" '
        '[env COPY_DATASETS, a JSON object: {"cases": "enigma-jhu/csv/"}]',
    )
    p.add_argument(
        "--target", default=env("COPY_TARGET"), help="landing location s3://bucket/prefix/ [env COPY_TARGET]"
    )
    p.add_argument(
        "--source-region",
        default=env("COPY_SOURCE_REGION") or None,
        help="region of the source bucket, used to list and read it [env COPY_SOURCE_REGION]",
    )
    p.add_argument(
        "--part-size-mib",
        default=env("COPY_PART_SIZE_MIB") or str(DEFAULT_PART_SIZE_MIB),
        help="objects from this size up are copied in parts of this size "
        f"[env COPY_PART_SIZE_MIB, default {DEFAULT_PART_SIZE_MIB}]",
    )
    args = p.parse_args(argv)
    args.datasets_env = env("COPY_DATASETS", "")
    if not args.source_bucket:
        p.error("--source-bucket (or COPY_SOURCE_BUCKET) is required")
    if not args.dataset and not args.datasets_env.strip():
        p.error("--dataset NAME=PREFIX (or COPY_DATASETS) is required: at least one dataset")
    if not args.target:
        p.error("--target (or COPY_TARGET) is required")
    return args


def summary(state: RunState, exit_code: int) -> dict[str, Any]:
    stats = state.datasets.values()
    out: dict[str, Any] = {
        "job": JOB,
        "source_bucket": state.settings.source_bucket if state.settings else None,
        "target": state.settings.target if state.settings else None,
        "datasets": {name: s.as_json() for name, s in state.datasets.items()},
        "copied": sum(s.copied for s in stats),
        "unchanged": sum(s.unchanged for s in stats),
        "bytes_copied": sum(s.bytes_copied for s in stats),
        "kept_not_in_source": sum(s.kept_not_in_source for s in stats),
        "status": "SUCCEEDED" if exit_code == EXIT_OK else "FAILED",
        "exit_code": exit_code,
    }
    if state.errors:
        out["errors"] = state.errors
    return out


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    state = RunState()
    exit_code = EXIT_OK
    try:
        state.settings = build_settings(args)
        client = s3_client()
        source_client = s3_client(state.settings.source_region)
        run(state.settings, client, source_client, state)
    except JobError as exc:
        log.error("%s failed (exit %d): %s", JOB, exc.exit_code, exc)
        state.errors = [s.error for s in state.datasets.values() if s.error] or [str(exc)]
        exit_code = exc.exit_code
    stack, pipeline = metrics.dimensions_from_env(PIPELINE)
    out = summary(state, exit_code)
    metrics.emit_run_summary(
        {**out, "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0},
        stack=stack,
        pipeline=pipeline,
        job=METRICS_JOB,
        duration_seconds=time.monotonic() - started,
        metrics={metrics.FILES: out["copied"]},
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
