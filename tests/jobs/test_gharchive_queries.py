"""The Athena named queries (pipelines/gharchive_queries.py): valid Athena SQL, and the right answers.

Each query is parsed as Athena (Trino) SQL by sqlglot, transpiled to Spark SQL and run on local
Spark over the real output of the `gharchive_events` job for generated hours, read through the
stack's catalog table definition (pipelines.gharchive.events_table: its columns, partition keys and
location template), not through the schema Spark would infer from the files. Expected rows are
computed in plain Python from the generated events themselves (not from the job's output).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import datetime
from pathlib import Path

import gharchive_events as job
import pytest
import sqlglot

from components.warehouse import CatalogTableArgs, projection_parameters
from job_runtime.contracts import GHARCHIVE_EVENT_COLUMNS, GHARCHIVE_EVENT_PARTITIONS
from localrun.sample_data import gharchive_events, write_gharchive_hour
from pipelines.gharchive import events_table
from pipelines.gharchive_queries import NamedQuery, named_queries, table_reference

REPO = Path(__file__).resolve().parents[2]
TABLE = "gharchive_events"
# (hour, count, seed): two days, hours at both ends of each, with duplicates and bad lines in every file.
HOURS = [
    (datetime(2024, 3, 1, 0), 500, 1),
    (datetime(2024, 3, 1, 23), 400, 2),
    (datetime(2024, 3, 2, 9), 600, 3),
    (datetime(2024, 3, 2, 10), 300, 4),
]


def table_ddl(table: CatalogTableArgs) -> str:
    """The catalog table's columns then its partition keys, as a Spark schema (Hive types are Spark DDL)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in (*table.columns, *table.partition_keys))


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    """The job's output folder for the generated hours (two days, duplicates and bad lines in every file)."""
    root = tmp_path_factory.mktemp("gharchive-queries")
    for hour, count, seed in HOURS:
        write_gharchive_hour(root / "in", hour, count, seed, duplicates=5, bad_lines=2)
    summary = job.main(["gharchive_events.py", "--input_path", str(root / "in"), "--output_path", str(root / "out"),
                        "--quarantine_path", str(root / "q"), "--state_path", str(root / "state")])  # fmt: skip
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (1800, 28)
    return root / "out"


@pytest.fixture(scope="module")
def events() -> list[dict]:
    """Every generated event with the day of its hour file (`_date`): what the table must hold."""
    return [
        {**e, "_date": f"{hour:%Y-%m-%d}"} for hour, count, seed in HOURS for e in gharchive_events(hour, count, seed)
    ]


@pytest.fixture(scope="module")
def table(spark, output: Path) -> str:
    """The job's output as a temporary view named and typed like the stack's Athena table: the catalog
    table's schema, over exactly the partition folders its projection template addresses."""
    definition = events_table("db", f"{output.as_uri()}/")
    assert definition.name == TABLE
    template = projection_parameters(str(definition.location), definition.partition_keys, definition.projection)[
        "storage.location.template"
    ]
    folders = [template.replace("${date}", f"{h:%Y-%m-%d}").replace("${hour}", str(h.hour)) for h, _, _ in HOURS]
    frame = spark.read.schema(table_ddl(definition)).option("basePath", str(definition.location)).parquet(*folders)
    frame.createOrReplaceTempView(TABLE)
    return TABLE


def test_the_jobs_output_is_the_catalog_tables_contract(spark, output: Path) -> None:
    """Column names, order and types of every Parquet file equal the contract the catalog table
    declares, and the partition folders are exactly those its projection addresses (date=YYYY-MM-DD,
    hour=H without a leading zero)."""
    definition = events_table("db", f"{output.as_uri()}/")
    assert (definition.columns, definition.partition_keys) == (GHARCHIVE_EVENT_COLUMNS, GHARCHIVE_EVENT_PARTITIONS)
    folders = sorted(str(p.relative_to(output)) for p in output.glob("*/*") if p.is_dir())
    assert folders == sorted(f"date={h:%Y-%m-%d}/hour={h.hour}" for h, _, _ in HOURS)
    for folder in folders:
        schema = spark.read.parquet(str(output / folder)).schema  # a leaf folder: the files' own columns
        assert [(f.name, f.dataType.simpleString()) for f in schema.fields] == list(GHARCHIVE_EVENT_COLUMNS), folder
    # The job's declared schema, partition columns last, is the same contract.
    assert [(f.name, f.dataType.simpleString()) for f in job.OUTPUT_SCHEMA.fields] == [
        *GHARCHIVE_EVENT_COLUMNS,
        *GHARCHIVE_EVENT_PARTITIONS,
    ]


def run_query(spark, sql: str) -> list[tuple]:
    [spark_sql] = sqlglot.transpile(sql, read="athena", write="spark")
    return [tuple(r) for r in spark.sql(spark_sql).collect()]


# --- expected answers, computed independently --------------------------------------------------------


def events_per_type_per_day(events: list[dict]) -> list[tuple]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in events:
        groups[(e["_date"], e["type"])].append(e)
    rows = [
        (day, kind, len(g), len({e["actor"]["id"] for e in g}), len({e["repo"]["id"] for e in g}))
        for (day, kind), g in groups.items()
    ]
    return sorted(rows, key=lambda r: (r[0], -r[2], r[1]))


def top_repositories(events: list[dict]) -> list[tuple]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        groups[e["repo"]["name"]].append(e)
    rows = [(name, len(g), len({e["actor"]["id"] for e in g})) for name, g in groups.items()]
    return sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))[:20]


def pushes_per_repository_per_day(events: list[dict]) -> list[tuple]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in events:
        if e["type"] == "PushEvent":
            groups[(e["_date"], e["repo"]["name"])].append(e)
    by_day: dict[str, list[tuple]] = defaultdict(list)
    for (day, name), g in groups.items():
        commits = sum(e["payload"]["size"] for e in g)
        distinct = sum(e["payload"]["distinct_size"] for e in g)
        by_day[day].append((name, len(g), commits, distinct, len({e["actor"]["id"] for e in g})))
    rows = []
    for day in sorted(by_day):
        ranked = sorted(by_day[day], key=lambda r: (-r[2], -r[1], r[0]))[:20]
        rows += [(day, rank, *r) for rank, r in enumerate(ranked, start=1)]
    return rows


def top_human_actors(events: list[dict]) -> list[tuple]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if not e["actor"]["login"].endswith("[bot]"):
            groups[e["actor"]["login"]].append(e)
    rows = [
        (
            login,
            len(g),
            len({e["repo"]["id"] for e in g}),
            sum(e["type"] == "PushEvent" for e in g),
            sum(e["type"] == "PullRequestEvent" and e["payload"]["action"] == "opened" for e in g),
        )
        for login, g in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:20]


def pull_requests_per_repository(events: list[dict]) -> list[tuple]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if e["type"] == "PullRequestEvent":
            p = e["payload"]
            c = counts[e["repo"]["name"]]
            c["opened"] += p["action"] == "opened"
            c["merged"] += p["action"] == "closed" and p["pull_request"]["merged"]
            c["closed_unmerged"] += p["action"] == "closed" and not p["pull_request"]["merged"]
    rows = [(name, c["opened"], c["merged"], c["closed_unmerged"]) for name, c in counts.items()]
    return sorted(rows, key=lambda r: (-r[2], -r[1], r[0]))[:20]


EXPECTED: dict[str, Callable[[list[dict]], list[tuple]]] = {
    "events-per-type-per-day": events_per_type_per_day,
    "top-repositories": top_repositories,
    "pushes-per-repository-per-day": pushes_per_repository_per_day,
    "top-human-actors": top_human_actors,
    "pull-requests-per-repository": pull_requests_per_repository,
}


# --- the tests ----------------------------------------------------------------------------------------


def test_queries_are_named_and_described() -> None:
    queries = named_queries(TABLE)
    assert list(queries) == list(EXPECTED)
    assert 3 <= len(queries) <= 5
    for name, query in queries.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name) and len(name) <= 40
        assert isinstance(query, NamedQuery) and query.description.strip() and query.sql.strip()
        assert len(query.description) <= 1024  # Athena's limit for a named query description
        assert f"FROM {TABLE}\n" in query.sql
    with pytest.raises(FrozenInstanceError):
        queries["top-repositories"].sql = "SELECT 1"  # type: ignore[misc]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_query_parses_as_athena_sql(name: str) -> None:
    sql = named_queries(TABLE)[name].sql
    parsed = sqlglot.parse_one(sql, read="athena")
    assert isinstance(parsed, sqlglot.exp.Select) or parsed.find(sqlglot.exp.Select) is not None
    assert {t.name for t in parsed.find_all(sqlglot.exp.Table)} - {"daily", "ranked"} == {TABLE}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_query_answers_exactly_on_the_jobs_output(spark, table: str, events: list[dict], name: str) -> None:
    got = run_query(spark, named_queries(table)[name].sql)
    want = EXPECTED[name](events)
    assert got == want
    assert got  # the data exercises every query


def test_the_data_has_clear_winners_and_a_long_tail(spark, table: str, events: list[dict]) -> None:
    """The ranking queries cut something off and bots are really left out (not a vacuous pass)."""
    assert len({e["repo"]["name"] for e in events}) > 20
    assert len({e["actor"]["login"] for e in events if not e["actor"]["login"].endswith("[bot]")}) > 20
    assert any(e["actor"]["login"].endswith("[bot]") for e in events)
    humans = run_query(spark, named_queries(table)["top-human-actors"].sql)
    assert len(humans) == 20 and not any(login.endswith("[bot]") for login, *_ in humans)
    top = run_query(spark, named_queries(table)["top-repositories"].sql)
    assert top[0][0] == "kubernetes/kubernetes"


def test_table_reference_quotes_what_athena_needs_quoted() -> None:
    assert table_reference("gharchive_events") == "gharchive_events"
    assert table_reference("analytics.gharchive_events") == "analytics.gharchive_events"
    assert table_reference("dataplatform-dev.gharchive_events") == '"dataplatform-dev".gharchive_events'
    sql = named_queries("dataplatform-dev.gharchive_events")["top-repositories"].sql
    table = sqlglot.parse_one(sql, read="athena").find(sqlglot.exp.Table)
    assert table is not None and (table.db, table.name) == ("dataplatform-dev", "gharchive_events")
    for bad in ("", "a.b.c", "events; DROP TABLE x", 'x"y', "db."):
        with pytest.raises(ValueError, match=r"must be `table` or `database\.table`"):
            table_reference(bad)


def test_module_does_not_import_pulumi() -> None:
    code = "import sys, pipelines.gharchive_queries; assert 'pulumi' not in sys.modules, 'pulumi imported'"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
