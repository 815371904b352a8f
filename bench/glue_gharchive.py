"""Benchmark `gharchive`: the Glue job `gharchive_events` against DuckDB doing the same work.

GH Archive hour files (gzip JSON lines) -> 20 flat columns, Parquet by date/hour. The events come
from the generator the local run and the job tests use (`localrun.sample_data.iter_gharchive_events`);
this benchmark adds its own noise: duplicates (mostly of the previous hour, as GH Archive delivers
them at hour boundaries) and broken lines of every kind the job quarantines. How the pair is run and
compared: bench/glue_shared.py.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.glue_shared import (
    REF_LABEL,
    SEED,
    cached_input,
    duckdb_connect,
    fetch_one,
    figure_checks,
    files_note,
    input_note,
    locations,
    reason_histograms,
    reasons,
    run_job,
    run_pair,
    same_rows,
    sized,
    spark_note,
    sql_text,
)
from bench.measure import Check, Clock, Context, Report, benchmark
from localrun.sample_data import gharchive_hour_path, gharchive_line, iter_gharchive_events, write_gharchive_lines

GENERATOR_VERSION = 3  # bump when write_gharchive (or the events it draws) changes: cached inputs are regenerated
SIZES = {"full": {"events": 1_000_000, "hours": 24}, "quick": {"events": 6_000, "hours": 3}}
GH_DAY = datetime(2024, 1, 15, tzinfo=UTC)


# --- input -------------------------------------------------------------------------------------------


def _broken_line(rng: random.Random, event: dict[str, Any]) -> str:
    """One bad line (every kind is a quarantine reason of the job)."""
    kind = rng.randrange(8)
    if kind == 0:
        # Truncated inside a name or a text value: not a complete JSON object. (Cut right after a `:`,
        # Spark keeps the fields parsed so far and calls it "a field has the wrong JSON type".)
        line = gharchive_line(event)
        cut = len(line) // 2
        while not line[cut - 1].isalpha():
            cut -= 1
        return line[:cut]
    changes: dict[int, Any] = {
        1: lambda e: e.update(id=f"x{e['id']}"),  # id is not an integer
        2: lambda e: e.pop("actor"),  # actor is missing
        3: lambda e: e.update(actor="ghost"),  # a field has the wrong JSON type
        4: lambda e: e.pop("created_at"),  # created_at is missing
        5: lambda e: e.update(created_at="2024-02-30T10:00:00Z"),  # not a timestamp
        6: lambda e: e["repo"].pop("id"),  # repo.id is missing
        7: lambda e: e.update(org={"id": "n/a", "login": "nobody"}),  # org.id is not an integer
    }
    changes[kind](event)
    return gharchive_line(event)


def _noisy_lines(
    events: Iterable[dict[str, Any]], rng: random.Random, previous: list[str], sample: list[str], counts: dict[str, int]
) -> Iterator[str]:
    """One line per event: the event as GH Archive writes it, or (~0.5 %) a duplicate of an earlier line
    of this hour or of `previous` (the last hour's sample), or (~0.3 %) a broken line. Valid lines are
    kept in `sample` (up to 2,000) for the next hour's duplicates; `counts` adds what was put in."""
    recent: deque[str] = deque(maxlen=200)
    for event in events:
        draw = rng.random()
        if draw < 0.005 and (previous or recent):
            yield rng.choice(previous) if previous and draw < 0.004 else rng.choice(recent or previous)
            counts["duplicates"] += 1
            continue
        if draw < 0.008:
            yield _broken_line(rng, event)
            counts["bad_lines"] += 1
            continue
        line = gharchive_line(event)
        recent.append(line)
        if len(sample) < 2_000:
            sample.append(line)
        yield line


def write_gharchive(folder: Path, events: int, hours: int) -> dict[str, int]:
    """`events` lines over `hours` hour files of one day, streamed to disk: ~0.3 % bad lines, ~0.5 %
    duplicates (mostly events of the previous hour delivered again)."""
    counts = {"lines": events, "bad_lines": 0, "duplicates": 0}
    previous: list[str] = []
    for h in range(hours):
        hour = GH_DAY + timedelta(hours=h)
        count = events // hours + (1 if h < events % hours else 0)
        rng = random.Random(f"gharchive-noise:{SEED}:{h}")  # noqa: S311 - benchmark data
        sample: list[str] = []
        lines = _noisy_lines(iter_gharchive_events(hour, count, SEED), rng, previous, sample, counts)
        write_gharchive_lines(gharchive_hour_path(folder, hour), lines, compresslevel=6)
        previous = sample
    return counts


# --- the job ---------------------------------------------------------------------------------------


def spark_gharchive(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    argv = ["gharchive_events.py", *locations(input_dir, root, "output", "quarantine", "state")]
    return run_job(clock, "gharchive_events", argv)


# --- the DuckDB reference ----------------------------------------------------------------------------


_GH_PATHS = {  # extracted text -> JSON path (Spark reads every leaf as its JSON text)
    "id": "$.id",
    "type": "$.type",
    "created_at": "$.created_at",
    "public": "$.public",
    "actor_id": "$.actor.id",
    "actor_login": "$.actor.login",
    "repo_id": "$.repo.id",
    "repo_name": "$.repo.name",
    "org_id": "$.org.id",
    "org_login": "$.org.login",
    "action": "$.payload.action",
    "ref": "$.payload.ref",
    "ref_type": "$.payload.ref_type",
    "size": "$.payload.size",
    "distinct_size": "$.payload.distinct_size",
    "number": "$.payload.number",
    "issue_number": "$.payload.issue.number",
    "pr_number": "$.payload.pull_request.number",
    "merged": "$.payload.pull_request.merged",
    "tag": "$.payload.release.tag_name",
    "forkee": "$.payload.forkee.full_name",
}
_GH_OBJECTS = (
    "$.actor",
    "$.repo",
    "$.org",
    "$.payload",
    "$.payload.issue",
    "$.payload.pull_request",
    "$.payload.release",
    "$.payload.forkee",
)  # Spark structs: anything else fails the line
_GH_COLUMNS = (
    "event_id",
    "event_type",
    "created_at",
    "public",
    "actor_id",
    "actor_login",
    "repo_id",
    "repo_name",
    "org_id",
    "org_login",
    "payload_action",
    "payload_ref",
    "payload_ref_type",
    "push_size",
    "push_distinct_size",
    "issue_or_pr_number",
    "pr_merged",
    "release_tag",
    "forkee_full_name",
    "source_file",
)
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?"


_GH_OWN_CHECKS = [
    ("raw_id IS NULL", "id is missing"),
    ("raw_id IS NOT NULL AND event_id IS NULL", "id is not an integer"),
    ("event_type IS NULL", "type is missing"),
    ("raw_created_at IS NULL", "created_at is missing"),
    ("raw_created_at IS NOT NULL AND created_at IS NULL", "created_at is not an ISO-8601 timestamp"),
    ("NOT has_actor", "actor is missing"),
    ("has_actor AND raw_actor_id IS NULL", "actor.id is missing"),
    ("raw_actor_id IS NOT NULL AND actor_id IS NULL", "actor.id is not an integer"),
    ("NOT has_repo", "repo is missing"),
    ("has_repo AND raw_repo_id IS NULL", "repo.id is missing"),
    ("raw_repo_id IS NOT NULL AND repo_id IS NULL", "repo.id is not an integer"),
    ("raw_org_id IS NOT NULL AND org_id IS NULL", "org.id is not an integer"),
]
_HOUR_FILE = r"^(\d{4}-\d{2}-\d{2})-(\d{1,2})\.json\.gz$"


def _gh_boolean(column: str) -> str:
    return f"CASE WHEN lower(trim({column})) IN ('true', 'false') THEN lower(trim({column})) = 'true' END"


def _gh_small_int(column: str) -> str:
    return f"CASE WHEN regexp_full_match(trim({column}), '-?[0-9]{{1,9}}') THEN TRY_CAST(trim({column}) AS INTEGER) END"


def _gh_id(column: str) -> str:
    return f"CASE WHEN regexp_full_match({column}, '[0-9]{{1,18}}') THEN TRY_CAST({column} AS BIGINT) END"


def duckdb_gharchive(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    """The GH Archive flatten in SQL: lines -> 20 columns, quarantine, de-duplication; Parquet by date/hour.

    Lines are read as text (a delimiter that JSON never holds unescaped) so broken ones can be
    quarantined; JSON functions run only on lines that are JSON objects (others give NULL).
    """
    con = duckdb_connect(root)
    files = sql_text(input_dir + "/*/*.json.gz")
    paths = "[" + ", ".join(sql_text(p) for p in _GH_PATHS.values()) + "]"
    texts = ", ".join(f"v[{i + 1}] AS x_{name}" for i, name in enumerate(_GH_PATHS))
    wrong_type = " OR ".join(f"coalesce(json_type(obj, '{p}') NOT IN ('OBJECT', 'NULL'), false)" for p in _GH_OBJECTS)
    own = reasons(_GH_OWN_CHECKS)
    created = f"CASE WHEN regexp_full_match(raw_created_at, '{_ISO}') THEN try_cast(raw_created_at AS TIMESTAMPTZ) END"
    hour = f"CAST(nullif(regexp_extract(source_file, '{_HOUR_FILE}', 2), '') AS INTEGER)"
    day = f"nullif(regexp_extract(source_file, '{_HOUR_FILE}', 1), '')"
    number = ", ".join(_gh_small_int(c) for c in ("x_number", "x_issue_number", "x_pr_number"))
    with clock:
        con.execute(f"""
            CREATE TEMP TABLE lines AS
            SELECT line, regexp_extract(filename, '[^/]+$') AS source_file
            FROM read_csv({files}, columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(1), quote = '',
                          escape = '', auto_detect = false, filename = true, compression = 'gzip',
                          max_line_size = 16777216)
            WHERE trim(line) <> ''
        """)
        con.execute(f"""
            CREATE TEMP TABLE flat AS
            WITH valid AS (SELECT source_file, line, CASE WHEN json_valid(line) THEN line END AS json_line FROM lines),
            objects AS (SELECT *, CASE WHEN json_type(json_line) = 'OBJECT' THEN json_line END AS obj FROM valid),
            extracted AS (
                SELECT *, obj IS NOT NULL AS is_object, ({wrong_type}) AS wrong_type,
                       json_extract_string(obj, {paths}) AS v,
                       json_type(obj, '$.actor') = 'OBJECT' AS has_actor,
                       json_type(obj, '$.repo') = 'OBJECT' AS has_repo
                FROM objects),
            texts AS (
                SELECT source_file, NOT (is_object AND NOT wrong_type) AS corrupt, wrong_type AS partial,
                       CASE WHEN NOT is_object OR wrong_type THEN line END AS raw_line,
                       coalesce(has_actor, false) AND NOT wrong_type AS has_actor,
                       coalesce(has_repo, false) AND NOT wrong_type AS has_repo,
                       {texts}
                FROM extracted),
            trimmed AS (
                SELECT *, nullif(trim(x_id), '') AS raw_id, nullif(trim(x_created_at), '') AS raw_created_at,
                       nullif(trim(x_actor_id), '') AS raw_actor_id, nullif(trim(x_repo_id), '') AS raw_repo_id,
                       nullif(trim(x_org_id), '') AS raw_org_id, nullif(trim(x_type), '') AS event_type
                FROM texts),
            typed AS (
                SELECT *, CASE WHEN NOT corrupt THEN {_gh_id("raw_id")} END AS event_id, {created} AS created_at,
                       {_gh_id("raw_actor_id")} AS actor_id, {_gh_id("raw_repo_id")} AS repo_id,
                       {_gh_id("raw_org_id")} AS org_id, {day} AS date, {hour} AS hour
                FROM trimmed)
            SELECT *,
                CASE WHEN corrupt AND partial THEN 'unparseable line: a field has the wrong JSON type'
                     WHEN corrupt THEN 'unparseable line: not a complete JSON object'
                     ELSE {own} END AS own
            FROM typed
        """)
        # The first copy (earliest hour file) of an event_id without problems of its own is kept.
        con.execute("""
            CREATE TEMP TABLE checked AS
            WITH ranked AS (
                SELECT *,
                    arg_min(source_file, (date, hour)) FILTER (WHERE own IS NULL) OVER w AS first_file,
                    row_number() OVER (PARTITION BY event_id ORDER BY own IS NOT NULL, date, hour) AS copy
                FROM flat WINDOW w AS (PARTITION BY event_id))
            SELECT *,
                nullif(concat_ws('; ', own, CASE WHEN event_id IS NOT NULL AND first_file IS NOT NULL
                                                 AND NOT (own IS NULL AND copy = 1)
                                            THEN 'duplicate event_id (kept the first, in ' || first_file || ')' END),
                       '') AS reason
            FROM ranked
        """)
        con.execute(f"""
            COPY (
                SELECT event_id, event_type, created_at, {_gh_boolean("x_public")} AS public,
                       actor_id, x_actor_login AS actor_login, repo_id, x_repo_name AS repo_name,
                       org_id, x_org_login AS org_login, x_action AS payload_action, x_ref AS payload_ref,
                       x_ref_type AS payload_ref_type, {_gh_small_int("x_size")} AS push_size,
                       {_gh_small_int("x_distinct_size")} AS push_distinct_size,
                       coalesce({number}) AS issue_or_pr_number, {_gh_boolean("x_merged")} AS pr_merged,
                       x_tag AS release_tag, x_forkee AS forkee_full_name, source_file, date, hour
                FROM checked WHERE reason IS NULL)
            TO {sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (date, hour),
                                           ROW_GROUP_SIZE 8192, ROW_GROUPS_PER_FILE 1)
        """)
        con.execute(f"""
            COPY (SELECT reason, raw_line, raw_id AS id, event_type AS type, raw_created_at AS created_at,
                         raw_actor_id AS actor_id, x_actor_login AS actor_login, raw_repo_id AS repo_id,
                         x_repo_name AS repo_name, source_file
                  FROM checked WHERE reason IS NOT NULL)
            TO {sql_text(root + "/quarantine")} (FORMAT json, PARTITION_BY (source_file))
        """)
        rows_in, quarantined, duplicates = fetch_one(
            con,
            "SELECT count(*), count(reason), count(*) FILTER (WHERE reason LIKE '%duplicate event_id%') FROM checked",
        )
    return {
        "rows_in": rows_in,
        "rows_loaded": rows_in - quarantined,
        "rows_quarantined": quarantined,
        "duplicates": duplicates,
    }


# --- comparing what both wrote ----------------------------------------------------------------------


def verify_gharchive(job_root: Path, ref_root: Path) -> list[Check]:
    con = duckdb_connect()
    hive = "hive_partitioning = true, hive_types = {'date': 'VARCHAR', 'hour': 'INTEGER'}"

    def out(root: Path) -> str:
        return f"SELECT {', '.join(_GH_COLUMNS)}, date, hour FROM read_parquet('{root}/out/**/*.parquet', {hive})"

    def quarantine(root: Path) -> str:
        return (
            f"SELECT reason FROM read_json('{root}/quarantine/**/*.json', format = 'newline_delimited', "
            "columns = {'reason': 'VARCHAR'})"
        )

    (max_rows,) = fetch_one(
        con,
        f"""
        SELECT max(n) FROM (SELECT count(*) AS n FROM read_parquet('{job_root}/out/**/*.parquet', filename = true)
                            GROUP BY filename)
    """,
    )
    return [
        same_rows(con, "loaded rows identical (22 columns, EXCEPT ALL both ways)", out(job_root), out(ref_root)),
        reason_histograms(con, quarantine(job_root), quarantine(ref_root)),
        Check("the job's files hold at most 10,000 records", (max_rows or 0) <= 10_000, f"largest {max_rows or 0:,}"),
    ]


# --- the benchmark ------------------------------------------------------------------------------------


@benchmark("gharchive", title="GH Archive hours -> flat Parquet (gharchive_events)", order=20)
def bench_gharchive(ctx: Context) -> Report:
    sizes = sized(ctx, SIZES)
    input_dir = cached_input(ctx, "gharchive", GENERATOR_VERSION, sizes, write_gharchive)
    job, ref, job_root, ref_root = run_pair(ctx, input_dir, spark_gharchive, duckdb_gharchive)
    checks = figure_checks(job, ref, ("rows_in", "rows_loaded", "rows_quarantined", "duplicates"))
    checks += verify_gharchive(job_root, ref_root)
    return Report(
        name="gharchive",
        title=f"{sizes['events']:,} GH Archive events (gzip JSON lines) -> 20 flat columns, Parquet by date/hour",
        measurements=[job, ref],
        reference=REF_LABEL,
        rows_key="rows_in",
        rows_label="events in",
        checks=checks,
        notes=[
            input_note(input_dir),
            "output: Parquet by date/hour, at most 10,000 records per file (the job's rule; DuckDB writes 8,192-row "
            "files, its row groups being multiples of 2,048)",
            files_note(job_root / "quarantine", "job quarantine", (".json",)),
            spark_note(job),
        ],
    )
