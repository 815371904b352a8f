"""Where bytes come from and go to: local paths and s3:// URIs behave the same to the job."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import mmap
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from job_runtime import errors
from job_runtime.errors import BadInputError, JobError
from render_summary.transform import QUARANTINE_COLUMNS

log = logging.getLogger(__name__)


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def classify_aws_error(exc: Exception, action: str) -> JobError:
    """Map a boto3 failure to the exit code Batch should act on; a missing input is bad input."""
    return errors.classify_aws_error(exc, action, missing_is_bad_input=True)


def s3_client():  # pragma: no cover - trivial
    import boto3
    from botocore.config import Config

    # Standard retry mode backs off on throttling before we give up and let Batch retry the job.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def iter_chunks(uri: str, chunk_bytes: int) -> Iterator[bytearray | memoryview]:
    """The object's bytes as chunks of whole lines, streamed (an S3 body is never copied to disk).

    Each chunk is the next `chunk_bytes` bytes cut after their last b"\\n" (a longer line spans
    chunks). A local file and an S3 body are cut alike, so a file gives the job the same blocks, hence
    the same sums to the last bit, from either.

    A local file's chunks are read-only views of the file memory-mapped a chunk at a time: nothing is
    copied, and a chunk is unmapped once no view of it is left. (The file must not shrink meanwhile.)
    """
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            with closing(body):
                yield from whole_lines(body.read, chunk_bytes)
        except Exception as exc:
            raise classify_aws_error(exc, f"reading {uri}") from exc
        return
    path = Path(uri)
    if not path.is_file():
        raise BadInputError(f"input file does not exist: {uri}")
    with path.open("rb", buffering=0) as handle:
        try:
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ).close()
        except (OSError, ValueError):  # a file system that cannot map files; ValueError: an empty file
            yield from whole_lines(handle.read, chunk_bytes)  # the same chunks, copied
            return
        size = os.fstat(handle.fileno()).st_size
        start = 0
        while start < size:
            base = start - start % mmap.ALLOCATIONGRANULARITY  # where a mapping may start
            mapped = mmap.mmap(
                handle.fileno(), min(start + chunk_bytes, size) - base, access=mmap.ACCESS_READ, offset=base
            )
            end = mapped.rfind(b"\n", start - base) + 1 or len(mapped)
            yield memoryview(mapped)[start - base : end]
            start = base + end


def whole_lines(read: Callable[[int], bytes], chunk_bytes: int) -> Iterator[bytearray]:
    """What the local reader makes of a file, from a stream: `read(n)` returns up to n bytes, b"" at the end."""
    rest = b""
    while True:
        chunk = bytearray(rest)
        while len(chunk) < chunk_bytes and (data := read(chunk_bytes - len(chunk))):
            chunk += data
        if not chunk:
            return
        end = chunk.rfind(b"\n") + 1 or len(chunk)
        rest = bytes(chunk[end:])
        del chunk[end:]
        yield chunk


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


class QuarantineWriter:
    """The quarantine CSV of one input (`line_number,reason,raw_line`), written as rejected rows arrive.

    Memory holds at most `part_bytes` of rows: they go to a temporary file beside a local target, or
    as parts of an S3 multipart upload. Nothing exists until the first row. `commit()` publishes the
    file, replacing the previous run's, or, when no row came, deletes that file: a clean rerun of a
    fixed input leaves no stale rejects. Leaving the `with` block without `commit()` (an error)
    discards what was written and leaves the previous file as it was.
    """

    def __init__(self, uri: str, part_bytes: int = 8 * 1024 * 1024) -> None:
        self.uri, self.part_bytes, self.rows = uri, part_bytes, 0
        self._sink: _LocalFile | _S3Upload | None = None
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")  # the dialect pandas' to_csv writes

    def __enter__(self) -> QuarantineWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            self._sink.discard()
            self._sink = None

    def write(self, rows: Sequence[tuple[int, str, str]]) -> None:
        if not rows:
            return
        if self._sink is None:
            self._sink = _S3Upload(self.uri) if is_s3(self.uri) else _LocalFile(self.uri)
            self._csv.writerow(QUARANTINE_COLUMNS)
        self._csv.writerows(rows)
        self.rows += len(rows)
        if self._buffer.tell() >= self.part_bytes:
            self._sink.write(self._take())

    def commit(self) -> None:
        if self._sink is None:
            remove_stale_quarantine(self.uri)
            return
        self._sink.commit(self._take())
        self._sink = None
        log.info("quarantined %d row(s) to %s", self.rows, self.uri)

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


class _LocalFile:
    """Written beside the target and renamed over it: readers never see half a file."""

    def __init__(self, uri: str) -> None:
        self.target = Path(uri)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".tmp")
        self.temporary = Path(name)
        self.file = open(handle, "wb", buffering=0)  # noqa: SIM115 - closed by commit or discard; parts are large

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self, data: bytes) -> None:
        self.file.write(data)
        self.file.close()
        self.temporary.replace(self.target)

    def discard(self) -> None:
        self.file.close()
        self.temporary.unlink(missing_ok=True)


class _S3Upload:
    """Full parts go up as they fill (multipart upload); a quarantine smaller than a part is one PUT."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.bucket, self.key = split_s3(uri)
        self.client = s3_client()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        try:
            if self.upload_id is None:
                created = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, ContentType="text/csv")
                self.upload_id = created["UploadId"]
            number = len(self.parts) + 1
            part = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
            )
        except Exception as exc:
            raise classify_aws_error(exc, f"writing quarantine {self.uri}") from exc
        self.parts.append({"ETag": part["ETag"], "PartNumber": number})

    def commit(self, data: bytes) -> None:
        if self.upload_id is None:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType="text/csv")
            except Exception as exc:
                raise classify_aws_error(exc, f"writing quarantine {self.uri}") from exc
            return
        if data:
            self.write(data)  # the last part may be smaller than S3's 5 MiB minimum
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
            )
        except Exception as exc:
            raise classify_aws_error(exc, f"writing quarantine {self.uri}") from exc
        self.upload_id = None

    def discard(self) -> None:
        if self.upload_id is None:
            return
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception as exc:  # the job's own error is the one to report
            log.warning("could not abort the quarantine upload to %s: %s", self.uri, exc)


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
