"""Where a downloaded hour is stored: S3 (streamed, multipart above 8 MiB) or a local folder (atomic rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from job_runtime.errors import JobError, classify_aws_error
from lake_ingest.gharchive.hours import relative_key

READ_CHUNK = 1024 * 1024


class Stream(Protocol):
    """What a sink reads an hour's bytes from (download.CheckedStream)."""

    def read(self, size: int | None = -1) -> bytes: ...


class Sink(Protocol):
    def location(self, hour: datetime) -> str: ...

    def store(self, hour: datetime, stream: Stream) -> None: ...


class S3Sink:
    """Streams into S3 with upload_fileobj: one PutObject below 8 MiB, multipart (bounded memory) above."""

    def __init__(self, output: str, client: Any) -> None:
        parsed = urlparse(output)
        self.bucket = parsed.netloc
        prefix = parsed.path.lstrip("/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.client = client

    def key(self, hour: datetime) -> str:
        return self.prefix + relative_key(hour)

    def location(self, hour: datetime) -> str:
        return f"s3://{self.bucket}/{self.key(hour)}"

    def store(self, hour: datetime, stream: Stream) -> None:
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(
                stream,
                self.bucket,
                self.key(hour),
                ExtraArgs={"ContentType": "application/gzip"},
                Config=TransferConfig(max_concurrency=4),
            )
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            cause = exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
            raise classify_aws_error(
                cause if isinstance(cause, Exception) else exc, f"storing {self.location(hour)}"
            ) from exc


class LocalSink:
    """Writes to a temp file next to the target, fsyncs, renames: readers never see a partial file."""

    def __init__(self, output: str) -> None:
        self.root = Path(output).resolve()

    def path(self, hour: datetime) -> Path:
        return self.root / relative_key(hour)

    def location(self, hour: datetime) -> str:
        return str(self.path(hour))

    def store(self, hour: datetime, stream: Stream) -> None:
        target = self.path(hour)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        except OSError as exc:
            raise JobError(f"storing {target}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(READ_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise JobError(f"storing {target}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise


def make_sink(output: str, s3_client: Any | None = None) -> Sink:
    if output.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Sink(output, s3_client)
    return LocalSink(output)
