"""Upload the newest sensor CSV export to S3 under a content-addressed key (replaces the seed's cron script).

    python -m ingestion.sensor_upload --folder DIR --bucket BUCKET [--prefix sensor/raw/] [--pattern '*.csv']

Picks the newest file matching the pattern in the folder (modification time, ties broken by the
larger name) and uploads it to `s3://BUCKET/<prefix><stem>-<first 16 hex of sha256>.csv` unless that
key exists already: the key is derived from the content, so running twice uploads once and a
changed export gets a new key. Encryption is the bucket's default SSE-KMS (no key passed here).
boto3 finds credentials, region and `AWS_ENDPOINT_URL` the usual way; `AWS_MAX_ATTEMPTS` bounds retries.

Prints one JSON line {"file", "key", "uploaded", "bytes"}. Exit codes: 0 done (uploaded or already
there), 2 bad flags, 3 bad input (folder missing, no matching file, empty file), 4 transient AWS
failure (throttling, 5xx, connection: retry later), 5 needs a person (access denied, no such bucket).
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from job_runtime.errors import EXIT_OK, BadInputError, JobError, TransientError, describe_aws_error

DEFAULT_PREFIX = "sensor/raw/"
DEFAULT_PATTERN = "*.csv"
HASH_HEX_CHARS = 16


@dataclass(frozen=True)
class Upload:
    """What to upload where: the file's bytes (read once, so hash and upload agree) and its key."""

    path: Path
    key: str
    data: bytes
    sha256: bytes

    @property
    def checksum(self) -> str:
        return base64.b64encode(self.sha256).decode("ascii")


def newest_file(folder: Path, pattern: str) -> Path:
    """The newest regular file in `folder` (not recursive) whose name matches `pattern`.

    Newest by modification time, ties broken by the larger name; dot files (editor and partial
    download leftovers) never count.
    """
    if not folder.is_dir():
        raise BadInputError(f"folder {folder} does not exist or is not a directory")
    matches = [
        path
        for path in folder.iterdir()
        if fnmatch.fnmatchcase(path.name, pattern) and not path.name.startswith(".") and path.is_file()
    ]
    if not matches:
        raise BadInputError(f"no file matching {pattern!r} in {folder}")
    return max(matches, key=lambda path: (path.stat().st_mtime_ns, path.name))


def object_key(prefix: str, path: Path, sha256_hex: str) -> str:
    """`<prefix><stem>-<first 16 hex of sha256>.csv`; the prefix gets a trailing slash if it has none."""
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{path.stem}-{sha256_hex[:HASH_HEX_CHARS]}.csv"


def plan_upload(folder: Path, pattern: str, prefix: str) -> Upload:
    path = newest_file(folder, pattern)
    data = path.read_bytes()
    if not data:
        raise BadInputError(f"newest file {path} is empty")
    digest = hashlib.sha256(data)
    return Upload(path, object_key(prefix, path, digest.hexdigest()), data, digest.digest())


def classify(error: Exception, action: str) -> JobError:
    """An AWS SDK error as transient (retry later) or failed (needs a person), with a readable message."""
    if isinstance(error, NoCredentialsError):
        return JobError(f"{action} failed: no AWS credentials found")
    failure = describe_aws_error(error)
    if isinstance(error, ClientError):
        code, details = failure.code or "Unknown", failure.message or "no message"
        message = f"{action} failed ({code}, HTTP {failure.status}): {details}"
    else:
        message = f"{action} failed: {error}"
    return TransientError(message) if failure.transient else JobError(message)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # HEAD has no body: a missing key (or bucket) is just 404; the PUT then names a missing bucket.
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise
    return True


def upload(s3: Any, bucket: str, planned: Upload) -> bool:
    """Put the object unless it exists; returns whether this call uploaded it."""
    where = f"s3://{bucket}/{planned.key}"
    try:
        if object_exists(s3, bucket, planned.key):
            return False
        s3.put_object(
            Bucket=bucket,
            Key=planned.key,
            Body=planned.data,
            ContentType="text/csv",
            ChecksumSHA256=planned.checksum,  # S3 rejects the PUT if the bytes arrive altered
            IfNoneMatch="*",  # closes the race between HEAD and PUT: never replace an existing object
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
            return False  # a concurrent run uploaded the same content first
        raise classify(error, f"upload to {where}") from error
    except BotoCoreError as error:
        raise classify(error, f"upload to {where}") from error
    return True


def s3_client() -> Any:
    # Standard retry mode backs off on throttling and 5xx; AWS_MAX_ATTEMPTS still sets the attempts.
    return boto3.client("s3", config=Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=60))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ingestion.sensor_upload", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="folder the sensor exports land in")
    parser.add_argument("--bucket", required=True, help="raw bucket name")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"key prefix (default {DEFAULT_PREFIX})")
    parser.add_argument("--pattern", default=DEFAULT_PATTERN, help=f"file name glob (default {DEFAULT_PATTERN!r})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        planned = plan_upload(args.folder, args.pattern, args.prefix)
        uploaded = upload(s3_client(), args.bucket, planned)
    except JobError as error:
        print(f"sensor_upload: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps({"file": str(planned.path), "key": planned.key, "uploaded": uploaded, "bytes": len(planned.data)}))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
