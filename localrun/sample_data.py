"""Deterministic synthetic inputs shaped like the real ones, with parameters for sizes.

Render logs: the local run's generated file and the `render-logs` benchmarks' input (bench/render_logs.py).
GH Archive hours: the local run's archive server, the job tests and the `gharchive` benchmark's input
(bench/glue_gharchive.py).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import numpy as np

RENDER_LOG_HEADER = b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n"
SEED_DEVICES = tuple(f"iac-vx{i}" for i in range(1, 9))  # the seed's device ids
# Bad lines of the kinds the render-summary job quarantines; `{ts}` is the row's own timestamp. None: a blank line.
RENDER_LOG_BAD_LINES: tuple[str | None, ...] = (
    "{ts},,59.0,80.0,18",  # empty device_id
    "not-a-time,bad-timestamp,59.5,81.0,19",
    "{ts},bad-missing-field,59.5,81.0",
    "{ts},bad-gpu,58.0,101.5,22",
    "{ts},bad-frame-rate,-1.0,80.0,22",
    "{ts},bad-latency,58.5,70.0,20.5",
    "{ts},bad-missing-value,,70.0,20",
    "{ts},bad-nan,nan,70.0,20",
    "{ts}," + "bad-device-id-too-long-" * 3 + ",58.5,70.0,20",
    None,
)


def write_render_logs(
    path: Path,
    rows: int,
    *,
    devices: Sequence[str] = SEED_DEVICES,
    seed: int = 7,
    bad_fraction: float = 0.0,
    block: int = 1_000_000,
) -> dict[str, int]:
    """`rows` lines of render-log CSV after the header, for `devices`, 10 ms apart, written a block at a time
    (vectorised: ~2 s per 1M). A share `bad_fraction` of the lines is one of RENDER_LOG_BAD_LINES, drawn at
    random; a bad row carries its own device id (`bad-...`), so the valid devices' figures come from valid rows.

    Returns what the job must find: rows (non-blank lines), bad rows, blank lines and bytes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    device_ids = pa.array(list(devices))
    bad_texts = pa.array([b"" if line is None else line.encode() for line in RENDER_LOG_BAD_LINES], pa.binary())
    blank_kind = RENDER_LOG_BAD_LINES.index(None)
    start = np.datetime64("2025-10-06T00:00:00", "us")
    bad = blank = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(RENDER_LOG_HEADER)
        for first in range(0, rows, block):
            n = min(block, rows - first)
            ts = pc.strftime(
                pa.array(start + (first + np.arange(n)) * 10_000 + rng.integers(0, 10_000, n), pa.timestamp("us")),
                format="%Y-%m-%dT%H:%M:%S",
            )
            lines = pc.binary_join_element_wise(
                ts,
                device_ids.take(pa.array(rng.integers(0, len(device_ids), n))),
                pc.cast(pa.array(rng.normal(59.8, 0.25, n)), pa.string()),
                pc.cast(pa.array(rng.uniform(60.0, 99.9, n)), pa.string()),
                pc.cast(pa.array(rng.integers(8, 45, n)), pa.string()),
                ",",
            ).cast(pa.binary())
            is_bad = rng.random(n) < bad_fraction
            kinds = rng.integers(0, len(RENDER_LOG_BAD_LINES), int(is_bad.sum()))
            templates = bad_texts.take(pa.array(kinds))
            texts = pc.replace_substring(templates, b"{ts}", b"")  # a bad line's own timestamp is put in below
            with_ts = pc.binary_join_element_wise(pc.filter(ts, pa.array(is_bad)).cast(pa.binary()), texts, b"")
            has_ts = pc.starts_with(templates.cast(pa.string()), "{ts}")
            lines = pc.replace_with_mask(lines, pa.array(is_bad), pc.if_else(has_ts, with_ts, texts))
            bad += int((kinds != blank_kind).sum())
            blank += int((kinds == blank_kind).sum())
            out.write(pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), lines), b"\n")[0].as_py())
            out.write(b"\n")
    return {"rows": rows - blank, "bad_rows": bad, "blank_lines": blank, "bytes": path.stat().st_size}


# --- GH Archive hour files ----------------------------------------------------------------------------

GH_API = "https://api.github.com"
GH_AVATARS = "https://avatars.githubusercontent.com/u"
GH_BOTS: tuple[tuple[int, str], ...] = (
    (49699333, "dependabot[bot]"),
    (41898282, "github-actions[bot]"),
    (29139614, "renovate[bot]"),
)
GH_HUMANS: tuple[tuple[int, str], ...] = tuple(
    (1_000_000 + 7919 * i, login)
    for i, login in enumerate(
        [
            "octocat", "mona", "hubot-dev", "alice-w", "bob-builds", "carol-ops", "dave-rs", "erin-k8s",
            "frank-py", "grace-h", "heidi-data", "ivan-go", "judy-ml", "mallory-sec", "niaj-web", "olivia-db",
            "peggy-ui", "rupert-ci", "sybil-docs", "trent-qa", "victor-sre", "walter-js", "xena-cloud", "yvonne-io",
        ]
        + [f"dev-{k:03d}" for k in range(36)]
    )
)  # fmt: skip
GH_ORGS: dict[str, int] = {"kubernetes": 13629408, "microsoft": 6154722, "apache": 47359, "rust-lang": 5430905}
# (repo id, full name, relative weight): a few busy repositories, then a long tail of small ones.
GH_REPOS: tuple[tuple[int, str, int], ...] = (
    (20580498, "kubernetes/kubernetes", 30),
    (41881900, "microsoft/vscode", 24),
    (17165658, "apache/spark", 18),
    (724712, "rust-lang/rust", 14),
    (2325298, "torvalds/linux", 10),
    (1296269, "octocat/Hello-World", 6),
    *((90_000_000 + 13 * k, f"{GH_HUMANS[k % 24][1]}/project-{k}", 1) for k in range(30)),
)
GH_EVENT_TYPES: tuple[tuple[str, int], ...] = (
    ("PushEvent", 40),
    ("CreateEvent", 10),
    ("WatchEvent", 10),
    ("PullRequestEvent", 12),
    ("IssueCommentEvent", 9),
    ("IssuesEvent", 7),
    ("DeleteEvent", 5),
    ("ForkEvent", 4),
    ("ReleaseEvent", 3),
)
GH_BOT_TYPES = frozenset({"PushEvent", "PullRequestEvent", "CreateEvent", "DeleteEvent", "ReleaseEvent"})
GH_BAD_LINES = (
    "not json at all",
    '{"id": "1", "type": "PushEvent", "actor": {"id": 1',  # truncated mid-object
    "{}}",
    "[1, 2, 3",
    '{"id": ',
)


def _gh_user(user_id: int, login: str) -> dict:
    return {
        "id": user_id,
        "login": login,
        "display_login": login.removesuffix("[bot]"),
        "gravatar_id": "",
        "url": f"{GH_API}/users/{login}",
        "avatar_url": f"{GH_AVATARS}/{user_id}?",
    }


def _gh_full_user(user_id: int, login: str) -> dict:
    """A user object as nested in payloads (pull request, issue, comment authors)."""
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"{GH_AVATARS}/{user_id}?v=4",
        "gravatar_id": "",
        "url": f"{GH_API}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def _gh_sha(rng) -> str:
    return f"{rng.getrandbits(160):040x}"


def _gh_payload(rng, kind: str, actor: tuple[int, str], repo: tuple[int, str, int], created: str) -> dict:
    """A payload shaped like the real one for this event type (only a few fields survive the transform)."""
    repo_id, repo_name, _ = repo
    repo_url = f"{GH_API}/repos/{repo_name}"
    user = _gh_full_user(*actor)
    number = rng.randint(1, 5000)
    if kind == "PushEvent":
        size = rng.choice((1, 1, 1, 2, 3, 5, 8, 25))
        distinct = rng.randint(max(0, size - 2), size)
        commits = [
            {
                "sha": _gh_sha(rng),
                "author": {"email": f"{actor[1]}@users.noreply.github.com", "name": actor[1]},
                "message": f"Fix #{rng.randint(1, 5000)}: tidy up\n\nLonger explanation of the change.",
                "distinct": k < distinct,
                "url": f"{repo_url}/commits/{rng.getrandbits(64):016x}",
            }
            for k in range(min(size, 20))  # GH lists at most 20 commits, `size` counts them all
        ]
        return {
            "repository_id": repo_id,
            "push_id": rng.randint(10**10, 2 * 10**10),
            "size": size,
            "distinct_size": distinct,
            "ref": rng.choice(("refs/heads/main", "refs/heads/main", "refs/heads/master", "refs/heads/dev")),
            "head": _gh_sha(rng),
            "before": _gh_sha(rng),
            "commits": commits,
        }
    if kind == "PullRequestEvent":
        action = rng.choice(("opened", "opened", "closed", "closed", "closed", "reopened", "synchronize"))
        merged = action == "closed" and rng.random() < 0.7
        return {
            "action": action,
            "number": number,
            "pull_request": {
                "url": f"{repo_url}/pulls/{number}",
                "id": rng.randint(10**8, 2 * 10**9),
                "number": number,
                "state": "closed" if action == "closed" else "open",
                "locked": False,
                "title": f"Bump dependency {number}" if actor[1].endswith("[bot]") else f"Improve module {number}",
                "user": user,
                "body": "This pull request changes things.\r\n\r\n- [x] tests",
                "created_at": created,
                "merged_at": created if merged else None,
                "merged": merged,
                "comments": rng.randint(0, 20),
                "commits": rng.randint(1, 12),
                "additions": rng.randint(1, 900),
                "deletions": rng.randint(0, 300),
            },
        }
    if kind == "IssuesEvent":
        return {
            "action": rng.choice(("opened", "opened", "closed", "reopened")),
            "issue": {
                "url": f"{repo_url}/issues/{number}",
                "id": rng.randint(10**8, 2 * 10**9),
                "number": number,
                "title": f"Crash when loading file {number}",
                "user": user,
                "labels": [{"id": 1, "name": "bug", "color": "d73a4a", "default": True}],
                "state": "open",
                "comments": rng.randint(0, 9),
                "created_at": created,
                "body": "Steps to reproduce:\n1. open\n2. crash",
            },
        }
    if kind == "IssueCommentEvent":
        return {
            "action": "created",
            "issue": {
                "url": f"{repo_url}/issues/{number}",
                "id": rng.randint(10**8, 2 * 10**9),
                "number": number,
                "title": f"Question about {number}",
                "user": _gh_full_user(*rng.choice(GH_HUMANS)),
                "state": "open",
            },
            "comment": {
                "url": f"{repo_url}/issues/comments/{rng.randint(10**8, 2 * 10**9)}",
                "id": rng.randint(10**8, 2 * 10**9),
                "user": user,
                "created_at": created,
                "body": "Thanks, looks good to me \U0001f44d",
            },
        }
    if kind == "WatchEvent":
        return {"action": "started"}
    if kind == "CreateEvent":
        ref_type = rng.choice(("branch", "branch", "tag", "repository"))
        ref = {"branch": f"feature/{number}", "tag": f"v{number % 7}.{number % 13}.{number % 5}", "repository": None}
        return {
            "ref": ref[ref_type],
            "ref_type": ref_type,
            "master_branch": "main",
            "description": "A project",
            "pusher_type": "user",
        }
    if kind == "DeleteEvent":
        return {"ref": f"feature/{number}", "ref_type": "branch", "pusher_type": "user"}
    if kind == "ForkEvent":
        fork_id = rng.randint(10**8, 8 * 10**8)
        short = repo_name.split("/", 1)[1]
        return {
            "forkee": {
                "id": fork_id,
                "name": short,
                "full_name": f"{actor[1]}/{short}",
                "owner": user,
                "private": False,
                "html_url": f"https://github.com/{actor[1]}/{short}",
                "fork": True,
                "url": f"{GH_API}/repos/{actor[1]}/{short}",
                "created_at": created,
                "public": True,
            }
        }
    if kind == "ReleaseEvent":
        tag = f"v{number % 9}.{number % 17}.{number % 4}"
        return {
            "action": "published",
            "release": {
                "url": f"{repo_url}/releases/{number}",
                "id": rng.randint(10**8, 2 * 10**9),
                "tag_name": tag,
                "target_commitish": "main",
                "name": f"Release {tag}",
                "draft": False,
                "author": user,
                "prerelease": False,
                "created_at": created,
                "published_at": created,
                "assets": [],
                "body": "## Changes\n* many",
            },
        }
    raise ValueError(f"unknown event type {kind}")


def _utc_hour(hour: datetime) -> datetime:
    hour = hour.replace(tzinfo=UTC) if hour.tzinfo is None else hour.astimezone(UTC)
    return hour.replace(minute=0, second=0, microsecond=0)


def iter_gharchive_events(hour: datetime, count: int, seed: int) -> Iterator[dict]:
    """`count` GH Archive events of one hour (naive datetimes are UTC), deterministic for (hour, count, seed),
    one at a time (an hour of the benchmark's size never sits in memory as dicts).

    Shaped like the real feed: string ids increasing through the hour (unique across hours while an
    hour has at most a million events), created_at inside the hour in order, nested payloads per
    type (Push, Create, Watch, PullRequest, IssueComment, Issues, Delete, Fork, Release), `org` only
    on organisation repositories, some bot actors (`dependabot[bot]`...), a few busy repositories
    and a long tail, so ranking queries have clear winners and ties.
    """
    start = _utc_hour(hour)
    rng = random.Random(f"gharchive:{start:%Y-%m-%dT%H}:{count}:{seed}")  # noqa: S311 - sample data, not secrets
    stride = max(1, min(40, 1_000_000 // max(count, 1)))
    base = (int(start.timestamp()) // 3600) * 1_000_000
    seconds = sorted(rng.randrange(3600) for _ in range(count))
    types, type_weights = zip(*GH_EVENT_TYPES, strict=True)
    repo_weights = [w for _, _, w in GH_REPOS]
    for i in range(count):
        kind = rng.choices(types, type_weights)[0]
        repo = rng.choices(GH_REPOS, repo_weights)[0]
        actor = rng.choice(GH_BOTS) if kind in GH_BOT_TYPES and rng.random() < 0.2 else rng.choice(GH_HUMANS)
        created = (start + timedelta(seconds=seconds[i])).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "id": str(base + i * stride + rng.randrange(stride)),
            "type": kind,
            "actor": _gh_user(*actor),
            "repo": {"id": repo[0], "name": repo[1], "url": f"{GH_API}/repos/{repo[1]}"},
            "payload": _gh_payload(rng, kind, actor, repo, created),
            "public": True,
            "created_at": created,
        }
        owner = repo[1].split("/", 1)[0]
        if owner in GH_ORGS:
            org_id = GH_ORGS[owner]
            event["org"] = {
                "id": org_id,
                "login": owner,
                "gravatar_id": "",
                "url": f"{GH_API}/orgs/{owner}",
                "avatar_url": f"{GH_AVATARS}/{org_id}?",
            }
        yield event


def gharchive_events(hour: datetime, count: int, seed: int) -> list[dict]:
    """The events of `iter_gharchive_events(hour, count, seed)` as a list."""
    return list(iter_gharchive_events(hour, count, seed))


def gharchive_hour_path(folder: Path, hour: datetime) -> Path:
    """Where `gharchive-ingest` stores an hour: `folder/date=YYYY-MM-DD/YYYY-MM-DD-H.json.gz` (no leading zero)."""
    start = _utc_hour(hour)
    day = start.strftime("%Y-%m-%d")
    return folder / f"date={day}" / f"{day}-{start.hour}.json.gz"


def write_gharchive_lines(path: Path, lines: Iterable[str], compresslevel: int = 9, block: int = 5_000) -> Path:
    """Write lines as GH Archive does: gzip, one line each, newline-terminated (mtime 0: same bytes each time).

    `lines` is consumed `block` lines at a time, so a generator of any length is written in bounded memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel) as out,
    ):
        pending = iter(lines)
        while chunk := list(islice(pending, block)):
            out.write("".join(f"{line}\n" for line in chunk).encode("utf-8"))
    return path


def gharchive_line(event: dict) -> str:
    """One event as GH Archive writes it: compact JSON, non-ASCII kept as UTF-8."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def write_gharchive_hour(
    folder: Path, hour: datetime, count: int, seed: int, duplicates: int = 0, bad_lines: int = 0
) -> Path:
    """One hour file of `gharchive_events(hour, count, seed)` under `folder`, with `duplicates` exact
    repeats of earlier events and `bad_lines` broken lines inserted at seeded positions (see GH_BAD_LINES)."""
    lines = [gharchive_line(e) for e in gharchive_events(hour, count, seed)]
    rng = random.Random(f"gharchive-noise:{_utc_hour(hour):%Y-%m-%dT%H}:{seed}")  # noqa: S311 - sample data
    for _ in range(duplicates if lines else 0):
        original = rng.randrange(len(lines))
        lines.insert(rng.randint(original + 1, len(lines)), lines[original])
    for k in range(bad_lines):
        lines.insert(rng.randint(0, len(lines)), GH_BAD_LINES[k % len(GH_BAD_LINES)])
    return write_gharchive_lines(gharchive_hour_path(folder, hour), lines)


def write_devices(path: Path, devices: int) -> None:
    """A render-log file with one row per distinct device, to load many devices: `dev-0000000`...,
    frame rate 50 + (i % 100) / 8, gpu (i % 97) + 0.5, latency i % 1000."""
    with path.open("w") as out:
        out.write("timestamp,device_id,frame_rate,gpu_usage,latency_ms\n")
        for start in range(0, devices, 100_000):
            out.write(
                "".join(
                    f"2025-10-06T12:00:00,dev-{i:07d},{50 + i % 100 / 8},{i % 97 + 0.5},{i % 1000}\n"
                    for i in range(start, min(devices, start + 100_000))
                )
            )
