"""One hour's download from GH Archive: checked as it streams (gzip, Content-Length), retried with backoff."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

from job_runtime.errors import JobError, TransientError
from lake_ingest.gharchive.hours import JOB, backoff_delay
from lake_ingest.gharchive.sinks import READ_CHUNK, Sink

log = logging.getLogger(__package__)

GZIP_MAGIC = b"\x1f\x8b"
RETRYABLE_HTTP = {408, 425, 429}  # plus every 5xx


class NotPublished(Exception):
    """HTTP 404: GH Archive has not published the hour yet. Not an error: the run stops cleanly."""


def _network_error_text(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return f"{type(exc).__name__}: {exc}"


class CheckedStream:
    """Read side of one download: counts bytes, insists on the gzip magic and on Content-Length.

    `read(n)` fills n bytes unless the body ends (like a buffered file), because s3transfer takes a short
    read for the end of the file. Network failures while reading become TransientError; a body that is not
    gzip is a JobError (a 200 HTML page will not fix itself); fewer bytes than Content-Length is transient.
    """

    def __init__(self, raw: Any, url: str, expected_length: int | None) -> None:
        self._raw = raw
        self.url = url
        self.expected_length = expected_length
        self.bytes_read = 0
        self._head = b""
        self._eof = False

    def read(self, size: int | None = -1) -> bytes:
        if self._eof:
            return b""
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            try:
                data = self._raw.read(READ_CHUNK if wanted is None else wanted - got)
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(
                    f"reading {self.url} failed after {self.bytes_read + got} byte(s): {_network_error_text(exc)}"
                ) from exc
            if not data:
                self._finish(got)
                break
            if len(self._head) < len(GZIP_MAGIC):
                self._head += data[: len(GZIP_MAGIC) - len(self._head)]
                if len(self._head) == len(GZIP_MAGIC) and self._head != GZIP_MAGIC:
                    raise JobError(f"{self.url} is not a gzip file (starts with {self._head.hex(' ')}, not 1f 8b)")
            parts.append(data)
            got += len(data)
        self.bytes_read += got
        return b"".join(parts)

    def _finish(self, pending: int) -> None:
        self._eof = True
        total = self.bytes_read + pending
        if self.expected_length is not None and total != self.expected_length:
            raise TransientError(f"short read from {self.url}: {total} of {self.expected_length} byte(s)")
        if self._head != GZIP_MAGIC:
            raise JobError(f"{self.url} is not a gzip file ({total} byte(s))")


def fetch_once(url: str, hour: datetime, sink: Sink, timeout: float) -> int:
    """One attempt: GET the hour and stream it into the sink. Returns the bytes stored."""
    request = urllib.request.Request(url, headers={"User-Agent": f"{JOB} (GH Archive download)"})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) checked in parse_settings
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise NotPublished(url) from None
        text = f"HTTP {exc.code} {exc.reason} from {url}"
        if exc.code >= 500 or exc.code in RETRYABLE_HTTP:
            raise TransientError(text) from None
        raise JobError(text) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status lines
        raise TransientError(f"GET {url} failed: {_network_error_text(exc)}") from exc
    with response:
        header = response.headers.get("Content-Length")
        expected = int(header) if header is not None and header.strip().isdigit() else None
        stream = CheckedStream(response, url, expected)
        sink.store(hour, stream)
        return stream.bytes_read


def fetch_with_retries(
    fetch: Callable[[], int],
    hour_text: str,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Retries TransientError with backoff; NotPublished and other JobErrors pass through at once."""
    for attempt in range(1, attempts + 1):
        try:
            return fetch()
        except TransientError as exc:
            if attempt == attempts:
                raise TransientError(f"hour {hour_text}: gave up after {attempts} attempt(s): {exc}") from exc
            delay = backoff_delay(attempt, backoff_seconds)
            log.warning(
                "hour %s attempt %d/%d failed: %s; retrying in %.2f s", hour_text, attempt, attempts, exc, delay
            )
            sleep(delay)
        except JobError as exc:
            raise type(exc)(f"hour {hour_text}: {exc}") from exc
    raise AssertionError("unreachable: attempts >= 1")
