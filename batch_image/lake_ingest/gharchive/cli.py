"""The run: claim each pending hour, download and store it, advance the bookmark; and the console script."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from job_runtime import metrics
from job_runtime.errors import BadInputError, JobError
from lake_ingest.gharchive.bookkeeper import FAILED, SUCCEEDED, Bookkeeper, LeaseConflict, RunResult
from lake_ingest.gharchive.download import NotPublished, fetch_once, fetch_with_retries
from lake_ingest.gharchive.hours import (
    HOUR,
    JOB,
    archive_name,
    first_hour,
    format_hour,
    iso,
    new_run_id,
    parse_hour,
    pending_hours,
)
from lake_ingest.gharchive.settings import Settings, parse_settings
from lake_ingest.gharchive.sinks import Sink, make_sink

log = logging.getLogger(__package__)

METRICS_JOB = "gharchive_ingest"  # the Job dimension of its metrics
PIPELINE = "gharchive"  # pipelines/registry.py: the Pipeline dimension unless METRICS_PIPELINE says


def parse_baseline(text: object, job_name: str, jobs_table: str) -> date:
    """The jobs item's `baseline_day` (YYYY-MM-DD); JobError names the item when an edit broke it."""
    try:
        if not isinstance(text, str) or len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise JobError(
            f"job {job_name!r} in {jobs_table} has a malformed baseline_day {text!r} (expected YYYY-MM-DD)"
        ) from None


class Ingest:
    def __init__(self, settings: Settings, book: Bookkeeper, sink: Sink, result: RunResult) -> None:
        self.settings, self.book, self.sink, self.result = settings, book, sink, result
        self.current_hour: str | None = None
        self.baseline_text = settings.baseline_day.isoformat()  # replaced by the jobs item's in run()

    def run(self) -> None:
        s, result = self.settings, self.result
        item = self.book.read_item()
        baseline_text = item.get("baseline_day")
        if baseline_text is None:
            # The setting only seeds the item; from then on the item is where operators read and edit it.
            baseline_text = self.book.seed_baseline(s.baseline_day.isoformat())
            log.info("job %r had no baseline_day: seeded %s", s.job_name, baseline_text)
        baseline = parse_baseline(baseline_text, s.job_name, s.jobs_table)
        self.baseline_text = baseline_text
        bookmark_text = item.get("bookmark")
        try:
            bookmark = parse_hour(bookmark_text) if bookmark_text is not None else None
        except ValueError as exc:
            raise JobError(f"job {s.job_name!r} in {s.jobs_table} has a malformed bookmark: {exc}") from None
        counted_from = item.get("bookmark_baseline")
        if bookmark is not None and counted_from is not None and counted_from != baseline_text:
            # An operator edited baseline_day: the bookmark counts from another baseline, so start over
            # from the new one (the claim still expects the old bookmark, so a concurrent run is detected).
            log.info(
                "job %r: baseline_day changed from %s to %s: restarting at %s hour 0",
                s.job_name,
                counted_from,
                baseline_text,
                baseline_text,
            )
            bookmark = None
        result.bookmark = bookmark_text
        hours = pending_hours(bookmark, baseline, s.now, s.max_hours)
        if bookmark is None:
            log.info("job %r has no bookmark: starting at %s hour 0", s.job_name, baseline_text)
        log.info(
            "%d hour(s) to fetch (bookmark %s, now %s, max %d)", len(hours), bookmark_text, iso(s.now), s.max_hours
        )
        for hour in hours:
            if not self.ingest_hour(hour):
                return
        after = (hours[-1] if hours else first_hour(bookmark, baseline) - HOUR) + HOUR
        result.stopped_reason = "caught up" if after + HOUR > s.now else f"reached max hours ({s.max_hours})"

    def ingest_hour(self, hour: datetime) -> bool:
        """True when the hour was stored and the bookmark advanced; False when the run should stop cleanly."""
        s, result = self.settings, self.result
        hour_text = format_hour(hour)
        self.current_hour = hour_text
        try:
            self.book.claim(hour_text, result.bookmark)
        except LeaseConflict as conflict:
            result.stopped_reason = str(conflict)
            log.info("stopping: %s", conflict)
            return False
        url = f"{s.base_url}/{archive_name(hour)}"
        started = time.monotonic()
        try:
            size = fetch_with_retries(
                lambda: fetch_once(url, hour, self.sink, s.request_timeout), hour_text, s.attempts, s.backoff_seconds
            )
        except NotPublished:
            self._release(hour_text)
            result.stopped_reason = f"hour {hour_text} not published yet (404)"
            log.info("stopping: %s", result.stopped_reason)
            return False
        except BaseException:
            self._release(hour_text)
            raise
        self.book.advance(hour_text, result.bookmark, self.baseline_text)
        result.bookmark = hour_text
        result.hours.append(hour_text)
        result.bytes += size
        log.info(
            "stored hour %s: %d bytes in %.2f s -> %s",
            hour_text,
            size,
            time.monotonic() - started,
            self.sink.location(hour),
        )
        self.book.record_progress(result.hours, result.bytes)
        return True

    def _release(self, hour_text: str) -> None:
        try:
            if not self.book.release():
                log.warning("lease on hour %s was no longer ours to release", hour_text)
        except JobError as exc:
            log.error("could not release the lease on hour %s (it expires by itself): %s", hour_text, exc)


def run(settings: Settings, dynamodb: Any | None = None, s3: Any | None = None) -> RunResult:
    """Whole job. Never raises for failures it understands: the result carries status, error and exit code."""
    if dynamodb is None:
        import boto3

        dynamodb = boto3.client("dynamodb")
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    result = RunResult(run_id=run_id, started_at=iso(started))
    book = Bookkeeper(
        dynamodb, settings.jobs_table, settings.runs_table, settings.job_name, run_id, settings.lease_seconds
    )
    log.info("run %s of job %r -> %s", run_id, settings.job_name, settings.output)
    try:
        book.start_run(result.started_at)
    except JobError as exc:
        result.fail(exc, None)
        result.finished_at = iso(datetime.now(UTC))
        log.error("%s", exc)
        return result
    ingest = Ingest(settings, book, make_sink(settings.output, s3), result)
    try:
        ingest.run()
        result.status = SUCCEEDED
    except JobError as exc:
        result.fail(exc, ingest.current_hour)
        log.error("%s", exc)
    except Exception as exc:  # a bug: still record the run as FAILED, with the traceback in the log
        log.exception("unexpected error")
        result.fail(JobError(f"{type(exc).__name__}: {exc}"), ingest.current_hour)
    result.finished_at = iso(datetime.now(UTC))
    try:
        book.finish_run(result)
    except JobError as exc:
        log.error("%s", exc)
        if result.status == SUCCEEDED:
            result.fail(exc, None)
    return result


def emit_summary(result: RunResult, duration_seconds: float) -> dict[str, Any]:
    """The run's summary as its one CloudWatch Embedded Metric Format line on stdout (job_runtime.metrics).

    The download parses no rows, so its row counts are 0; Files is the hour files it stored.
    """
    stack, pipeline = metrics.dimensions_from_env(PIPELINE)
    return metrics.emit_run_summary(
        {**result.summary(), "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0},
        stack=stack,
        pipeline=pipeline,
        job=METRICS_JOB,
        duration_seconds=duration_seconds,
        metrics={metrics.FILES: len(result.hours)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = parse_settings(argv)
    except BadInputError as exc:
        print(f"{JOB}: error: {exc}", file=sys.stderr)
        rejected = RunResult(run_id=None, started_at="")
        rejected.status, rejected.error = FAILED, str(exc)
        print(json.dumps(rejected.summary()), flush=True)  # no run, no metrics: the settings were refused
        return exc.exit_code
    result = run(settings)
    emit_summary(result, time.monotonic() - started)
    return result.exit_code
