"""Where bytes come from and go to: local paths and s3:// URIs behave the same to the job."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from job_errors import TRANSIENT_AWS_CODES, BadInputError, JobError, TransientError

log = logging.getLogger(__name__)


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def classify_aws_error(exc: Exception, action: str) -> JobError:
    """Map a boto3 failure to the exit code Batch should act on."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return TransientError(f"{action}: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_AWS_CODES or status >= 500:
            return TransientError(f"{action}: {code} {exc}")
        if code in {"NoSuchKey", "NoSuchBucket", "404"}:
            return BadInputError(f"{action}: does not exist ({code})")
        return JobError(f"{action}: {code} {exc}")
    return JobError(f"{action}: {exc}")


def s3_client():  # pragma: no cover - trivial
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling before we give up and let Batch retry the job.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def iter_lines(uri: str) -> Iterator[bytes]:
    """Stream the object's lines without copying it to disk first."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            yield from split_lines(body.iter_chunks(chunk_size=1024 * 1024))
        except Exception as exc:
            raise classify_aws_error(exc, f"reading {uri}") from exc
        return
    path = Path(uri)
    if not path.is_file():
        raise BadInputError(f"input file does not exist: {uri}")
    with path.open("rb") as handle:
        yield from handle


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines ending at b"\n" only, as a local file iterates (botocore's iter_lines also splits on a lone "\r")."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def quarantine_uri(quarantine_prefix: str, input_uri: str) -> str:
    """Deterministic per input, so a rerun replaces its own quarantine file instead of adding one."""
    if is_s3(input_uri):
        bucket, key = split_s3(input_uri)
        relative = f"{bucket}/{key}"
    else:
        # Same-named files in different folders must not share a quarantine file.
        path = Path(input_uri).resolve()
        relative = f"{path.name}.{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    return f"{quarantine_prefix.rstrip('/')}/{relative}.quarantine.csv"


def write_quarantine(uri: str, rejected: pd.DataFrame) -> None:
    data = rejected.to_csv(index=False).encode("utf-8")
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=io.BytesIO(data), ContentType="text/csv")
        except Exception as exc:
            raise classify_aws_error(exc, f"writing quarantine {uri}") from exc
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(data)
    log.info("quarantined %d row(s) to %s", len(rejected), uri)


def remove_stale_quarantine(uri: str) -> None:
    """A clean rerun of a fixed file must not leave the previous run's rejects behind."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise classify_aws_error(exc, f"removing stale quarantine {uri}") from exc
    else:
        Path(uri).unlink(missing_ok=True)
