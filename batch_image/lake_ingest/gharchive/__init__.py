"""`gharchive-ingest`: copy GH Archive's hourly files into the lake, unchanged, one hour at a time.

Every hour after the job's bookmark is downloaded from `<base-url>/YYYY-MM-DD-H.json.gz` (GH Archive's
naming: hour 0..23 without a leading zero) and stored as `<output>date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz`.
State lives in two DynamoDB tables:

* jobs (hash key `job_name`): `baseline_day` = the day whose hour 0 is fetched first (YYYY-MM-DD),
  `bookmark` = the last stored hour as `YYYY-MM-DDTHH`, `bookmark_baseline` = the baseline_day the
  bookmark counts from, `updated_at`, and
  while a run works on an hour a lease (`lease_owner` = run id, `lease_hour`, `lease_expires` epoch s).
  Each hour is CLAIMED with a conditional write (bookmark unchanged since this run read it, no live lease
  of another run), downloaded and stored, then ADVANCED with a conditional write (this run still owns the
  lease, bookmark unchanged) that also drops the lease. Two concurrent runs therefore never store the
  same hour twice; the loser stops cleanly. A lease older than `--lease-seconds` (a crashed run) is
  taken over.
* job_run_details (hash `job_name`, range `run_id`): one row per run, RUNNING at start, then SUCCEEDED
  or FAILED with the hours fetched, bytes, why it stopped and the error.

The baseline lives in the jobs item: `--baseline-day` only seeds `baseline_day` when the item has none
(the first run), so operators read and edit it where the bookmark is. Without a bookmark the first hour
is hour 0 of `baseline_day`; with one, the hour after it. Re-baselining is one edit of the item: when
`baseline_day` differs from `bookmark_baseline`, the next run starts again at hour 0 of the new day.
An hour that is not published yet (404) or not over yet (`--now`) ends the run cleanly without
advancing. 5xx, 408/429, timeouts and short reads are retried with exponential backoff and jitter,
each retry restarting the hour's download from scratch; when the attempts run out the run fails with
exit 4, which the Batch retry strategy retries. Flags fall back to GHARCHIVE_* environment variables
so the Batch job definition needs no command-line arguments.

The package: `hours` (naming, which hours are pending), `settings` (flags and environment), `download`
(checked, retried GET), `sinks` (S3 or local), `bookkeeper` (DynamoDB bookmark, lease and run log),
`cli` (the run and the console script `gharchive-ingest`; also `python -m lake_ingest.gharchive`).
"""

from lake_ingest.gharchive.bookkeeper import Bookkeeper, LeaseConflict, RunResult
from lake_ingest.gharchive.cli import Ingest, main, run
from lake_ingest.gharchive.download import CheckedStream, NotPublished, fetch_once, fetch_with_retries
from lake_ingest.gharchive.hours import (
    JOB,
    archive_name,
    backoff_delay,
    default_baseline,
    first_hour,
    format_hour,
    new_run_id,
    parse_hour,
    pending_hours,
    relative_key,
)
from lake_ingest.gharchive.settings import Settings, parse_settings
from lake_ingest.gharchive.sinks import LocalSink, S3Sink, Sink, make_sink

__all__ = [
    "JOB",
    "Bookkeeper",
    "CheckedStream",
    "Ingest",
    "LeaseConflict",
    "LocalSink",
    "NotPublished",
    "RunResult",
    "S3Sink",
    "Settings",
    "Sink",
    "archive_name",
    "backoff_delay",
    "default_baseline",
    "fetch_once",
    "fetch_with_retries",
    "first_hour",
    "format_hour",
    "main",
    "make_sink",
    "new_run_id",
    "parse_hour",
    "parse_settings",
    "pending_hours",
    "relative_key",
    "run",
]
