"""Glue job `gharchive_events`: raw GH Archive hour files -> flat, de-duplicated Snappy Parquet for Athena.

Input: the hour files the download job (gharchive-ingest) stores unchanged under --input_path as
`date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz` (gzip, one JSON event per line). Driven by state markers like
the sales converter: a file is pending unless `<state>/transformed/<rel>.json` (or
`<state>/rejected/<rel>.json`) records its current size and modified time, so each run transforms
whatever is new or changed, and a run with nothing pending only lists and returns.

Output: Snappy Parquet under `<output>/date=YYYY-MM-DD/hour=H/`, at most 10,000 records per file.
A run replaces exactly the hour partitions of the files it processes (dynamic partition overwrite),
so reruns never duplicate. The columns, in this order (the catalog table and
pipelines/gharchive_queries.py rely on them):

  event_id            bigint     the event's id (a JSON string in GH Archive)
  event_type          string     PushEvent, PullRequestEvent, ...
  created_at          timestamp  UTC
  public              boolean
  actor_id            bigint
  actor_login         string     bots end in `[bot]`
  repo_id             bigint
  repo_name           string     owner/name
  org_id              bigint     null when the event has no org
  org_login           string     null when the event has no org
  payload_action      string     opened, closed, started, created, published... (Pull request, Issues,
                                 IssueComment, Watch, Release events)
  payload_ref         string     the branch or tag (Push: refs/heads/...; Create/Delete: the name)
  payload_ref_type    string     branch, tag, repository (Create/Delete)
  push_size           int        commits in the push (Push)
  push_distinct_size  int        distinct commits in the push (Push)
  issue_or_pr_number  int        payload.number, else payload.issue.number, else payload.pull_request.number
  pr_merged           boolean    payload.pull_request.merged (PullRequest)
  release_tag         string     payload.release.tag_name (Release)
  forkee_full_name    string     payload.forkee.full_name: the new fork (Fork)
  source_file         string     the hour file's name, e.g. 2024-01-01-5.json.gz
  date                string     partition: the hour file's day, YYYY-MM-DD (from its name, not created_at)
  hour                int        partition: the hour file's hour, 0-23

Everything else (urls, avatars, gravatar ids, commit lists, titles, bodies, user objects) is dropped;
the reader's explicit schema names only the fields kept, so Spark never materialises the rest.

Quarantine: JSON lines under `<quarantine>/source_file=<name>/`, replaced whenever that file is
processed again, with `reason`, `raw_line` (for lines Spark could not parse) and the event's raw
identifying fields as text (QUARANTINE_COLUMNS; null fields are left out, as Spark writes JSON).
Reasons: unparseable lines; a missing id, type, created_at, actor(.id) or repo(.id); ids that are
not integers; a created_at that is not an ISO-8601 timestamp; and duplicates: an event_id already
loaded into the same date by an earlier run (the output itself is that state: the run reads the
event ids of the date's other hour partitions before it writes, see loaded_events) is quarantined
naming the file holding it; among the files processed together, an event_id seen more than once
keeps its first occurrence (earliest hour file, then line order) and every other one is quarantined
with a reason naming the file kept. Blank lines are skipped, as Spark's JSON reader does.

Each run prints one summary with rows_in = rows_loaded + rows_quarantined as a CloudWatch Embedded
Metric Format line (glue_common.log_summary; Files: the hour files it loaded), and with --runs_table
records itself in that DynamoDB table (job_run_details: RUNNING, then SUCCEEDED/FAILED with counts).
Arguments: --input_path --output_path --quarantine_path --state_path (local paths or s3:// URIs)
[--runs_table TABLE]; on Glue, --JOB_RUN_ID names the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import glue_common
from glue_common import FileInfo
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime import metrics
from job_runtime.errors import BadInputError, classify_aws_error

JOB = "gharchive_events"
PIPELINE = "gharchive"  # pipelines/registry.py: the Pipeline dimension of its metrics
REQUIRED_ARGS = ("input_path", "output_path", "quarantine_path", "state_path")
SOURCE_FILE = "source_file"
ROW_ORDER = "_row_order"  # monotonically_increasing_id right after the scan: line order within a file
CORRUPT = "_corrupt_record"  # Spark's column for lines it cannot parse with the schema (the raw line)
REASON = "reason"
DUPLICATE = "_duplicate"
ALREADY_LOADED = "_already_loaded"  # a duplicate of an event an earlier run loaded into the same date
PARTITIONS = ("date", "hour")
RECORDS_PER_FILE = 10_000

# `date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz` relative to --input_path, H without a leading zero (GH Archive's names).
HOUR_FILE = re.compile(r"date=(\d{4}-\d{2}-\d{2})/((\d{4}-\d{2}-\d{2})-([0-9]|1[0-9]|2[0-3])\.json\.gz)")
# The same name in Spark's regex dialect: date and hour columns from `source_file`.
HOUR_NAME_SQL = r"^(\d{4}-\d{2}-\d{2})-(\d{1,2})\.json\.gz$"

INTEGER = r"^[0-9]{1,18}$"  # ids: non-negative, and always within bigint
SMALL_INTEGER = r"^-?[0-9]{1,9}$"  # payload counts and numbers: always within int
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"


def _struct(*fields: str | tuple[str, T.StructType]) -> T.StructType:
    """Strings for every leaf: any JSON value is read as its text (numbers too), typed later with checks."""
    return T.StructType(
        [T.StructField(f, T.StringType()) if isinstance(f, str) else T.StructField(f[0], f[1]) for f in fields]
    )


# Only the fields kept. Leaves are strings so a wrongly typed value (an id "abc") is a precise reason
# below, never a whole line nulled by the parser; objects stay structs (a string where an object
# belongs is an unparseable line).
READ_SCHEMA = _struct(
    "id",
    "type",
    ("actor", _struct("id", "login")),
    ("repo", _struct("id", "name")),
    ("org", _struct("id", "login")),
    (
        "payload",
        _struct(
            "action",
            "ref",
            "ref_type",
            "size",
            "distinct_size",
            "number",
            ("issue", _struct("number")),
            ("pull_request", _struct("number", "merged")),
            ("release", _struct("tag_name")),
            ("forkee", _struct("full_name")),
        ),
    ),
    "public",
    "created_at",
    CORRUPT,
)

OUTPUT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.LongType()),
        T.StructField("event_type", T.StringType()),
        T.StructField("created_at", T.TimestampType()),
        T.StructField("public", T.BooleanType()),
        T.StructField("actor_id", T.LongType()),
        T.StructField("actor_login", T.StringType()),
        T.StructField("repo_id", T.LongType()),
        T.StructField("repo_name", T.StringType()),
        T.StructField("org_id", T.LongType()),
        T.StructField("org_login", T.StringType()),
        T.StructField("payload_action", T.StringType()),
        T.StructField("payload_ref", T.StringType()),
        T.StructField("payload_ref_type", T.StringType()),
        T.StructField("push_size", T.IntegerType()),
        T.StructField("push_distinct_size", T.IntegerType()),
        T.StructField("issue_or_pr_number", T.IntegerType()),
        T.StructField("pr_merged", T.BooleanType()),
        T.StructField("release_tag", T.StringType()),
        T.StructField("forkee_full_name", T.StringType()),
        T.StructField(SOURCE_FILE, T.StringType()),
        T.StructField("date", T.StringType()),
        T.StructField("hour", T.IntegerType()),
    ]
)
OUTPUT_COLUMNS = tuple(f.name for f in OUTPUT_SCHEMA.fields)
# Quarantined rows: why, the raw line when Spark could not parse it, and the event's raw identifying fields.
QUARANTINE_COLUMNS = (
    REASON,
    "raw_line",
    "id",
    "type",
    "created_at",
    "actor_id",
    "actor_login",
    "repo_id",
    "repo_name",
    SOURCE_FILE,
)


# --- arguments -------------------------------------------------------------------------------------


def _location(value: str) -> str:
    """A location for overlap checks: URIs as given, local paths absolute; no trailing slash."""
    value = value.strip()
    if "://" not in value and not value.startswith("file:"):
        value = os.path.abspath(value)
    return value.rstrip("/")


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """The four locations, checked before Spark starts; BadInputError names what is wrong."""
    given = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    missing = [f"--{name}" for name in REQUIRED_ARGS if name not in given]
    if missing:
        raise BadInputError(
            f"missing required argument(s) {', '.join(missing)}; all of --{', --'.join(REQUIRED_ARGS)} are needed"
        )
    try:
        args = glue_common.resolve_args(argv, REQUIRED_ARGS, {})
    except SystemExit:  # argparse has printed its complaint (e.g. a name without a value)
        raise BadInputError(f"cannot parse the arguments {list(argv)}: expected --name value pairs") from None
    blank = [f"--{name}" for name in REQUIRED_ARGS if not (args.get(name) or "").strip()]
    if blank:
        raise BadInputError(f"argument(s) {', '.join(blank)} must not be empty")
    locations = {name: _location(args[name]) for name in REQUIRED_ARGS}
    for i, first in enumerate(REQUIRED_ARGS):
        for second in REQUIRED_ARGS[i + 1 :]:
            a, b = locations[first], locations[second]
            if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                raise BadInputError(
                    f"--{first} ({args[first]}) and --{second} ({args[second]}) overlap: "
                    "each must be a location of its own"
                )
    return {name: args[name].strip() for name in REQUIRED_ARGS}


# --- hour files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourFile:
    """A raw hour file to process: where it is, its name and the partition it fills."""

    rel: str  # relative to --input_path: date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz
    info: FileInfo
    name: str
    day: str
    hour: int


def parse_hour_file(rel: str, info: FileInfo) -> HourFile | str:
    """The hour file at `rel`, or why it is not one (GH Archive's naming, a real date, the folder's day)."""
    match = HOUR_FILE.fullmatch(rel)
    if not match:
        return "not a GH Archive hour file: expected date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz (H = 0..23, no leading zero)"
    folder_day, name, day, hour = match.groups()
    try:
        date.fromisoformat(day)
    except ValueError:
        return f"{day} in the file name is not a date"
    if folder_day != day:
        return f"file of {day} stored under date={folder_day}/"
    return HourFile(rel, info, name, day, int(hour))


def read_hours(spark: SparkSession, uris: Sequence[str]) -> DataFrame:
    """The raw events of hour files (Spark decodes the gzip): READ_SCHEMA + source_file + line order."""
    return (
        spark.read.schema(READ_SCHEMA)
        .options(mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT)
        .json(list(uris))
        .select(
            *READ_SCHEMA.fieldNames(),
            F.col("_metadata.file_name").alias(SOURCE_FILE),
            F.monotonically_increasing_id().alias(ROW_ORDER),  # right after the scan: follows line order
        )
    )


# --- transform -------------------------------------------------------------------------------------


def _text(column: str) -> Column:
    """Trimmed text, or null when blank."""
    trimmed = F.trim(F.col(column))
    return F.when(trimmed != "", trimmed)


def _typed(text: Column, pattern: str, sql_type: str) -> Column:
    """The value cast to sql_type when it matches the pattern (which keeps the cast in range), else null."""
    return F.when(text.rlike(pattern), text.cast(sql_type))


def _boolean(text: Column) -> Column:
    lowered = F.lower(F.trim(text))
    return F.when(lowered.isin("true", "false"), lowered == "true")


def _reasons(*checks: tuple[Column, str]) -> Column:
    """'; '-joined texts of the failed checks, or null when none failed (concat_ws skips nulls)."""
    joined = F.concat_ws("; ", *(F.when(failed, F.lit(reason)) for failed, reason in checks))
    return F.when(joined != "", joined)


def transform_flatten(raw: DataFrame) -> DataFrame:
    """Raw events (READ_SCHEMA + source_file + _row_order) -> the output columns, raw identifying texts
    (`_raw_*`), `raw_line` and `_own`: the event's own problems (null when it is fine)."""
    texts = raw.select(
        _text("id").alias("_raw_id"),
        _text("type").alias("_type"),
        _text("created_at").alias("_raw_created_at"),
        F.col("public").alias("_public"),
        F.col("actor").isNotNull().alias("_has_actor"),
        _text("actor.id").alias("_raw_actor_id"),
        F.col("actor.login").alias("_actor_login"),
        F.col("repo").isNotNull().alias("_has_repo"),
        _text("repo.id").alias("_raw_repo_id"),
        F.col("repo.name").alias("_repo_name"),
        _text("org.id").alias("_raw_org_id"),
        F.col("org.login").alias("_org_login"),
        F.col("payload.action").alias("_action"),
        F.col("payload.ref").alias("_ref"),
        F.col("payload.ref_type").alias("_ref_type"),
        F.trim("payload.size").alias("_size"),
        F.trim("payload.distinct_size").alias("_distinct_size"),
        F.trim("payload.number").alias("_number"),
        F.trim("payload.issue.number").alias("_issue_number"),
        F.trim("payload.pull_request.number").alias("_pr_number"),
        F.col("payload.pull_request.merged").alias("_merged"),
        F.col("payload.release.tag_name").alias("_tag"),
        F.col("payload.forkee.full_name").alias("_forkee"),
        F.col(CORRUPT).alias("raw_line"),
        # Did the parser get anything out of a corrupt line (a field of the wrong JSON type) or nothing?
        F.when(
            F.col(CORRUPT).isNotNull(),
            F.coalesce(
                *(F.col(c).cast("string") for c in ("id", "type", "created_at", "actor", "repo", "payload"))
            ).isNotNull(),
        ).alias("_partial"),
        SOURCE_FILE,
        ROW_ORDER,
    )
    day = F.regexp_extract(F.col(SOURCE_FILE), HOUR_NAME_SQL, 1)
    hour = F.regexp_extract(F.col(SOURCE_FILE), HOUR_NAME_SQL, 2)
    corrupt = F.col("raw_line").isNotNull()
    typed = texts.select(
        "*",
        F.when(~corrupt, _typed(F.col("_raw_id"), INTEGER, "bigint")).alias("event_id"),
        F.when(F.col("_raw_created_at").rlike(ISO_TIMESTAMP), F.expr("try_cast(_raw_created_at AS TIMESTAMP)")).alias(
            "_created_at"
        ),
        _typed(F.col("_raw_actor_id"), INTEGER, "bigint").alias("_actor_id"),
        _typed(F.col("_raw_repo_id"), INTEGER, "bigint").alias("_repo_id"),
        _typed(F.col("_raw_org_id"), INTEGER, "bigint").alias("_org_id"),
        F.when(day != "", day).alias("date"),
        F.when(hour != "", hour.cast("int")).alias("hour"),
    )
    raw_id, raw_created = F.col("_raw_id"), F.col("_raw_created_at")
    own = F.when(
        corrupt,
        F.when(F.col("_partial"), F.lit("unparseable line: a field has the wrong JSON type")).otherwise(
            F.lit("unparseable line: not a complete JSON object")
        ),
    ).otherwise(
        _reasons(
            (raw_id.isNull(), "id is missing"),
            (raw_id.isNotNull() & F.col("event_id").isNull(), "id is not an integer"),
            (F.col("_type").isNull(), "type is missing"),
            (raw_created.isNull(), "created_at is missing"),
            (raw_created.isNotNull() & F.col("_created_at").isNull(), "created_at is not an ISO-8601 timestamp"),
            (~F.col("_has_actor"), "actor is missing"),
            (F.col("_has_actor") & F.col("_raw_actor_id").isNull(), "actor.id is missing"),
            (F.col("_raw_actor_id").isNotNull() & F.col("_actor_id").isNull(), "actor.id is not an integer"),
            (~F.col("_has_repo"), "repo is missing"),
            (F.col("_has_repo") & F.col("_raw_repo_id").isNull(), "repo.id is missing"),
            (F.col("_raw_repo_id").isNotNull() & F.col("_repo_id").isNull(), "repo.id is not an integer"),
            (F.col("_raw_org_id").isNotNull() & F.col("_org_id").isNull(), "org.id is not an integer"),
        )
    )
    return typed.select(
        "event_id",
        F.col("_type").alias("event_type"),
        F.col("_created_at").alias("created_at"),
        _boolean(F.col("_public")).alias("public"),
        F.col("_actor_id").alias("actor_id"),
        F.col("_actor_login").alias("actor_login"),
        F.col("_repo_id").alias("repo_id"),
        F.col("_repo_name").alias("repo_name"),
        F.col("_org_id").alias("org_id"),
        F.col("_org_login").alias("org_login"),
        F.col("_action").alias("payload_action"),
        F.col("_ref").alias("payload_ref"),
        F.col("_ref_type").alias("payload_ref_type"),
        _typed(F.col("_size"), SMALL_INTEGER, "int").alias("push_size"),
        _typed(F.col("_distinct_size"), SMALL_INTEGER, "int").alias("push_distinct_size"),
        F.coalesce(*(_typed(F.col(c), SMALL_INTEGER, "int") for c in ("_number", "_issue_number", "_pr_number"))).alias(
            "issue_or_pr_number"
        ),
        _boolean(F.col("_merged")).alias("pr_merged"),
        F.col("_tag").alias("release_tag"),
        F.col("_forkee").alias("forkee_full_name"),
        SOURCE_FILE,
        "date",
        "hour",
        ROW_ORDER,
        "raw_line",
        "_raw_id",
        "_raw_created_at",
        "_raw_actor_id",
        "_raw_repo_id",
        own.alias("_own"),
    )


def transform_dedupe(flat: DataFrame, loaded: DataFrame | None = None) -> DataFrame:
    """Flattened events + `reason` (null for rows to load), `_duplicate` and `_already_loaded`.

    `loaded` holds the events earlier runs loaded into the same dates (`event_id`, `date`,
    `source_file`; see `loaded_events`): an event whose id is among them is a duplicate naming the
    file that holds it, so an id is loaded once per date whichever run sees it first. Among the
    other events of one event_id without problems of their own, the first (earliest hour file, then
    line order) is kept; every other occurrence is a duplicate naming the file kept. One window over
    event_id: one shuffle. Rows without an event_id get a key of their own, so they spread over the
    tasks instead of piling up in one.
    """
    if loaded is None:
        with_loaded = flat.withColumn("_loaded_in", F.lit(None).cast("string"))
    else:
        # One row per (event_id, date) even if an older run loaded an id twice: the join never multiplies rows.
        earlier = loaded.groupBy("event_id", "date").agg(F.min(SOURCE_FILE).alias("_loaded_in"))
        with_loaded = flat.join(earlier, ["event_id", "date"], "left")
    already = F.col("event_id").isNotNull() & F.col("_loaded_in").isNotNull()
    key = F.coalesce(F.col("event_id"), -1 - F.col(ROW_ORDER))
    first = F.min(F.when(F.col("_own").isNull() & ~already, F.struct("date", "hour", ROW_ORDER, SOURCE_FILE))).over(
        Window.partitionBy(key)
    )
    with_first = with_loaded.withColumn("_first", first)
    duplicate = (
        F.col("event_id").isNotNull() & F.col("_first").isNotNull() & (F.col(f"_first.{ROW_ORDER}") != F.col(ROW_ORDER))
    )
    duplicate_reason = F.when(
        duplicate,
        F.concat(F.lit("duplicate event_id (kept the first, in "), F.col(f"_first.{SOURCE_FILE}"), F.lit(")")),
    )
    already_reason = F.when(
        already,
        F.concat(F.lit("duplicate event_id (loaded by an earlier run, in "), F.col("_loaded_in"), F.lit(")")),
    )
    reason = F.concat_ws("; ", F.col("_own"), already_reason, duplicate_reason)
    return with_first.select(
        *flat.columns,
        F.when(reason != "", reason).alias(REASON),
        (F.coalesce(duplicate, F.lit(False)) | already).alias(DUPLICATE),
        already.alias(ALREADY_LOADED),
    ).drop("_own")


def transform_validate(raw: DataFrame, loaded: DataFrame | None = None) -> DataFrame:
    """Raw events -> every row flattened, with `reason` (null when it is loaded), `_duplicate` and
    `_already_loaded` (`loaded`: see transform_dedupe)."""
    return transform_dedupe(transform_flatten(raw), loaded)


def split_validated(validated: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(rows to load: OUTPUT_COLUMNS; quarantined rows: QUARANTINE_COLUMNS)."""
    clean = validated.where(F.col(REASON).isNull()).select(*OUTPUT_COLUMNS)
    quarantine = validated.where(F.col(REASON).isNotNull()).select(
        REASON,
        "raw_line",
        F.col("_raw_id").alias("id"),
        F.col("event_type").alias("type"),
        F.col("_raw_created_at").alias("created_at"),
        F.col("_raw_actor_id").alias("actor_id"),
        "actor_login",
        F.col("_raw_repo_id").alias("repo_id"),
        "repo_name",
        SOURCE_FILE,
    )
    return clean, quarantine.select(*QUARANTINE_COLUMNS)


def transform_events(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Pure transform: raw events (see read_hours) -> (events to load, quarantined rows with reasons)."""
    return split_validated(transform_validate(raw))


# --- the job ---------------------------------------------------------------------------------------

SUCCEEDED, FAILED, RUNNING = "SUCCEEDED", "FAILED", "RUNNING"
# The summary's counts kept in the run's job_run_details row.
RUN_FIGURES = ("files", "rows_in", "rows_loaded", "rows_quarantined", "duplicates", "already_loaded")
MAX_ERROR_CHARS = 4000  # DynamoDB items hold at most 400 KB; a Spark error can be longer than that


class RunFailed(Exception):
    """A run that wrote what it could and then failed: the error to raise and the summary to record."""

    def __init__(self, error: BadInputError, summary: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error, self.summary = error, summary


@dataclass(frozen=True)
class Counts:
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    already_loaded: int = 0  # of the duplicates: ids an earlier run loaded into the same date


def loaded_events(spark: SparkSession, output: str, files: Sequence[HourFile]) -> DataFrame | None:
    """`event_id`, `date`, `source_file` of what earlier runs loaded into the dates of `files`, except the
    hours these files replace (a rerun of an hour must not find its own old rows); None when nothing is.

    Only the dates touched are listed and only two columns read (Parquet column pruning), so the cost
    follows the size of those days, not of the whole history.
    """
    replaced = {(f.day, f.hour) for f in files}
    root = glue_common.qualify(spark, output).rstrip("/")
    found: list[str] = []
    for day in sorted({f.day for f in files}):
        day_dir = f"{root}/{glue_common.partition_dir(spark, 'date', day)}"
        for info in glue_common.list_files(spark, day_dir, ".parquet"):
            hour = re.search(r"/hour=(\d+)/", info.uri)
            if hour and (day, int(hour.group(1))) not in replaced:
                found.append(info.uri)
    if not found:
        return None
    # basePath: `date` comes back as the partition column; the schema keeps it a string ("2024-01-01").
    return (
        spark.read.schema("event_id bigint, source_file string, date string, hour int")
        .option("basePath", root)
        .parquet(*found)
        .select("event_id", SOURCE_FILE, "date")
    )


def _unreadable(error: Exception, files: Sequence[HourFile]) -> BadInputError | None:
    """BadInputError for a truncated or non-gzip file (Spark's error does not name it), else None."""
    text = str(error)
    if not any(s in text for s in ("java.io.EOFException", "java.util.zip.ZipException", "Not in GZIP format")):
        return None
    cause = next((line.strip() for line in text.splitlines() if "Exception:" in line), "")
    names = ", ".join(f.rel for f in files)
    return BadInputError(f"a pending hour file is not complete gzip ({cause}); one of: {names}")


def _write(spark: SparkSession, validated: DataFrame, files: Sequence[HourFile], paths: dict[str, str]) -> dict:
    """Counts per file from one pass over the cached rows, then both writes; {source_file: Counts}."""
    try:
        counted = (
            validated.groupBy(SOURCE_FILE)
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.count(REASON).alias("quarantined"),
                F.count(F.when(F.col(DUPLICATE), 1)).alias("duplicates"),
                F.count(F.when(F.col(ALREADY_LOADED), 1)).alias("already_loaded"),
            )
            .collect()
        )
    except Exception as error:  # Py4JJavaError: a task failed reading a file
        unreadable = _unreadable(error, files)
        if unreadable is None:
            raise
        raise unreadable from None
    counts = {
        r[SOURCE_FILE]: Counts(r["rows"] - r["quarantined"], r["quarantined"], r["duplicates"], r["already_loaded"])
        for r in counted
    }
    output, quarantine = paths["output_path"].rstrip("/"), paths["quarantine_path"].rstrip("/")
    for f in files:
        got = counts.get(f.name, Counts())
        # A changed file may now have no rows (or no bad rows) at all: overwriting writes nothing for it,
        # so its old partition goes here. Partitions with rows are replaced by the writes below.
        if not got.loaded:
            day, hour = (
                glue_common.partition_dir(spark, "date", f.day),
                glue_common.partition_dir(spark, "hour", str(f.hour)),
            )
            glue_common.delete_path(spark, f"{output}/{day}/{hour}")
        if not got.quarantined:
            glue_common.delete_path(spark, f"{quarantine}/{glue_common.partition_dir(spark, SOURCE_FILE, f.name)}")
    clean, bad = split_validated(validated)
    if any(c.loaded for c in counts.values()):
        # One task per hour (repartition by the partition columns) writes files of 10,000 rows, the last
        # one smaller; rows sorted by event_id (~ time order) give tight Parquet statistics.
        (
            clean.repartition(*PARTITIONS)
            .sortWithinPartitions(*PARTITIONS, "event_id")
            .write.mode("overwrite")  # dynamic partition overwrite (glue_common.configure): these hours only
            .option("maxRecordsPerFile", RECORDS_PER_FILE)
            .partitionBy(*PARTITIONS)
            .parquet(output)
        )
    if any(c.quarantined for c in counts.values()):
        bad.repartition(SOURCE_FILE).write.mode("overwrite").partitionBy(SOURCE_FILE).json(quarantine)
    return counts


def process(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Every pending hour file -> output, quarantine and markers; returns the logged summary."""
    # TIMESTAMP_MICROS (UTC-adjusted) rather than Spark's legacy INT96: what Athena engine 3 and pyarrow expect.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    root = glue_common.qualify(spark, args["input_path"])
    state = args["state_path"].rstrip("/")
    transformed = glue_common.read_markers(spark, f"{state}/transformed", key="path")
    rejected_before = glue_common.read_markers(spark, f"{state}/rejected", key="path")

    pending: list[HourFile] = []
    rejected: list[str] = []
    for info in glue_common.list_files(spark, root, ".json.gz"):
        rel = glue_common.relative(root, info.uri)
        if glue_common.is_current(transformed.get(rel), info) or glue_common.is_current(rejected_before.get(rel), info):
            continue
        parsed = parse_hour_file(rel, info)
        if isinstance(parsed, str):
            marker = {"path": rel, "source": info.uri, "size": info.size, "modified_ms": info.modified_ms}
            glue_common.write_text(spark, f"{state}/rejected/{rel}.json", json.dumps({**marker, "reason": parsed}))
            rejected.append(f"{rel}: {parsed}")
        else:
            pending.append(parsed)

    counts: dict[str, Counts] = {}
    if pending:
        # Cached: the counts and both writes reuse one read, parse and de-duplication of the files. The ids
        # loaded before are read before this run's write replaces any partition.
        earlier = loaded_events(spark, args["output_path"], pending)
        validated = transform_validate(read_hours(spark, [f.info.uri for f in pending]), earlier).persist()
        try:
            counts = _write(spark, validated, pending, args)
        finally:
            validated.unpersist()
        for f in pending:  # only now is every file's output committed
            got = counts.get(f.name, Counts())
            marker = {
                "path": f.rel,
                "source": f.info.uri,
                "source_file": f.name,
                "date": f.day,
                "hour": f.hour,
                "size": f.info.size,
                "modified_ms": f.info.modified_ms,
                "rows_in": got.loaded + got.quarantined,
                "rows_loaded": got.loaded,
                "rows_quarantined": got.quarantined,
                "duplicates": got.duplicates,
                "already_loaded": got.already_loaded,
            }
            glue_common.write_text(spark, f"{state}/transformed/{f.rel}.json", json.dumps(marker, sort_keys=True))
            glue_common.delete_path(spark, f"{state}/rejected/{f.rel}.json")

    loaded = sum(c.loaded for c in counts.values())
    quarantined = sum(c.quarantined for c in counts.values())
    summary = glue_common.log_summary(
        JOB,
        PIPELINE,
        # Files: the hour files this run loaded (0 when none was new), what the freshness alarm watches.
        {metrics.FILES: len(pending), metrics.EVENTS: loaded},
        files=len(pending),
        source_files=[f.name for f in pending],
        rows_in=loaded + quarantined,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        duplicates=sum(c.duplicates for c in counts.values()),
        already_loaded=sum(c.already_loaded for c in counts.values()),
        rejected=rejected,
    )
    if rejected:
        raise RunFailed(BadInputError(f"{len(rejected)} file(s) rejected: " + "; ".join(rejected)), summary)
    return summary


# --- the run log ------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RunLog:
    """This run's row in DynamoDB `job_run_details` (hash `job_name`, range `run_id`), as the download
    job keeps its own: RUNNING when the run starts, then SUCCEEDED or FAILED with the counts and error."""

    def __init__(self, client: Any, table: str, run_id: str, clock: Callable[[], datetime] = _utc_now) -> None:
        self.client, self.table, self.run_id, self.clock = client, table, run_id, clock
        self.started_at = ""

    def _put(self, item: dict[str, Any], **condition: Any) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except (BotoCoreError, ClientError) as error:
            raise classify_aws_error(error, f"recording run {self.run_id} in {self.table}") from error

    def _key(self) -> dict[str, Any]:
        return {"job_name": {"S": JOB}, "run_id": {"S": self.run_id}}

    def start(self) -> None:
        self.started_at = _iso(self.clock())
        # A run id is recorded once: a second start of the same id would hide the first run's outcome.
        self._put(
            {**self._key(), "status": {"S": RUNNING}, "started_at": {"S": self.started_at}},
            ConditionExpression="attribute_not_exists(run_id)",
        )

    def finish(self, status: str, summary: dict[str, Any] | None, error: str | None = None) -> None:
        item: dict[str, Any] = {
            **self._key(),
            "status": {"S": status},
            "started_at": {"S": self.started_at},
            "finished_at": {"S": _iso(self.clock())},
        }
        for name in RUN_FIGURES:
            if summary is not None and name in summary:
                item[name] = {"N": str(int(summary[name]))}
        if summary is not None and summary.get("source_files"):
            item["source_files"] = {"L": [{"S": name} for name in summary["source_files"]]}
        if error is not None:
            item["error"] = {"S": error[:MAX_ERROR_CHARS]}
        self._put(item)


def new_run_id(argv: Sequence[str], now: datetime) -> str:
    """Glue's own run id (`--JOB_RUN_ID jr_...`, which Glue passes to every script), else a sortable one."""
    given = list(argv)
    if "--JOB_RUN_ID" in given[:-1]:
        return given[given.index("--JOB_RUN_ID") + 1]
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def runs_table(argv: Sequence[str]) -> str | None:
    """The optional `--runs_table` argument (the pipeline always passes it; local runs may go without)."""
    given = list(argv)
    for i, arg in enumerate(given):
        if arg == "--runs_table" and i + 1 < len(given) and given[i + 1].strip():
            return given[i + 1].strip()
        if arg.startswith("--runs_table=") and arg.split("=", 1)[1].strip():
            return arg.split("=", 1)[1].strip()
    return None


def main(argv: Sequence[str] | None = None, dynamodb: Any | None = None) -> dict[str, Any]:
    """Entry point; bad arguments or rejected files raise BadInputError (see glue_common.run).

    With `--runs_table`, the run is recorded in that DynamoDB table (see RunLog), failures included.
    """
    glue_common.setup_logging()
    # Glue's getResolvedOptions skips argv[0], so on Glue this must be the whole sys.argv.
    argv = list(sys.argv if argv is None else argv)
    table = runs_table(argv)
    args = parse_args([a for i, a in enumerate(argv) if not _is_extra(argv, i)])
    glue_common.start_run(argv)
    log = None
    if table is not None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        log = RunLog(dynamodb, table, new_run_id(argv, _utc_now()))
        log.start()
    try:
        spark = glue_common.spark_session(JOB)
        summary = process(spark, args)
    except RunFailed as failed:
        if log is not None:
            log.finish(FAILED, failed.summary, str(failed.error))
        raise failed.error from None
    except Exception as error:
        if log is not None:
            log.finish(FAILED, None, f"{type(error).__name__}: {error}")
        raise
    if log is not None:
        log.finish(SUCCEEDED, summary)
    return summary


def _is_extra(argv: Sequence[str], i: int) -> bool:
    """Arguments main() reads itself (the run log's), left out of the four locations' parsing."""
    extra = ("--runs_table", "--JOB_RUN_ID")
    return argv[i] in extra or argv[i].startswith(tuple(f"{e}=" for e in extra)) or (i > 0 and argv[i - 1] in extra)


if __name__ == "__main__":
    sys.exit(glue_common.run(main))
