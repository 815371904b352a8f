"""The `gharchive_events` Glue job on pyspark 3.5 (Glue 5.0's engine): flattening, quarantine, dedupe, reruns.

Hand-written events have literal expected rows; generated hours (localrun.sample_data) are checked
against an independent plain-Python reading of the very files written (gzip + json + a flatten
written here), never against the code under test.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import gharchive_events as job
import glue_common
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime.errors import BadInputError
from localrun.sample_data import (
    gharchive_events,
    gharchive_hour_path,
    gharchive_line,
    write_gharchive_hour,
    write_gharchive_lines,
)
from tests.jobs.emf import one_run_summary

OUTPUT_DDL = (
    "event_id bigint, event_type string, created_at timestamp, public boolean, actor_id bigint, actor_login string, "
    "repo_id bigint, repo_name string, org_id bigint, org_login string, payload_action string, payload_ref string, "
    "payload_ref_type string, push_size int, push_distinct_size int, issue_or_pr_number int, pr_merged boolean, "
    "release_tag string, forkee_full_name string, source_file string, date string, hour int"
)
OUTPUT_COLUMNS = [c.split()[0] for c in OUTPUT_DDL.split(", ")]
# What the Parquet files hold (the partition columns live in the paths only).
PARQUET_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("event_type", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("public", pa.bool_()),
        ("actor_id", pa.int64()),
        ("actor_login", pa.string()),
        ("repo_id", pa.int64()),
        ("repo_name", pa.string()),
        ("org_id", pa.int64()),
        ("org_login", pa.string()),
        ("payload_action", pa.string()),
        ("payload_ref", pa.string()),
        ("payload_ref_type", pa.string()),
        ("push_size", pa.int32()),
        ("push_distinct_size", pa.int32()),
        ("issue_or_pr_number", pa.int32()),
        ("pr_merged", pa.bool_()),
        ("release_tag", pa.string()),
        ("forkee_full_name", pa.string()),
        ("source_file", pa.string()),
    ]
)
MTIME = 1_700_000_000


# --- helpers -----------------------------------------------------------------------------------------


class Lake:
    """A job's four locations under one temporary folder, and readers for what the job wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input, self.output, self.quarantine, self.state = (root / n for n in ("in", "out", "q", "state"))
        self.input.mkdir(parents=True)

    def args(self) -> list[str]:
        return ["gharchive_events.py", "--input_path", f"{self.input}/", "--output_path", f"{self.output}/",
                "--quarantine_path", f"{self.quarantine}/", "--state_path", f"{self.state}/"]  # fmt: skip

    def put(self, hour: datetime, lines: list[str], mtime: int = MTIME) -> Path:
        path = write_gharchive_lines(gharchive_hour_path(self.input, hour), lines)
        os.utime(path, (mtime, mtime))
        return path

    def generate(self, hour: datetime, count: int, seed: int, duplicates: int = 0, bad_lines: int = 0,
                 mtime: int = MTIME) -> Path:  # fmt: skip
        path = write_gharchive_hour(self.input, hour, count, seed, duplicates=duplicates, bad_lines=bad_lines)
        os.utime(path, (mtime, mtime))
        return path

    def layout(self) -> dict[str, tuple[int, int]]:
        """Every output data file (dotfiles aside), relative, with its size and modified time."""
        return {
            str(p.relative_to(self.output)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(self.output.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }

    def partitions(self) -> list[str]:
        return sorted({str(Path(f).parent) for f in self.layout()})

    def rows(self, spark) -> list[tuple]:
        """Every output row, created_at as UTC ISO text, ordered by event_id."""
        if not self.output.exists():
            return []
        df = spark.read.schema(OUTPUT_DDL).parquet(str(self.output))
        df = df.withColumn("created_at", F.date_format("created_at", "yyyy-MM-dd'T'HH:mm:ss'Z'"))
        return sorted((tuple(r) for r in df.collect()), key=lambda r: r[0])

    def quarantined(self, name: str) -> list[dict[str, Any]]:
        folder = self.quarantine / f"source_file={name}"
        rows = [
            json.loads(line) for part in sorted(folder.glob("part-*.json")) for line in part.read_text().splitlines()
        ]
        return sorted(rows, key=lambda r: (r["reason"], r.get("id") or "", r.get("raw_line") or ""))

    def marker(self, kind: str, rel: str) -> dict[str, Any] | None:
        path = self.state / kind / f"{rel}.json"
        return json.loads(path.read_text()) if path.exists() else None


def user(uid: int, login: str) -> dict:
    return {"id": uid, "login": login, "display_login": login, "gravatar_id": "",
            "url": f"https://api.github.com/users/{login}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?"}  # fmt: skip


def nested_user(uid: int, login: str) -> dict:
    return {"login": login, "id": uid, "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "", "url": f"https://api.github.com/users/{login}", "type": "User",
            "site_admin": False}  # fmt: skip


def repo(rid: int, name: str) -> dict:
    return {"id": rid, "name": name, "url": f"https://api.github.com/repos/{name}"}


def event(eid: Any, kind: str, actor: dict, where: dict, payload: dict, created: str, org: dict | None = None,
          public: bool = True) -> dict:  # fmt: skip
    e = {"id": eid, "type": kind, "actor": actor, "repo": where, "payload": payload, "public": public,
         "created_at": created}  # fmt: skip
    if org is not None:
        e["org"] = org
    return e


def line(e: dict) -> str:
    return json.dumps(e, separators=(",", ":"), ensure_ascii=False)


HOUR_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-(\d+)\.json\.gz")


def hour_key(path: Path) -> tuple[str, int]:
    match = HOUR_NAME.fullmatch(path.name)
    assert match
    return match.group(1), int(match.group(2))


def flatten(e: dict, name: str) -> tuple:
    """The expected output row of a valid event, written independently of the job."""
    p = e.get("payload") or {}
    org = e.get("org")
    pr = p.get("pull_request") or {}
    numbers = [p.get("number"), (p.get("issue") or {}).get("number"), pr.get("number")]
    day, hour = hour_key(Path(name))
    return (
        int(e["id"]), e["type"], e["created_at"], e.get("public"), e["actor"]["id"], e["actor"]["login"],
        e["repo"]["id"], e["repo"]["name"], org["id"] if org else None, org["login"] if org else None,
        p.get("action"), p.get("ref"), p.get("ref_type"), p.get("size"), p.get("distinct_size"),
        next((n for n in numbers if n is not None), None), pr.get("merged"),
        (p.get("release") or {}).get("tag_name"), (p.get("forkee") or {}).get("full_name"), name, day, hour,
    )  # fmt: skip


def expected_from_files(files: list[Path]) -> tuple[list[tuple], int]:
    """(rows to load ordered by event_id, lines to quarantine): a plain-Python reading of the hour files."""
    seen: set[int] = set()
    rows, quarantined = [], 0
    for path in sorted(files, key=hour_key):
        for text in gzip.decompress(path.read_bytes()).decode("utf-8").split("\n"):
            if not text.strip():
                continue
            try:
                e = json.loads(text)
            except ValueError:
                e = None
            valid = (
                isinstance(e, dict)
                and str(e.get("id", "")).isdigit()
                and bool(e.get("type"))
                and bool(e.get("created_at"))
                and isinstance(e.get("actor"), dict)
                and isinstance(e["actor"].get("id"), int)
                and isinstance(e.get("repo"), dict)
                and isinstance(e["repo"].get("id"), int)
            )
            if not valid or int(e["id"]) in seen:  # type: ignore[index]
                quarantined += 1
                continue
            seen.add(int(e["id"]))  # type: ignore[index]
            rows.append(flatten(e, path.name))  # type: ignore[arg-type]
    return sorted(rows, key=lambda r: r[0]), quarantined


def types(schema: T.DataType) -> list[tuple[str, T.DataType]]:
    """Column names and types in order (nullability aside)."""
    assert isinstance(schema, T.StructType)
    return [(f.name, f.dataType) for f in schema.fields]


def uri(path: Path) -> str:
    return f"file:{path}"


# --- hand-written hours: every event type, every reason --------------------------------------------

ALICE, BOB, CAROL = user(11, "alice"), user(12, "bob"), user(13, "carol")
DEPENDABOT = user(49699333, "dependabot[bot]")
API, TOOL = repo(21, "acme/api"), repo(22, "bob/tool")
ACME = {"id": 31, "login": "acme", "gravatar_id": "", "url": "https://api.github.com/orgs/acme",
        "avatar_url": "https://avatars.githubusercontent.com/u/31?"}  # fmt: skip
COMMITS = [
    {"sha": f"{k}" * 40, "author": {"email": "alice@example.com", "name": "Alice"}, "message": f"Commit {k}\n\nbody",
     "distinct": k < 2, "url": f"https://api.github.com/repos/acme/api/commits/{k}"}
    for k in range(3)
]  # fmt: skip
PUSH = event("100", "PushEvent", ALICE, API, {"repository_id": 21, "push_id": 15000000001, "size": 3,
             "distinct_size": 2, "ref": "refs/heads/main", "head": "a" * 40, "before": "b" * 40, "commits": COMMITS},
             "2024-01-01T09:00:01Z", org=ACME)  # fmt: skip
PR_MERGED = event("101", "PullRequestEvent", BOB, TOOL, {"action": "closed", "number": 7, "pull_request": {
    "url": "https://api.github.com/repos/bob/tool/pulls/7", "id": 900, "number": 7, "state": "closed",
    "title": "Add a CLI", "body": "Adds a CLI.\r\nFixes #3", "user": nested_user(12, "bob"), "merged": True,
    "merged_at": "2024-01-01T09:01:00Z", "additions": 120, "deletions": 4}}, "2024-01-01T09:01:00Z")  # fmt: skip
ISSUE = event("102", "IssuesEvent", CAROL, API, {"action": "opened", "issue": {
    "url": "https://api.github.com/repos/acme/api/issues/12", "id": 800, "number": 12, "title": "Crash on start",
    "body": "Traceback ...", "user": nested_user(13, "carol"), "labels": [{"id": 1, "name": "bug"}],
    "state": "open"}}, "2024-01-01T09:02:00Z", org=ACME)  # fmt: skip
COMMENT = event("103", "IssueCommentEvent", ALICE, API, {"action": "created", "issue": {"number": 12,
    "title": "Crash on start", "user": nested_user(13, "carol")}, "comment": {"id": 5,
    "body": 'Fixed in "main" — thanks! 🎉\nclosing', "user": nested_user(11, "alice")}},
    "2024-01-01T09:03:00Z", org=ACME)  # fmt: skip
WATCH = event("104", "WatchEvent", CAROL, TOOL, {"action": "started"}, "2024-01-01T09:04:00Z")
CREATE_TAG = event("105", "CreateEvent", BOB, TOOL, {"ref": "v1.0.0", "ref_type": "tag", "master_branch": "main",
                   "description": "A tool", "pusher_type": "user"}, "2024-01-01T09:05:00Z")  # fmt: skip
DELETE = event("106", "DeleteEvent", BOB, TOOL, {"ref": "feature/x", "ref_type": "branch", "pusher_type": "user"},
               "2024-01-01T09:06:00Z")  # fmt: skip
FORK = event("107", "ForkEvent", CAROL, API, {"forkee": {"id": 700, "name": "api", "full_name": "carol/api",
             "owner": nested_user(13, "carol"), "private": False, "fork": True,
             "html_url": "https://github.com/carol/api"}}, "2024-01-01T09:07:00Z", org=ACME)  # fmt: skip
RELEASE = event("108", "ReleaseEvent", BOB, TOOL, {"action": "published", "release": {
    "url": "https://api.github.com/repos/bob/tool/releases/600", "id": 600, "tag_name": "v1.0.0", "name": "First",
    "body": "Notes", "draft": False, "author": nested_user(12, "bob"), "assets": []}},
    "2024-01-01T09:08:00Z")  # fmt: skip
GOLLUM = event("109", "GollumEvent", ALICE, API, {"pages": [{"page_name": "Home", "title": "Home",
               "action": "edited", "sha": "c" * 40}]}, "2024-01-01T09:09:00Z", org=ACME, public=False)  # fmt: skip
BOT_PR = event("110", "PullRequestEvent", DEPENDABOT, TOOL, {"action": "opened", "number": 8, "pull_request": {
    "number": 8, "merged": False, "title": "Bump lib from 1 to 2", "user": nested_user(49699333, "dependabot[bot]")}},
    "2024-01-01T09:10:00Z")  # fmt: skip
REVIEW = event("114", "PullRequestReviewEvent", CAROL, TOOL, {"action": "created", "review": {"id": 1,
               "body": "LGTM", "state": "approved"}, "pull_request": {"number": 9, "title": "Docs"}},
               "2024-01-01T09:11:00Z")  # fmt: skip
LATE_VALID = event("113", "WatchEvent", ALICE, TOOL, {"action": "started"}, "2024-01-01T09:12:00Z")


def without(e: dict, *keys: str) -> dict:
    return {k: v for k, v in e.items() if k not in keys}


WRONG_TYPE = ('{"id":"112","type":"PushEvent","actor":"old-style-login","repo":{"id":21,"name":"acme/api"},'
              '"created_at":"2024-01-01T09:13:00Z","payload":{}}')  # fmt: skip
TRUNCATED = '{"id":"111","type":"PushEvent","actor":{"id":1'
HOUR_9 = [
    line(PUSH), line(PR_MERGED), line(ISSUE), line(COMMENT),
    # An invalid first occurrence of 113: the later valid one is kept.
    line({**WATCH, "id": "113", "created_at": "yesterday"}),
    line(WATCH), line(CREATE_TAG), line(DELETE), line(FORK), line(RELEASE), line(GOLLUM), line(BOT_PR),
    line(PUSH),  # the same event again
    "not json at all", TRUNCATED, WRONG_TYPE,
    "",  # blank lines are skipped, as Spark's JSON reader does
    line(without(WATCH, "id")), line({**WATCH, "id": "abc"}), line({**WATCH, "id": "-5"}),
    line(without({**WATCH, "id": "120"}, "type", "created_at")),
    line(without({**WATCH, "id": "121"}, "actor")), line({**WATCH, "id": "122", "actor": {"id": "x1", "login": "x"}}),
    line(without({**WATCH, "id": "123"}, "repo")), line({**WATCH, "id": "124", "repo": {"name": "no/id"}}),
    line({**WATCH, "id": "125", "org": {"id": "acme", "login": "acme"}}),
    line(REVIEW), line(LATE_VALID),
]  # fmt: skip
NUMERIC_ID = event(200, "PushEvent", CAROL, API, {"push_id": 2, "size": 1, "distinct_size": 1,
                   "ref": "refs/heads/dev", "commits": []}, "2024-01-01T10:00:00Z", org=ACME)  # fmt: skip
OFFSET_TIME = event("201", "WatchEvent", BOB, API, {"action": "started"}, "2024-01-01T11:30:00+01:00", org=ACME)
TWICE = event("202", "ForkEvent", ALICE, TOOL, {"forkee": {"full_name": "alice/tool"}}, "2024-01-01T10:40:00Z")
HOUR_10 = [line(RELEASE), line(NUMERIC_ID), line(OFFSET_TIME), line(TWICE), line(TWICE)]
NEW_REPO = event("300", "CreateEvent", ALICE, repo(23, "alice/new"), {"ref": None, "ref_type": "repository",
                 "master_branch": "main", "description": None, "pusher_type": "user"},
                 "2024-01-01T23:59:59Z")  # fmt: skip

H9, H10, D2 = "2024-01-01-9.json.gz", "2024-01-01-10.json.gz", "2024-01-02-0.json.gz"
# Literal expectations (columns as OUTPUT_DDL; created_at as UTC text).
EXPECTED_ROWS = [
    (100, "PushEvent", "2024-01-01T09:00:01Z", True, 11, "alice", 21, "acme/api", 31, "acme", None, "refs/heads/main",
     None, 3, 2, None, None, None, None, H9, "2024-01-01", 9),
    (101, "PullRequestEvent", "2024-01-01T09:01:00Z", True, 12, "bob", 22, "bob/tool", None, None, "closed", None,
     None, None, None, 7, True, None, None, H9, "2024-01-01", 9),
    (102, "IssuesEvent", "2024-01-01T09:02:00Z", True, 13, "carol", 21, "acme/api", 31, "acme", "opened", None, None,
     None, None, 12, None, None, None, H9, "2024-01-01", 9),
    (103, "IssueCommentEvent", "2024-01-01T09:03:00Z", True, 11, "alice", 21, "acme/api", 31, "acme", "created",
     None, None, None, None, 12, None, None, None, H9, "2024-01-01", 9),
    (104, "WatchEvent", "2024-01-01T09:04:00Z", True, 13, "carol", 22, "bob/tool", None, None, "started", None, None,
     None, None, None, None, None, None, H9, "2024-01-01", 9),
    (105, "CreateEvent", "2024-01-01T09:05:00Z", True, 12, "bob", 22, "bob/tool", None, None, None, "v1.0.0", "tag",
     None, None, None, None, None, None, H9, "2024-01-01", 9),
    (106, "DeleteEvent", "2024-01-01T09:06:00Z", True, 12, "bob", 22, "bob/tool", None, None, None, "feature/x",
     "branch", None, None, None, None, None, None, H9, "2024-01-01", 9),
    (107, "ForkEvent", "2024-01-01T09:07:00Z", True, 13, "carol", 21, "acme/api", 31, "acme", None, None, None, None,
     None, None, None, None, "carol/api", H9, "2024-01-01", 9),
    (108, "ReleaseEvent", "2024-01-01T09:08:00Z", True, 12, "bob", 22, "bob/tool", None, None, "published", None,
     None, None, None, None, None, "v1.0.0", None, H9, "2024-01-01", 9),
    (109, "GollumEvent", "2024-01-01T09:09:00Z", False, 11, "alice", 21, "acme/api", 31, "acme", None, None, None,
     None, None, None, None, None, None, H9, "2024-01-01", 9),
    (110, "PullRequestEvent", "2024-01-01T09:10:00Z", True, 49699333, "dependabot[bot]", 22, "bob/tool", None, None,
     "opened", None, None, None, None, 8, False, None, None, H9, "2024-01-01", 9),
    (113, "WatchEvent", "2024-01-01T09:12:00Z", True, 11, "alice", 22, "bob/tool", None, None, "started", None, None,
     None, None, None, None, None, None, H9, "2024-01-01", 9),
    (114, "PullRequestReviewEvent", "2024-01-01T09:11:00Z", True, 13, "carol", 22, "bob/tool", None, None, "created",
     None, None, None, None, 9, None, None, None, H9, "2024-01-01", 9),
    (200, "PushEvent", "2024-01-01T10:00:00Z", True, 13, "carol", 21, "acme/api", 31, "acme", None, "refs/heads/dev",
     None, 1, 1, None, None, None, None, H10, "2024-01-01", 10),
    (201, "WatchEvent", "2024-01-01T10:30:00Z", True, 12, "bob", 21, "acme/api", 31, "acme", "started", None, None,
     None, None, None, None, None, None, H10, "2024-01-01", 10),
    (202, "ForkEvent", "2024-01-01T10:40:00Z", True, 11, "alice", 22, "bob/tool", None, None, None, None, None, None,
     None, None, None, None, "alice/tool", H10, "2024-01-01", 10),
    # Partitioned by its file (the first hour of 2 January), not by its created_at.
    (300, "CreateEvent", "2024-01-01T23:59:59Z", True, 11, "alice", 23, "alice/new", None, None, None, None,
     "repository", None, None, None, None, None, None, D2, "2024-01-02", 0),
]  # fmt: skip
KEPT_IN_H9 = f"duplicate event_id (kept the first, in {H9})"
WATCH_FIELDS = {"type": "WatchEvent", "created_at": "2024-01-01T09:04:00Z", "actor_id": "13", "actor_login": "carol",
                "repo_id": "22", "repo_name": "bob/tool"}  # fmt: skip
EXPECTED_QUARANTINE_H9 = sorted(
    [
        {
            "reason": KEPT_IN_H9,
            "id": "100",
            "type": "PushEvent",
            "created_at": "2024-01-01T09:00:01Z",
            "actor_id": "11",
            "actor_login": "alice",
            "repo_id": "21",
            "repo_name": "acme/api",
        },
        {
            "reason": "created_at is not an ISO-8601 timestamp; " + KEPT_IN_H9,
            "id": "113",
            **WATCH_FIELDS,
            "created_at": "yesterday",
        },
        {"reason": "unparseable line: not a complete JSON object", "raw_line": "not json at all"},
        {"reason": "unparseable line: not a complete JSON object", "raw_line": TRUNCATED},
        # Spark keeps what it could parse of a line with a field of the wrong JSON type.
        {
            "reason": "unparseable line: a field has the wrong JSON type",
            "raw_line": WRONG_TYPE,
            "id": "112",
            "type": "PushEvent",
            "created_at": "2024-01-01T09:13:00Z",
            "repo_id": "21",
            "repo_name": "acme/api",
        },
        {"reason": "id is missing", **WATCH_FIELDS},
        {"reason": "id is not an integer", "id": "abc", **WATCH_FIELDS},
        {"reason": "id is not an integer", "id": "-5", **WATCH_FIELDS},
        {
            "reason": "type is missing; created_at is missing",
            "id": "120",
            "actor_id": "13",
            "actor_login": "carol",
            "repo_id": "22",
            "repo_name": "bob/tool",
        },
        {
            "reason": "actor is missing",
            "id": "121",
            "type": "WatchEvent",
            "created_at": "2024-01-01T09:04:00Z",
            "repo_id": "22",
            "repo_name": "bob/tool",
        },
        {"reason": "actor.id is not an integer", "id": "122", **WATCH_FIELDS, "actor_id": "x1", "actor_login": "x"},
        {
            "reason": "repo is missing",
            "id": "123",
            "type": "WatchEvent",
            "created_at": "2024-01-01T09:04:00Z",
            "actor_id": "13",
            "actor_login": "carol",
        },
        {"reason": "repo.id is missing", "id": "124", **without(WATCH_FIELDS, "repo_id"), "repo_name": "no/id"},
        {"reason": "org.id is not an integer", "id": "125", **WATCH_FIELDS},
    ],
    key=lambda r: (r["reason"], r.get("id") or "", r.get("raw_line") or ""),
)
EXPECTED_QUARANTINE_H10 = [
    {"reason": f"duplicate event_id (kept the first, in {H10})", "id": "202", "type": "ForkEvent",
     "created_at": "2024-01-01T10:40:00Z", "actor_id": "11", "actor_login": "alice", "repo_id": "22",
     "repo_name": "bob/tool"},
    # Hour 10 sorts before hour 9 as text; the earlier hour's copy is the one kept.
    {"reason": KEPT_IN_H9, "id": "108", "type": "ReleaseEvent", "created_at": "2024-01-01T09:08:00Z",
     "actor_id": "12", "actor_login": "bob", "repo_id": "22", "repo_name": "bob/tool"},
]  # fmt: skip


@pytest.fixture(scope="module")
def literal(spark, tmp_path_factory) -> tuple[Lake, dict[str, Any]]:
    """The hand-written hours, transformed once by main() with local paths."""
    lake = Lake(tmp_path_factory.mktemp("gharchive-literal"))
    lake.put(datetime(2024, 1, 1, 9), HOUR_9)
    lake.put(datetime(2024, 1, 1, 10), HOUR_10, mtime=MTIME + 10)
    lake.put(datetime(2024, 1, 2, 0), [line(NEW_REPO)], mtime=MTIME + 20)
    return lake, job.main(lake.args())


def test_summary_counts_every_line(literal) -> None:
    _, summary = literal
    assert summary == {
        "job": "gharchive_events", "files": 3, "source_files": [H10, H9, D2], "rows_in": 33, "rows_loaded": 17,
        "rows_quarantined": 16, "duplicates": 4, "already_loaded": 0, "rejected": [],
    }  # fmt: skip
    assert summary["rows_in"] == summary["rows_loaded"] + summary["rows_quarantined"]


def test_every_event_type_is_flattened_with_exact_values(spark, literal) -> None:
    lake, _ = literal
    assert lake.rows(spark) == EXPECTED_ROWS


def test_output_schema_partitions_and_files(spark, literal) -> None:
    lake, _ = literal
    assert lake.partitions() == ["date=2024-01-01/hour=10", "date=2024-01-01/hour=9", "date=2024-01-02/hour=0"]
    files = list(lake.layout())
    assert len(files) == 3  # one file per hour: nothing tiny
    for name in files:
        assert name.endswith(".snappy.parquet")
        parquet = pq.ParquetFile(lake.output / name)
        # Exactly the kept columns, in order; urls, avatars, commits, titles, bodies... are all gone.
        assert [(f.name, f.type) for f in parquet.schema_arrow] == [(f.name, f.type) for f in PARQUET_SCHEMA]
        metadata = parquet.metadata
        assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"SNAPPY"}
    # The job's declared schema is the documented contract, partition columns last.
    assert types(T._parse_datatype_string(OUTPUT_DDL)) == types(job.OUTPUT_SCHEMA)
    assert list(job.OUTPUT_COLUMNS) == OUTPUT_COLUMNS


def test_duplicates_and_bad_lines_are_quarantined_with_reasons(literal) -> None:
    lake, _ = literal
    # source_file is the partition (the folder name), not in the rows.
    assert lake.quarantined(H9) == EXPECTED_QUARANTINE_H9
    assert lake.quarantined(H10) == EXPECTED_QUARANTINE_H10
    assert not (lake.quarantine / f"source_file={D2}").exists()


def test_markers_record_each_file_after_its_output(literal) -> None:
    lake, _ = literal
    h9 = lake.input / "date=2024-01-01" / H9
    assert lake.marker("transformed", f"date=2024-01-01/{H9}") == {
        "path": f"date=2024-01-01/{H9}", "source": uri(h9), "source_file": H9, "date": "2024-01-01", "hour": 9,
        "size": h9.stat().st_size, "modified_ms": MTIME * 1000, "rows_in": 27, "rows_loaded": 13,
        "rows_quarantined": 14, "duplicates": 2, "already_loaded": 0,
    }  # fmt: skip
    h10 = lake.marker("transformed", f"date=2024-01-01/{H10}")
    assert h10 is not None
    assert (h10["rows_in"], h10["rows_loaded"], h10["rows_quarantined"], h10["duplicates"]) == (5, 3, 2, 2)
    assert h10["modified_ms"] == (MTIME + 10) * 1000
    d2 = lake.marker("transformed", f"date=2024-01-02/{D2}")
    assert d2 is not None
    assert (d2["rows_in"], d2["rows_loaded"], d2["rows_quarantined"], d2["hour"]) == (1, 1, 0, 0)


def test_pure_transform_on_in_memory_lines(spark) -> None:
    lines = [line(PUSH), line(PUSH), "{oops", line({**WATCH, "id": "x"})]
    raw = (
        spark.read.schema(job.READ_SCHEMA)
        .options(mode="PERMISSIVE", columnNameOfCorruptRecord=job.CORRUPT)
        .json(spark.sparkContext.parallelize(lines, 1))
        .select(
            "*",
            F.lit("2024-05-06-23.json.gz").alias("source_file"),
            F.monotonically_increasing_id().alias("_row_order"),
        )
    )
    clean, quarantine = job.transform_events(raw)

    assert types(clean.schema) == types(T._parse_datatype_string(OUTPUT_DDL))
    assert [(r.event_id, r.date, r.hour, r.source_file) for r in clean.collect()] == [
        (100, "2024-05-06", 23, "2024-05-06-23.json.gz")
    ]
    assert quarantine.columns == ["reason", "raw_line", "id", "type", "created_at", "actor_id", "actor_login",
                                  "repo_id", "repo_name", "source_file"]  # fmt: skip
    assert sorted((r.reason, r.raw_line, r.id) for r in quarantine.collect()) == [
        ("duplicate event_id (kept the first, in 2024-05-06-23.json.gz)", None, "100"),
        ("id is not an integer", None, "x"),
        ("unparseable line: not a complete JSON object", "{oops", None),
    ]


# --- generated hours: size, reruns, changes --------------------------------------------------------


def test_a_big_hour_is_written_in_files_of_at_most_10000_rows(spark, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    big = lake.generate(datetime(2024, 3, 1, 14), 20_500, seed=3, duplicates=40, bad_lines=5)
    small = lake.generate(datetime(2024, 3, 1, 15), 700, seed=4, duplicates=3, bad_lines=5)

    summary = job.main(lake.args())

    assert summary == {
        "job": "gharchive_events", "files": 2, "source_files": ["2024-03-01-14.json.gz", "2024-03-01-15.json.gz"],
        "rows_in": 21_253, "rows_loaded": 21_200, "rows_quarantined": 53, "duplicates": 43, "already_loaded": 0,
        "rejected": [],
    }  # fmt: skip
    rows_per_file: dict[str, list[int]] = {}
    for name in lake.layout():
        rows_per_file.setdefault(str(Path(name).parent), []).append(
            pq.ParquetFile(lake.output / name).metadata.num_rows
        )
    assert {k: sorted(v) for k, v in rows_per_file.items()} == {
        "date=2024-03-01/hour=14": [500, 10_000, 10_000],
        "date=2024-03-01/hour=15": [700],
    }
    expected, quarantined = expected_from_files([big, small])
    assert quarantined == 53
    assert lake.rows(spark) == expected


def run_metrics(capsys: pytest.CaptureFixture[str]) -> tuple[int, ...]:
    """The last run's metrics line (tests/jobs/emf.py): (Files, Events, RowsIn, RowsLoaded, RowsQuarantined)."""
    document = one_run_summary(capsys.readouterr().out, pipeline="gharchive", job="gharchive_events")
    return tuple(document[name] for name in ("Files", "Events", "RowsIn", "RowsLoaded", "RowsQuarantined"))


def test_reruns_do_nothing_or_replace_only_the_changed_hour(spark, tmp_path: Path, capsys) -> None:
    lake = Lake(tmp_path)
    hours = [datetime(2024, 2, 1, h) for h in range(3)]
    for h in hours:
        lake.generate(h, 300, seed=h.hour + 1, duplicates=2, bad_lines=1)
    capsys.readouterr()
    first = job.main(lake.args())
    assert (first["files"], first["rows_in"], first["rows_loaded"], first["rows_quarantined"]) == (3, 909, 900, 9)
    # Files: the hour files loaded, which the freshness alarm watches; Events: the events loaded.
    assert run_metrics(capsys) == (3, 900, 909, 900, 9)
    before = lake.layout()
    assert lake.partitions() == [f"date=2024-02-01/hour={h}" for h in range(3)]
    assert len(before) == 3

    # Nothing new: a quick no-op that writes nothing, and says so with Files 0.
    assert job.main(lake.args()) == {
        "job": "gharchive_events", "files": 0, "source_files": [], "rows_in": 0, "rows_loaded": 0,
        "rows_quarantined": 0, "duplicates": 0, "already_loaded": 0, "rejected": [],
    }  # fmt: skip
    assert run_metrics(capsys) == (0, 0, 0, 0, 0)
    assert lake.layout() == before

    # Hour 1 published again with other content: only its partition and quarantine are replaced.
    changed = lake.generate(hours[1], 200, seed=99, duplicates=3, bad_lines=2, mtime=MTIME + 500)
    summary = job.main(lake.args())
    assert summary == {
        "job": "gharchive_events", "files": 1, "source_files": ["2024-02-01-1.json.gz"], "rows_in": 205,
        "rows_loaded": 200, "rows_quarantined": 5, "duplicates": 3, "already_loaded": 0, "rejected": [],
    }  # fmt: skip
    assert run_metrics(capsys) == (1, 200, 205, 200, 5)
    after = lake.layout()
    untouched = {k: v for k, v in before.items() if "hour=1/" not in k}
    assert {k: v for k, v in after.items() if "hour=1/" not in k} == untouched
    assert [k for k in after if "hour=1/" in k] != [k for k in before if "hour=1/" in k]
    files = [gharchive_hour_path(lake.input, h) for h in hours]
    expected, _ = expected_from_files(files)
    assert len(expected) == 800
    assert lake.rows(spark) == expected  # exact: no row of the old hour 1 left, none twice
    assert len(lake.quarantined("2024-02-01-1.json.gz")) == 5
    assert lake.marker("transformed", "date=2024-02-01/2024-02-01-1.json.gz")["size"] == changed.stat().st_size  # type: ignore[index]

    # Hour 1 again, now with nothing loadable: its partition goes, its quarantine holds just these lines.
    lake.put(hours[1], ["garbage", line(without(WATCH, "id"))], mtime=MTIME + 900)
    summary = job.main(lake.args())
    assert (summary["rows_in"], summary["rows_loaded"], summary["rows_quarantined"]) == (2, 0, 2)
    assert lake.partitions() == ["date=2024-02-01/hour=0", "date=2024-02-01/hour=2"]
    assert [r["reason"] for r in lake.quarantined("2024-02-01-1.json.gz")] == [
        "id is missing",
        "unparseable line: not a complete JSON object",
    ]
    expected, _ = expected_from_files([files[0], files[2]])
    assert lake.rows(spark) == expected


def test_misnamed_files_are_rejected_once_and_the_others_transformed(spark, tmp_path: Path, caplog) -> None:
    lake = Lake(tmp_path)
    good = lake.generate(datetime(2024, 1, 1, 5), 20, seed=1)
    events = [gharchive_line(e) for e in [PUSH]]
    for rel in ("date=2024-01-01/2024-01-01-05.json.gz", "date=2024-01-01/notes.json.gz",
                "date=2024-01-02/2024-01-01-7.json.gz", "date=2024-02-30/2024-02-30-1.json.gz"):  # fmt: skip
        write_gharchive_lines(lake.input / rel, events)

    with caplog.at_level(logging.ERROR, logger="glue_job"):
        assert glue_common.run(job.main, lake.args()) == glue_common.EXIT_BAD_INPUT
    naming = "not a GH Archive hour file: expected date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz (H = 0..23, no leading zero)"
    assert caplog.messages == [
        "bad input: 4 file(s) rejected: "
        f"date=2024-01-01/2024-01-01-05.json.gz: {naming}; date=2024-01-01/notes.json.gz: {naming}; "
        "date=2024-01-02/2024-01-01-7.json.gz: file of 2024-01-01 stored under date=2024-01-02/; "
        "date=2024-02-30/2024-02-30-1.json.gz: 2024-02-30 in the file name is not a date"
    ]
    assert lake.partitions() == ["date=2024-01-01/hour=5"]
    assert lake.rows(spark) == expected_from_files([good])[0]
    rejected = lake.marker("rejected", "date=2024-01-01/notes.json.gz")
    assert rejected is not None and rejected["reason"] == naming
    # Reported once: the next run has nothing to do until one of them changes.
    assert glue_common.run(job.main, lake.args()) == 0


def test_a_truncated_gzip_file_is_bad_input_and_nothing_is_marked(spark, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    path = lake.generate(datetime(2024, 1, 1, 7), 3000, seed=5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(BadInputError, match=r"not complete gzip .*; one of: date=2024-01-01/2024-01-01-7\.json\.gz$"):
        job.main(lake.args())
    assert lake.marker("transformed", "date=2024-01-01/2024-01-01-7.json.gz") is None
    assert lake.layout() == {}


# --- arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "missing required argument(s) --input_path, --output_path, --quarantine_path, --state_path; all of "
             "--input_path, --output_path, --quarantine_path, --state_path are needed"),
        (["--input_path", "/a", "--output_path", "/b", "--quarantine_path", "/c"],
         "missing required argument(s) --state_path; all of --input_path, --output_path, --quarantine_path, "
         "--state_path are needed"),
        (["--input_path", " ", "--output_path", "/b", "--quarantine_path", "/c", "--state_path", "/d"],
         "argument(s) --input_path must not be empty"),
        (["--input_path", "s3://raw/gh/", "--output_path", "s3://lake/events/", "--quarantine_path",
          "s3://lake/events/quarantine/", "--state_path", "s3://lake/state/"],
         "--output_path (s3://lake/events/) and --quarantine_path (s3://lake/events/quarantine/) overlap: "
         "each must be a location of its own"),
        (["--input_path", "/x/raw", "--output_path", "/x/out", "--quarantine_path", "/x/q", "--state_path", "/x/raw/"],
         "--input_path (/x/raw) and --state_path (/x/raw/) overlap: each must be a location of its own"),
    ],
)  # fmt: skip
def test_missing_or_bad_arguments_are_bad_input(argv: list[str], message: str) -> None:
    with pytest.raises(BadInputError) as error:
        job.main(["gharchive_events.py", *argv])
    assert str(error.value) == message


def test_bad_arguments_exit_with_the_bad_input_code(caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="glue_job"):
        argv = [
            "gharchive_events.py",
            "--input_path",
            "/a",
            "--output_path",
            "/b",
            "--quarantine_path",
            "/c",
            "--state_path",
        ]
        assert glue_common.run(job.main, argv) == glue_common.EXIT_BAD_INPUT
    assert caplog.messages == [f"bad input: cannot parse the arguments {argv}: expected --name value pairs"]


# --- de-duplication across runs of the same date --------------------------------------------------------


def test_an_event_id_loaded_by_an_earlier_run_of_the_date_is_quarantined_not_loaded_again(
    spark, tmp_path: Path
) -> None:
    lake = Lake(tmp_path)
    h0, h1, next_day = datetime(2024, 3, 1, 0), datetime(2024, 3, 1, 1), datetime(2024, 3, 2, 0)
    first_hour = [gharchive_line(e) for e in gharchive_events(h0, 20, seed=1)]
    lake.put(h0, first_hour)
    assert job.main(lake.args())["rows_loaded"] == 20

    # GH Archive repeats events across hour files: 5 of hour 0's events again in hour 1, among 10 new ones.
    repeated = [first_hour[i] for i in (0, 4, 8, 12, 16)]
    new = [gharchive_line(e) for e in gharchive_events(h1, 10, seed=2)]
    lake.put(h1, new[:5] + repeated + new[5:])
    summary = job.main(lake.args())

    assert summary == {
        "job": "gharchive_events", "files": 1, "source_files": ["2024-03-01-1.json.gz"], "rows_in": 15,
        "rows_loaded": 10, "rows_quarantined": 5, "duplicates": 5, "already_loaded": 5, "rejected": [],
    }  # fmt: skip
    reason = "duplicate event_id (loaded by an earlier run, in 2024-03-01-0.json.gz)"
    assert [(r["reason"], r["id"]) for r in lake.quarantined("2024-03-01-1.json.gz")] == sorted(
        (reason, json.loads(line)["id"]) for line in repeated
    )
    files = [gharchive_hour_path(lake.input, h) for h in (h0, h1)]
    expected, _ = expected_from_files(files)  # the independent reading keeps each id's first occurrence
    assert len(expected) == 30 and lake.rows(spark) == expected

    # Hour 1 published again (one more event): its own old rows are replaced, not taken for earlier loads.
    extra = gharchive_line(gharchive_events(h1, 11, seed=3)[-1])
    lake.put(h1, [*new[:5], *repeated, *new[5:], extra], mtime=MTIME + 60)
    summary = job.main(lake.args())
    assert (summary["rows_in"], summary["rows_loaded"], summary["rows_quarantined"]) == (16, 11, 5)
    assert (summary["duplicates"], summary["already_loaded"]) == (5, 5)
    assert len(lake.rows(spark)) == 31
    assert len({r[0] for r in lake.rows(spark)}) == 31  # every event_id once

    # Hour 0 reprocessed (touched): hour 1 loaded none of its ids, so all 20 load again, none twice.
    lake.put(h0, first_hour, mtime=MTIME + 120)
    summary = job.main(lake.args())
    assert (summary["rows_loaded"], summary["already_loaded"]) == (20, 0)
    assert len(lake.rows(spark)) == 31

    # The state is per date: the next day may carry an id of this one (GH Archive's days do not overlap).
    lake.put(next_day, [first_hour[0]])
    summary = job.main(lake.args())
    assert (summary["rows_loaded"], summary["already_loaded"]) == (1, 0)


def test_the_same_hour_rerun_with_unchanged_content_stays_identical(spark, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for h in range(2):
        lake.generate(datetime(2024, 3, 5, h), 50, seed=h + 1, duplicates=2)
    job.main(lake.args())
    rows = lake.rows(spark)
    for h in range(2):  # both hours touched: the same bytes processed again together
        path = gharchive_hour_path(lake.input, datetime(2024, 3, 5, h))
        os.utime(path, (MTIME + 30, MTIME + 30))
    summary = job.main(lake.args())
    assert (summary["files"], summary["rows_loaded"], summary["duplicates"], summary["already_loaded"]) == (
        2,
        100,
        4,
        0,
    )
    assert lake.rows(spark) == rows


# --- the run log in job_run_details -------------------------------------------------------------------------


@pytest.fixture
def runs_table():
    """A moto DynamoDB `job_run_details` table, shaped as the stack's (hash job_name, range run_id)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName="job-run-details",
            KeySchema=[
                {"AttributeName": "job_name", "KeyType": "HASH"},
                {"AttributeName": "run_id", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "job_name", "AttributeType": "S"},
                {"AttributeName": "run_id", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _run_rows(client) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    items = client.scan(TableName="job-run-details")["Items"]
    rows = [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in items]
    return [{k: (int(v) if k in job.RUN_FIGURES else v) for k, v in row.items()} for row in rows]


ISO_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def test_each_transform_run_is_recorded_in_job_run_details(spark, tmp_path: Path, runs_table, capsys) -> None:
    lake = Lake(tmp_path)
    lake.generate(datetime(2024, 3, 9, 4), 40, seed=4, duplicates=1, bad_lines=2)
    argv = [*lake.args(), "--runs_table", "job-run-details", "--JOB_RUN_ID", "jr_0123abcd"]
    # What the Glue job's default arguments add (components/compute.py GlueJob).
    argv += ["--metrics_stack", "dev", "--metrics_pipeline", "gharchive"]
    capsys.readouterr()

    summary = job.main(argv, dynamodb=runs_table)

    document = one_run_summary(capsys.readouterr().out, stack="dev", pipeline="gharchive", job="gharchive_events")
    assert (document["Files"], document["RowsIn"], document["RowsLoaded"], document["RowsQuarantined"]) == (
        1, 43, 40, 3,
    )  # fmt: skip

    (row,) = _run_rows(runs_table)
    assert ISO_SECONDS.fullmatch(row["started_at"]) and ISO_SECONDS.fullmatch(row["finished_at"])
    assert row == {
        "job_name": "gharchive_events", "run_id": "jr_0123abcd", "status": "SUCCEEDED",
        "started_at": row["started_at"], "finished_at": row["finished_at"], "files": 1, "rows_in": 43,
        "rows_loaded": 40, "rows_quarantined": 3, "duplicates": 1, "already_loaded": 0,
        "source_files": ["2024-03-09-4.json.gz"],
    }  # fmt: skip
    assert summary["rows_in"] == summary["rows_loaded"] + summary["rows_quarantined"] == 43


def test_a_failed_transform_run_is_recorded_with_its_counts_and_error(
    spark, tmp_path: Path, runs_table, capsys
) -> None:
    lake = Lake(tmp_path)
    lake.generate(datetime(2024, 3, 9, 5), 10, seed=5)
    write_gharchive_lines(lake.input / "date=2024-03-09/notes.json.gz", [gharchive_line(PUSH)])
    argv = [*lake.args(), "--runs_table", "job-run-details"]
    capsys.readouterr()

    with pytest.raises(BadInputError, match=r"^1 file\(s\) rejected: date=2024-03-09/notes\.json\.gz: "):
        job.main(argv, dynamodb=runs_table)
    # The run loaded the good hour before failing: its metrics say so.
    assert run_metrics(capsys) == (1, 10, 10, 10, 0)

    (row,) = _run_rows(runs_table)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", row["run_id"])  # no Glue run id: a generated one
    assert (row["status"], row["files"], row["rows_loaded"], row["rows_quarantined"]) == ("FAILED", 1, 10, 0)
    assert row["error"].startswith("1 file(s) rejected: date=2024-03-09/notes.json.gz: not a GH Archive hour file")


def test_a_run_id_already_recorded_is_not_overwritten(spark, tmp_path: Path, runs_table) -> None:
    from job_runtime.errors import JobError

    lake = Lake(tmp_path)
    argv = [*lake.args(), "--runs_table", "job-run-details", "--JOB_RUN_ID", "jr_same"]
    job.main(argv, dynamodb=runs_table)
    with pytest.raises(JobError, match=r"^recording run jr_same in job-run-details: ConditionalCheckFailedException"):
        job.main(argv, dynamodb=runs_table)
    (row,) = _run_rows(runs_table)
    assert (row["status"], row["files"]) == ("SUCCEEDED", 0)


def _item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it (Developer Guide, "DynamoDB item sizes and formats",
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
    name bytes + string bytes; numbers about one byte per two digits plus one; a list 3 bytes plus one
    per element."""

    def value(typed: dict[str, Any]) -> int:
        (kind, v), *_ = typed.items()
        if kind == "S":
            return len(v.encode("utf-8"))
        if kind == "N":
            return (len(v) + 1) // 2 + 1
        return 3 + sum(1 + value(e) for e in v)  # "L"

    return sum(len(name.encode("utf-8")) + value(typed) for name, typed in item.items())


def test_the_largest_run_row_fits_dynamodbs_400_kb_item_limit() -> None:
    """Items are at most 400 KB (DynamoDB Developer Guide, "Constraints", Items,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html): a run over a
    month of hours with a long Spark error still fits, because the error is cut to MAX_ERROR_CHARS."""

    class Recorder:
        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []

        def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> None:
            self.items.append(Item)

    recorder = Recorder()
    log = job.RunLog(recorder, "job-run-details", "jr_" + "f" * 64)
    log.start()
    names = [f"2024-01-{d:02d}-{h}.json.gz" for d in range(1, 32) for h in range(24)]  # 744 hours
    summary = {"files": 744, "rows_in": 10**12, "rows_loaded": 10**12, "rows_quarantined": 0, "duplicates": 0,
               "already_loaded": 0, "source_files": names}  # fmt: skip
    log.finish(job.FAILED, summary, "é" * 1_000_000)
    item = recorder.items[-1]
    assert len(item["error"]["S"]) == job.MAX_ERROR_CHARS
    assert len(item["source_files"]["L"]) == 744
    assert _item_bytes(item) < 400 * 1024
