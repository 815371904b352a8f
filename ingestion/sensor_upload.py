"""Upload the newest sensor CSV export to S3 under a content-addressed key (replaces the seed's cron script).

    python -m ingestion.sensor_upload --folder DIR --bucket BUCKET [--prefix sensor/raw/] [--pattern '*.csv']

Picks the newest file matching the pattern in the folder (modification time, ties broken by the
larger name) and uploads it to `s3://BUCKET/<prefix><stem>-<first 16 hex of sha256>.csv` unless that
key exists already: the key is derived from the content, so running twice uploads once and a
changed export gets a new key. Encryption is the bucket's default SSE-KMS (no key passed here).
boto3 finds credentials, region and `AWS_ENDPOINT_URL` the usual way; `AWS_MAX_ATTEMPTS` bounds retries.

It then writes the month index the monthly job lists (glue_scripts/sensor_timeseries.py, "the month
index"): `<prefix>_index/month=YYYY-MM/<name>.json` for every month from the file's earliest interval
start to its latest end, then `<prefix>_index/files/<name>.json`, each holding {"file", "first_start",
"last_end", "months", "bytes"}. It is written after the CSV and again when the CSV was already there,
so a run interrupted between the two is completed by the next. A file the CLI cannot date exactly as
the job would (no start_time/end_time header, or a timestamp only the job's parser reads) gets no
entry: the job finds it by listing, reads it once and indexes it itself.

Prints one JSON line {"file", "key", "uploaded", "bytes", "months"} (months null: not indexed).
Exit codes: 0 done (uploaded or already there), 2 bad flags, 3 bad input (folder missing, no matching
file, empty file), 4 transient AWS failure (throttling, 5xx, connection: retry later), 5 needs a person
(access denied, no such bucket).
"""

from __future__ import annotations

import argparse
import base64
import csv
import fnmatch
import hashlib
import io
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from job_runtime.contracts import SENSOR_INDEX_DIR, months_between
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


def _normal_prefix(prefix: str) -> str:
    prefix = prefix.lstrip("/")
    return prefix + "/" if prefix and not prefix.endswith("/") else prefix


def object_key(prefix: str, path: Path, sha256_hex: str) -> str:
    """`<prefix><stem>-<first 16 hex of sha256>.csv`; the prefix gets a trailing slash if it has none."""
    return f"{_normal_prefix(prefix)}{path.stem}-{sha256_hex[:HASH_HEX_CHARS]}.csv"


def plan_upload(folder: Path, pattern: str, prefix: str) -> Upload:
    path = newest_file(folder, pattern)
    data = path.read_bytes()
    if not data:
        raise BadInputError(f"newest file {path} is empty")
    digest = hashlib.sha256(data)
    return Upload(path, object_key(prefix, path, digest.hexdigest()), data, digest.digest())


# --- the month index ----------------------------------------------------------------------------------

INDEX_DIR = SENSOR_INDEX_DIR
# What the job accepts as a timestamp (glue_scripts/sensor_timeseries.py ISO_TIMESTAMP).
ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)?)?")


def _instant(text: str) -> datetime | None:
    """The UTC instant of a timestamp the job accepts (naive = UTC, the job's session zone); None when
    Python cannot read a text the job would (the file is then left to the job)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits; the job's nanoseconds do not move an instant's month
        digits = re.match(r"\d*", rest)
        fraction = digits.group(0) if digits else ""
        text = f"{head}.{fraction[:6]}{rest[len(fraction) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def interval_range(data: bytes) -> tuple[datetime, datetime] | None:
    """(earliest start, latest end) over the rows whose both times the job would accept, or None when the
    CLI cannot be sure to agree with the job (no header with both columns, or a timestamp it cannot read).

    Rows the job quarantines (blank or malformed times) do not count; a row with end before start is
    quarantined too, but counting it only widens the range, which stays a superset.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if "start_time" not in header or "end_time" not in header:
        return None
    at_start, at_end = header.index("start_time"), header.index("end_time")
    first: datetime | None = None
    last: datetime | None = None
    for row in reader:
        if len(row) != len(header):
            continue  # the job quarantines it: wrong number of fields
        start_text, end_text = row[at_start].strip(), row[at_end].strip()
        if not (ISO_TIMESTAMP.fullmatch(start_text) and ISO_TIMESTAMP.fullmatch(end_text)):
            continue  # quarantined by the job
        start, end = _instant(start_text), _instant(end_text)
        if start is None or end is None:
            if _calendar_ok(start_text) and _calendar_ok(end_text):
                return None  # a text the job may read and this parser cannot: leave the file to the job
            continue  # not a real date (2024-03-32): the job quarantines it too
        first = start if first is None or start < first else first
        last = end if last is None or end > last else last
    if first is None or last is None:
        return None
    return first, last


def _calendar_ok(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def index_entries(prefix: str, key: str, data: bytes) -> dict[str, bytes]:
    """The index objects (key -> body) of the CSV uploaded to `key`, in write order (the `files/`
    marker last), or {} when the file is left to the job (see interval_range)."""
    found = interval_range(data)
    if found is None:
        return {}
    prefix = _normal_prefix(prefix)
    rel = key[len(prefix) :]
    first, last = found
    months = months_between(first, last)
    body = json.dumps(
        {"file": rel, "first_start": _iso(first), "last_end": _iso(last), "months": months, "bytes": len(data)},
        sort_keys=True,
    ).encode("utf-8")
    entries = {f"{prefix}{INDEX_DIR}/month={m}/{rel}.json": body for m in months}
    entries[f"{prefix}{INDEX_DIR}/files/{rel}.json"] = body
    return entries


def write_index(s3: Any, bucket: str, entries: dict[str, bytes]) -> None:
    """PUT every entry, in order; rewriting one gives the same bytes, so reruns are harmless."""
    for key, body in entries.items():
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise classify(error, f"writing the month index s3://{bucket}/{key}") from error


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
        s3 = s3_client()
        uploaded = upload(s3, args.bucket, planned)
        entries = index_entries(args.prefix, planned.key, planned.data)
        write_index(s3, args.bucket, entries)  # after the CSV: an entry never names a missing file
    except JobError as error:
        print(f"sensor_upload: {error}", file=sys.stderr)
        return error.exit_code
    months = json.loads(next(iter(entries.values())))["months"] if entries else None
    print(
        json.dumps(
            {
                "file": str(planned.path),
                "key": planned.key,
                "uploaded": uploaded,
                "bytes": len(planned.data),
                "months": months,
            }
        )
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
