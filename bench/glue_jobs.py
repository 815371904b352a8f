"""The Glue jobs on `local[2]` against a DuckDB reference doing the same work on the same files.

Three benchmarks, each: generated input (seeded, streamed to disk, a small share of bad rows and
duplicates so the quarantine paths run), the job's own `main()` in one process, the same work in
DuckDB (2 threads, like `local[2]`; built-in read_csv / JSON functions / Parquet writer only, no
extension downloads) in another, and then a comparison of what both wrote, read back with DuckDB:
the loaded rows must be identical (EXCEPT ALL both ways is empty) and the quarantined rows must
have the same reasons in the same numbers.

- `sales`:     CSV uploads -> typed, validated, de-duplicated Parquet by order_date/source_file
- `gharchive`: GH Archive hour files (gzip JSON lines) -> 20 flat columns, Parquet by date/hour
- `sensor`:    a month of constant-value intervals -> a 1-minute grid for every sensor (>= 10M points)

What the reference does not do: the jobs' state markers (listing and a few tiny JSON files) and
their per-file Spark jobs for headers. Row order within a file is not tracked by the reference:
the generated duplicates are exact copies of valid rows, so which copy is kept changes no output.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import measure
from bench.measure import Check, Clock, Context, Measurement, Report, benchmark, human_bytes, run_isolated

CORES = 2  # local[2]; DuckDB gets as many threads
# Bump a generator's version when it changes: its cached inputs are then regenerated.
GENERATOR_VERSIONS = {"sales": 1, "gharchive": 2, "sensor": 1}
SEED = 20240601

SIZES: dict[str, dict[str, dict[str, int]]] = {
    "full": {
        "sales": {"rows": 5_000_000, "files": 6},
        "gharchive": {"events": 1_000_000, "hours": 24},
        "sensor": {"sensors": 240},  # x 44,640 one-minute points in March = 10,713,600 points
    },
    "quick": {
        "sales": {"rows": 20_000, "files": 2},
        "gharchive": {"events": 6_000, "hours": 3},
        "sensor": {"sensors": 3},
    },
}


def _sizes(ctx: Context, name: str) -> dict[str, int]:
    return SIZES["quick" if ctx.quick else "full"][name]


# --- cached inputs -----------------------------------------------------------------------------------


def cached_input(ctx: Context, name: str, params: dict[str, Any], write: Any) -> Path:
    """The folder of generated input for these parameters, written once (`write(folder, **params)`)."""

    def generate(folder: Path) -> dict[str, Any]:
        (folder / "files").mkdir()
        return {"params": params, "seed": SEED, **write(folder / "files", **params)}

    key = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    folder, _ = measure.cached_input(ctx, name, f"{key}-v{GENERATOR_VERSIONS[name]}-seed{SEED}", generate)
    return folder / "files"


def _input_note(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    stats = json.loads((folder.parent / "manifest.json").read_text())
    extra = ", ".join(f"{k} {v:,}" for k, v in stats.items() if isinstance(v, int) and k != "seed")
    return f"input: {len(files)} files, {human_bytes(size)} ({extra})"


class _Lines:
    """Buffered line writer: generators build lines one at a time and never hold a file in memory."""

    def __init__(self, handle: Any, block: int = 20_000) -> None:
        self.handle, self.block = handle, block
        self.buffer: list[str] = []

    def add(self, line: str) -> None:
        self.buffer.append(line)
        if len(self.buffer) >= self.block:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.handle.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()


# --- sales: generator ---------------------------------------------------------------------------------

SALES_HEADER = (
    "order_id,order_date,customer_id,product_id,product_name,category,region,quantity,unit_price,discount,"
    "sales_rep,notes"
)
SALES_SELECTED = (
    "order_id",
    "order_date",
    "customer_id",
    "product_id",
    "category",
    "region",
    "quantity",
    "unit_price",
    "discount",
)  # the job's default --columns
_CATEGORIES = ("Electronics", "Furniture", "Stationery", "Kitchen", "Garden", "Toys", "Sports", "Books")
_REGIONS = ("North", "South", "East", "West", "Central")
_REPS = tuple(
    f"{first} {last}"
    for first in ("Alice", "Bob", "Carla", "Dev", "Emi")
    for last in ("Chen", "Patel", "Gomez", "Okafor")
)
_DISCOUNTS = ("", "", "", "0", "0.05", "0.10", "0.15", "0.2500")
_NOTES = (
    '"Deliver to loading dock, not reception"',  # a quoted comma
    '"Customer said ""urgent"""',  # doubled quotes
    '"Leave at the door\nCall before delivery"',  # a quoted line break: the CSV is read multiLine
    "Bulk order",
)


def _products(rng: random.Random) -> list[tuple[str, str, str, str]]:
    products = []
    for i in range(400):
        category = _CATEGORIES[i % len(_CATEGORIES)]
        name = f"{category[:-1] if category.endswith('s') else category} item {i}"
        if i % 50 == 7:
            name = f'"{name}, large"'  # a quoted comma in a product name
        products.append((f"P-{1000 + i}", name, category, f"{rng.uniform(0.5, 900):.2f}"))
    return products


def _sales_bad(rng: random.Random, fields: list[str], plain: list[str]) -> str:
    """One bad row (each kind is a quarantine reason); `plain`: the same row with no quoted fields."""
    kind = rng.randrange(13)
    if kind == 8:
        return ",".join([*plain, "unexpected"])  # 13 fields
    if kind == 9:
        return ",".join(plain[:10])  # 10 fields
    changes = {
        0: {2: ""},  # customer_id missing
        1: {1: fields[1][:8] + "30" if fields[1][5:7] == "02" else fields[1][:8] + "32"},  # no such day
        2: {1: f"{fields[1][8:10]}/{fields[1][5:7]}/{fields[1][:4]}"},  # not yyyy-MM-dd
        3: {7: "0"},  # quantity out of range
        4: {7: "two"},
        5: {8: "12.345"},  # too many decimals
        6: {8: "-5.00"},
        7: {9: "1.5"},  # discount out of range
        10: {2: "C-" + "9" * 70},  # longer than 64 bytes
        11: {0: ""},  # order_id missing
        12: {7: "", 8: "n/a"},  # two problems at once
    }[kind]
    for index, value in changes.items():
        fields[index] = value
    return ",".join(fields)


def write_sales(folder: Path, rows: int, files: int) -> dict[str, int]:
    """`rows` CSV records over `files` monthly uploads: ~0.5 % bad rows, ~0.2 % exact duplicates."""
    products = _products(random.Random(SEED))  # noqa: S311 - benchmark data, not secrets
    bad = duplicates = multiline = 0
    for k in range(files):
        rng = random.Random(f"sales:{SEED}:{k}")  # noqa: S311 - benchmark data, not secrets
        month = k % 12 + 1
        count = rows // files + (1 if k < rows % files else 0)
        recent: deque[str] = deque(maxlen=500)
        with (folder / f"sales_2024_{month:02d}.csv").open("w", encoding="utf-8", newline="") as handle:
            out = _Lines(handle)
            out.add(SALES_HEADER)
            for i in range(count):
                draw = rng.random()
                if draw < 0.002 and recent:
                    out.add(rng.choice(recent))
                    duplicates += 1
                    continue
                product_id, name, category, price = rng.choice(products)
                quantity = str(rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 10, 12, 20)))
                if rng.random() < 0.01:
                    quantity = f" {quantity} "  # padded: valid once trimmed
                fields = [
                    f"SO-{month:02d}{i:08d}",
                    f"2024-{month:02d}-{rng.randint(1, 28):02d}",
                    f"C-{rng.randint(1, 40_000):05d}",
                    product_id,
                    name,
                    category,
                    rng.choice(_REGIONS),
                    quantity,
                    price,
                    rng.choice(_DISCOUNTS),
                    rng.choice(_REPS),
                    "",
                ]
                if draw < 0.007:
                    plain = [*fields[:4], f"Item {i}", *fields[5:]]
                    out.add(_sales_bad(rng, fields, plain))
                    bad += 1
                    continue
                if rng.random() < 0.03:
                    fields[11] = rng.choice(_NOTES)
                    multiline += "\n" in fields[11]
                line = ",".join(fields)
                recent.append(line)
                out.add(line)
            out.flush()
    return {"records": rows, "bad_rows": bad, "duplicates": duplicates, "multiline_notes": multiline}


# --- gharchive: generator -------------------------------------------------------------------------------

GH_DAY = datetime(2024, 1, 15, tzinfo=UTC)
_GH_TYPES = (
    ("PushEvent", 46),
    ("CreateEvent", 12),
    ("WatchEvent", 10),
    ("PullRequestEvent", 9),
    ("IssueCommentEvent", 7),
    ("IssuesEvent", 4),
    ("DeleteEvent", 4),
    ("ForkEvent", 3),
    ("PullRequestReviewEvent", 3),
    ("ReleaseEvent", 2),
)
_API = "https://api.github.com"


def _gh_user(uid: int) -> dict[str, Any]:
    login = f"dependabot{uid}[bot]" if uid % 97 == 0 else f"dev{uid}"
    return {
        "id": uid,
        "login": login,
        "display_login": login,
        "gravatar_id": "",
        "url": f"{_API}/users/{login}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?",
    }


def _gh_payload(rng: random.Random, kind: str, repo_name: str, actor: dict[str, Any], created: str) -> dict[str, Any]:
    number = rng.randint(1, 9000)
    url = f"{_API}/repos/{repo_name}"
    if kind == "PushEvent":
        size = rng.choice((1, 1, 1, 2, 3, 5, 8, 21))
        commits = [
            {
                "sha": f"{rng.getrandbits(160):040x}",
                "author": {"email": "a@example.com", "name": "A"},
                "message": f"Fix #{rng.randint(1, 9000)}: tidy up",
                "distinct": True,
                "url": f"{url}/commits/{rng.getrandbits(64):016x}",
            }
            for _ in range(min(size, 20))
        ]
        return {
            "repository_id": rng.randint(1, 10**8),
            "push_id": rng.randint(10**10, 2 * 10**10),
            "size": size,
            "distinct_size": max(0, size - rng.randint(0, 1)),
            "ref": "refs/heads/main",
            "head": f"{rng.getrandbits(160):040x}",
            "before": f"{rng.getrandbits(160):040x}",
            "commits": commits,
        }
    if kind in ("PullRequestEvent", "PullRequestReviewEvent"):
        action = rng.choice(("opened", "closed", "closed", "reopened")) if kind == "PullRequestEvent" else "created"
        merged = action == "closed" and rng.random() < 0.7
        return {
            "action": action,
            "number": number,
            "pull_request": {
                "url": f"{url}/pulls/{number}",
                "id": rng.randint(10**8, 2 * 10**9),
                "number": number,
                "state": "closed" if action == "closed" else "open",
                "title": f"Improve module {number}",
                "user": actor,
                "body": "Changes.\r\n- [x] tests",
                "created_at": created,
                "merged": merged,
                "additions": rng.randint(1, 900),
            },
        }
    if kind in ("IssuesEvent", "IssueCommentEvent"):
        issue = {
            "url": f"{url}/issues/{number}",
            "id": rng.randint(10**8, 2 * 10**9),
            "number": number,
            "title": f"Crash when loading file {number}",
            "user": actor,
            "state": "open",
            "body": "Steps:\n1.",
        }
        if kind == "IssuesEvent":
            return {"action": rng.choice(("opened", "closed")), "issue": issue}
        return {
            "action": "created",
            "issue": issue,
            "comment": {"id": rng.randint(10**8, 2 * 10**9), "user": actor, "body": "Thanks, looks good"},
        }
    if kind == "WatchEvent":
        return {"action": "started"}
    if kind == "CreateEvent":
        ref_type = rng.choice(("branch", "branch", "tag", "repository"))
        ref = {"branch": f"feature/{number}", "tag": f"v1.{number % 13}.0", "repository": None}[ref_type]
        return {"ref": ref, "ref_type": ref_type, "master_branch": "main", "pusher_type": "user"}
    if kind == "DeleteEvent":
        return {"ref": f"feature/{number}", "ref_type": "branch", "pusher_type": "user"}
    if kind == "ForkEvent":
        short = repo_name.split("/", 1)[1]
        return {
            "forkee": {
                "id": rng.randint(10**8, 8 * 10**8),
                "name": short,
                "full_name": f"{actor['login']}/{short}",
                "owner": actor,
                "fork": True,
            }
        }
    tag = f"v{number % 9}.{number % 17}.0"
    return {
        "action": "published",
        "release": {
            "id": rng.randint(10**8, 2 * 10**9),
            "tag_name": tag,
            "name": f"Release {tag}",
            "author": actor,
            "body": "## Changes",
        },
    }


def _gh_event(rng: random.Random, event_id: int, hour: datetime) -> dict[str, Any]:
    kinds, weights = zip(*_GH_TYPES, strict=True)
    kind = rng.choices(kinds, weights)[0]
    repo_id = int(rng.paretovariate(1.2) * 1000) % 200_000 + 1
    owner = f"org{repo_id % 300}" if repo_id % 3 == 0 else f"dev{repo_id * 7 % 50_000}"
    repo_name = f"{owner}/project-{repo_id}"
    actor = _gh_user(rng.randint(1, 50_000))
    created = (hour + timedelta(seconds=rng.randrange(3600))).strftime("%Y-%m-%dT%H:%M:%SZ")
    event: dict[str, Any] = {
        "id": str(event_id),
        "type": kind,
        "actor": actor,
        "repo": {"id": repo_id, "name": repo_name, "url": f"{_API}/repos/{repo_name}"},
        "payload": _gh_payload(rng, kind, repo_name, actor, created),
        "public": True,
        "created_at": created,
    }
    if owner.startswith("org"):
        org_id = 10_000 + repo_id % 300
        event["org"] = {"id": org_id, "login": owner, "gravatar_id": "", "url": f"{_API}/orgs/{owner}"}
    return event


def _gh_bad(rng: random.Random, event: dict[str, Any]) -> str:
    """One bad line (every kind is a quarantine reason of the job)."""
    kind = rng.randrange(8)
    if kind == 0:
        # Truncated inside a name or a text value: not a complete JSON object. (Cut right after a `:`,
        # Spark keeps the fields parsed so far and calls it "a field has the wrong JSON type".)
        line = json.dumps(event, separators=(",", ":"))
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
    return json.dumps(event, separators=(",", ":"))


def gharchive_name(hour: datetime) -> str:
    return f"date={hour:%Y-%m-%d}/{hour:%Y-%m-%d}-{hour.hour}.json.gz"


def write_gharchive(folder: Path, events: int, hours: int) -> dict[str, int]:
    """`events` lines over `hours` hour files of one day: ~0.3 % bad lines, ~0.5 % duplicates (mostly
    events of the previous hour delivered again, as GH Archive does at hour boundaries)."""
    bad = duplicates = 0
    previous: list[str] = []
    for h in range(hours):
        hour = GH_DAY + timedelta(hours=h)
        rng = random.Random(f"gharchive:{SEED}:{h}")  # noqa: S311 - benchmark data
        count = events // hours + (1 if h < events % hours else 0)
        path = folder / gharchive_name(hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        sample: list[str] = []
        recent: deque[str] = deque(maxlen=200)
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            text = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
            out = _Lines(text, block=5_000)
            for i in range(count):
                draw = rng.random()
                if draw < 0.005 and (previous or recent):
                    out.add(rng.choice(previous) if previous and draw < 0.004 else rng.choice(recent or previous))
                    duplicates += 1
                    continue
                event = _gh_event(rng, 34_000_000_000 + h * 10_000_000 + i, hour)
                if draw < 0.008:
                    out.add(_gh_bad(rng, event))
                    bad += 1
                    continue
                line = json.dumps(event, separators=(",", ":"))
                recent.append(line)
                if len(sample) < 2_000:
                    sample.append(line)
                out.add(line)
            out.flush()
            text.flush()
            text.detach()
        previous = sample
    return {"lines": events, "bad_lines": bad, "duplicates": duplicates}


# --- sensor: generator ----------------------------------------------------------------------------------

SENSOR_MONTH = "2024-03"
SENSOR_FROM = datetime(2024, 2, 26, tzinfo=UTC)  # uploads overlap the month on both sides
SENSOR_TO = datetime(2024, 4, 3, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_sensor(folder: Path, sensors: int) -> dict[str, int]:
    """Weekly uploads of constant-value intervals (1 min to 2 h; some gaps, some overlaps) for `sensors`
    sensors; each upload repeats ~3 % of the previous week's rows; ~0.3 % bad rows."""
    weeks = (SENSOR_TO - SENSOR_FROM).days // 7 + 1
    handles = [(folder / f"sensor_week_{w:02d}.csv").open("w", encoding="utf-8", newline="") for w in range(weeks)]
    outs = [_Lines(h) for h in handles]
    for out in outs:
        out.add("sensor_id,start_time,end_time,value,readings")
    rows = bad = repeats = 0
    try:
        for s in range(sensors):
            rng = random.Random(f"sensor:{SEED}:{s}")  # noqa: S311 - benchmark data
            sensor = f"sensor-{s:04d}"
            t = SENSOR_FROM + timedelta(seconds=rng.randrange(3600))
            value = rng.uniform(5, 30)
            while t < SENSOR_TO:
                length = rng.randint(60, 7200)
                end = t + timedelta(seconds=length - 1)
                value = round(value + rng.gauss(0, 0.5), 1)
                fields = [sensor, _iso(t), _iso(end), f"{value:.1f}", str(max(1, length // 60))]
                week = min(weeks - 1, (t - SENSOR_FROM).days // 7)
                draw = rng.random()
                if draw < 0.003:
                    kind = rng.randrange(8)
                    fields = {
                        0: lambda f: ["", *f[1:]],
                        1: lambda f: [f[0], f[1][:8] + "32" + f[1][10:], *f[2:]],
                        2: lambda f: [f[0], f[2], f[1], *f[3:]],  # end before start (when longer than 1 s)
                        3: lambda f: [*f[:3], "NaN", f[4]],
                        4: lambda f: [*f[:3], "n/a", f[4]],
                        5: lambda f: [*f[:4], "0"],
                        6: lambda f: [*f, "extra"],  # wrong number of fields
                        7: lambda f: [f[0], "", *f[2:]],
                    }[kind](fields)
                    bad += 1
                line = ",".join(fields)
                outs[week].add(line)
                rows += 1
                if week + 1 < weeks and rng.random() < 0.03:
                    outs[week + 1].add(line)  # the next upload repeats it
                    rows += 1
                    repeats += 1
                gap = rng.random()
                if gap < 0.05:
                    t = end + timedelta(seconds=rng.randint(60, 3600))  # nothing covers this stretch
                elif gap < 0.08:
                    t = t + timedelta(seconds=length // 2)  # overlaps the interval before
                else:
                    t = end + timedelta(seconds=1)
        for out in outs:
            out.flush()
    finally:
        for handle in handles:
            handle.close()
    return {"rows": rows, "bad_rows": bad, "repeated_rows": repeats, "sensors": sensors}


# --- approaches: the jobs ------------------------------------------------------------------------------


def _run_job(clock: Clock, module: str, argv: list[str]) -> dict[str, Any]:
    """The job's main(argv) on its own session (glue_common.spark_session, local[2]), started before the
    clock (main() reuses it); adds how many Spark jobs the run took (its actions and their stages' jobs)."""
    import importlib

    import glue_common

    job = importlib.import_module(module)
    spark = glue_common.spark_session(job.JOB)
    spark.sparkContext.setLogLevel("ERROR")
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    with clock:
        summary = job.main(argv)
    return {**summary, "spark_jobs": len(set(tracker.getJobIdsForGroup(None)) - before)}


def _locations(input_dir: str, root: str, *names: str) -> list[str]:
    """`--input_path <input_dir>` and `--<name>_path <root>/<name>` for each name."""
    paths = {"output": "out", "quarantine": "quarantine", "state": "state"}
    return ["--input_path", input_dir, *(a for n in names for a in (f"--{n}_path", f"{root}/{paths[n]}"))]


def spark_sales(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    return _run_job(clock, "sales_csv_to_parquet", _locations(input_dir, root, "output", "quarantine", "state"))


def spark_gharchive(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    argv = ["gharchive_events.py", *_locations(input_dir, root, "output", "quarantine", "state")]
    return _run_job(clock, "gharchive_events", argv)


def spark_sensor(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    argv = ["sensor_timeseries.py", *_locations(input_dir, root, "output", "quarantine")]
    return _run_job(clock, "sensor_timeseries", [*argv, "--month", SENSOR_MONTH, "--frequency", "1min"])


# --- approaches: the DuckDB references ----------------------------------------------------------------


def duckdb_connect(root: str | None = None) -> Any:
    """An in-memory DuckDB with local[2]'s parallelism that never downloads an extension."""
    import duckdb

    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={"threads": CORES, "autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def fetch_one(con: Any, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return tuple(row)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _blank_to_null(column: str) -> str:
    return rf"nullif(regexp_replace({column}, '^\s+|\s+$', '', 'g'), '')"


def _reasons(checks: list[tuple[str, str]]) -> str:
    """'; '-joined reasons of the failed checks, or NULL (concat_ws skips NULLs)."""
    joined = "concat_ws('; ', " + ", ".join(f"CASE WHEN {cond} THEN {_sql_text(text)} END" for cond, text in checks)
    return f"nullif({joined}), '')"


# name, kind, required, max bytes (strings) / scale, low, high (numbers): the job's published schema.
_SALES_RULES: dict[str, tuple[str, bool, Any]] = {
    "order_id": ("string", True, 64),
    "order_date": ("date", True, None),
    "customer_id": ("string", True, 64),
    "product_id": ("string", True, 64),
    "category": ("string", False, 256),
    "region": ("string", False, 256),
    "quantity": ("int", True, (0, "1", "2147483647")),
    "unit_price": ("decimal", True, (2, "0", "9999999999.99")),
    "discount": ("decimal", False, (4, "0", "1")),
}
_SALES_TYPES = {
    "quantity": "INTEGER",
    "unit_price": "DECIMAL(12, 2)",
    "discount": "DECIMAL(5, 4)",
    "order_date": "DATE",
}
_SALES_POSITIONS = {name: SALES_HEADER.split(",").index(name) + 1 for name in SALES_SELECTED}


def _sales_checks() -> tuple[list[str], list[tuple[str, str]]]:
    parsed, checks = [], [("malformed", "row does not have as many fields as the header")]
    for name, (kind, required, rule) in _SALES_RULES.items():
        t, w = f"t_{name}", f"w_{name}"
        if required:
            checks.append((f"{t} IS NULL", f"{name} is missing"))
        if kind == "date":
            parsed.append(
                f"CASE WHEN regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
                f"THEN try_cast({t} AS DATE) END AS {w}"
            )
            checks.append((f"{t} IS NOT NULL AND {w} IS NULL", f"{name} is not a date (yyyy-MM-dd)"))
        elif kind in ("int", "decimal"):
            scale, low, high = rule
            pattern = "[+-]?[0-9]+" if kind == "int" else rf"[+-]?([0-9]+(\.[0-9]{{0,{scale}}})?|\.[0-9]{{1,{scale}}})"
            what = "an integer" if kind == "int" else f"a number with at most {scale} decimals"
            parsed.append(f"try_cast({t} AS DECIMAL(38, {scale})) AS {w}")
            parsable = f"regexp_full_match({t}, {_sql_text(pattern)})"
            checks.append((f"{t} IS NOT NULL AND NOT {parsable}", f"{name} is not {what}"))
            checks.append(
                (
                    f"{t} IS NOT NULL AND {parsable} AND ({w} IS NULL OR {w} < {low} OR {w} > {high})",
                    f"{name} must be between {low} and {high}",
                )
            )
        else:
            parsed.append(f"{t} AS {w}")
            checks.append((f"strlen({t}) > {rule}", f"{name} is longer than {rule} bytes"))
    return parsed, checks


def duckdb_sales(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    """The sales conversion in SQL: typed, validated, de-duplicated; Parquet by order_date/source_file."""
    con = duckdb_connect(root)
    columns = SALES_HEADER.split(",")
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    parsed, checks = _sales_checks()
    selected = ", ".join(SALES_SELECTED)
    with clock:
        con.execute(f"""
            CREATE TEMP TABLE raw AS
            SELECT {selected}, regexp_extract(filename, '[^/]+$') AS source_file, false AS malformed
            FROM read_csv({_sql_text(input_dir + "/*.csv")}, header = true, auto_detect = false, columns = {spec},
                          delim = ',', quote = '"', escape = '"', filename = true, store_rejects = true,
                          max_line_size = 1048576)
        """)
        # Rows with the wrong field count: Spark pads or cuts them to the header and flags them; the same
        # from the rejected line (the generated malformed rows hold no quoted fields).
        picks = ", ".join(f"parts[{_SALES_POSITIONS[c]}] AS {c}" for c in SALES_SELECTED)
        con.execute(f"""
            INSERT INTO raw
            SELECT {picks}, regexp_extract(file_path, '[^/]+$'), true
            FROM (SELECT DISTINCT s.file_path, e.line, string_split(e.csv_line, ',') AS parts
                  FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id))
        """)
        texts = ", ".join(f"{_blank_to_null(c)} AS t_{c}" for c in SALES_SELECTED)
        con.execute(f"""
            CREATE TEMP TABLE checked AS
            WITH typed AS (SELECT *, {", ".join(parsed)} FROM (SELECT *, {texts} FROM raw)),
                 own AS (SELECT *, {_reasons(checks)} AS own FROM typed),
                 ranked AS (
                     SELECT *,
                         count(*) FILTER (WHERE own IS NULL) OVER w AS valid_copies,
                         row_number() OVER (PARTITION BY source_file, t_order_id ORDER BY own IS NOT NULL) AS copy
                     FROM own WINDOW w AS (PARTITION BY source_file, t_order_id))
            SELECT *, nullif(concat_ws('; ', own, CASE WHEN t_order_id IS NOT NULL AND valid_copies > 0
                                                       AND NOT (own IS NULL AND copy = 1)
                                                       THEN 'duplicate order_id (kept the first)' END), '') AS reason
            FROM ranked
        """)
        typed_out = ", ".join(
            f"CAST(w_{c} AS {_SALES_TYPES[c]}) AS {c}" if c in _SALES_TYPES else f"w_{c} AS {c}" for c in SALES_SELECTED
        )
        con.execute(f"""
            COPY (SELECT {typed_out}, source_file FROM checked WHERE reason IS NULL)
            TO {_sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (order_date, source_file))
        """)
        con.execute(f"""
            COPY (SELECT {selected}, reason, source_file FROM checked WHERE reason IS NOT NULL)
            TO {_sql_text(root + "/quarantine")} (FORMAT csv, HEADER, PARTITION_BY (source_file))
        """)
        rows_in, quarantined = fetch_one(con, "SELECT count(*), count(reason) FROM checked")
    return {"rows_in": rows_in, "rows_loaded": rows_in - quarantined, "rows_quarantined": quarantined}


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
    files = _sql_text(input_dir + "/*/*.json.gz")
    paths = "[" + ", ".join(_sql_text(p) for p in _GH_PATHS.values()) + "]"
    texts = ", ".join(f"v[{i + 1}] AS x_{name}" for i, name in enumerate(_GH_PATHS))
    wrong_type = " OR ".join(f"coalesce(json_type(obj, '{p}') NOT IN ('OBJECT', 'NULL'), false)" for p in _GH_OBJECTS)
    own = _reasons(_GH_OWN_CHECKS)
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
            TO {_sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (date, hour),
                                           ROW_GROUP_SIZE 8192, ROW_GROUPS_PER_FILE 1)
        """)
        con.execute(f"""
            COPY (SELECT reason, raw_line, raw_id AS id, event_type AS type, raw_created_at AS created_at,
                         raw_actor_id AS actor_id, x_actor_login AS actor_login, raw_repo_id AS repo_id,
                         x_repo_name AS repo_name, source_file
                  FROM checked WHERE reason IS NOT NULL)
            TO {_sql_text(root + "/quarantine")} (FORMAT json, PARTITION_BY (source_file))
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


def _grid() -> tuple[int, int, int, int]:
    """(start µs, end µs, step µs, points) of March 2024 at one minute."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    end = datetime(2024, 4, 1, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = 60 * 1_000_000
    start_us, end_us = (start - epoch) // timedelta(microseconds=1), (end - epoch) // timedelta(microseconds=1)
    return start_us, end_us, step, (end_us - start_us) // step


def duckdb_sensor(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    """The sensor expansion in SQL: validated intervals -> every grid point of the month per sensor."""
    con = duckdb_connect(root)
    start_us, end_us, step, points = _grid()
    columns = ("sensor_id", "start_time", "end_time", "value", "readings")
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    iso = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)?)?"

    def blank(c: str) -> str:
        return f"({c} IS NULL OR {c} = '')"

    (Path(root) / "quarantine" / f"month={SENSOR_MONTH}").mkdir(parents=True, exist_ok=True)

    with clock:
        con.execute(f"""
            CREATE TEMP TABLE raw AS
            SELECT *, false AS malformed
            FROM read_csv({_sql_text(input_dir + "/**/*.csv")}, header = true, auto_detect = false, columns = {spec},
                          delim = ',', quote = '"', escape = '\\', filename = true, store_rejects = true)
        """)
        con.execute("""
            INSERT INTO raw
            SELECT parts[1], parts[2], parts[3], parts[4], parts[5], file_path, true
            FROM (SELECT DISTINCT s.file_path, e.line, string_split(e.csv_line, ',') AS parts
                  FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id))
        """)
        reasons = _reasons(
            [
                ("malformed", "wrong number of fields"),
                (blank("s"), "sensor_id is missing"),
                (blank("st"), "start_time is missing"),
                (f"NOT {blank('st')} AND t0 IS NULL", "start_time is not a timestamp"),
                (blank("et"), "end_time is missing"),
                (f"NOT {blank('et')} AND t1 IS NULL", "end_time is not a timestamp"),
                ("t1 < t0", "end_time before start_time"),
                (blank("vt"), "value is missing"),
                (f"NOT {blank('vt')} AND v IS NULL", "value is not a number"),
                ("isnan(v) OR isinf(v)", "value is not a finite number"),
                (blank("rt"), "readings is missing"),
                (f"NOT {blank('rt')} AND coalesce(r < 1, true)", "readings is not a positive integer"),
            ]
        )
        con.execute(f"""
            CREATE TEMP TABLE checked AS
            WITH t AS (SELECT *, trim(sensor_id) AS s, trim(start_time) AS st, trim(end_time) AS et,
                              trim(value) AS vt, trim(readings) AS rt FROM raw),
                 typed AS (SELECT *,
                    CASE WHEN regexp_full_match(st, '{iso}') THEN try_cast(st AS TIMESTAMPTZ) END AS t0,
                    CASE WHEN regexp_full_match(et, '{iso}') THEN try_cast(et AS TIMESTAMPTZ) END AS t1,
                    try_cast(vt AS DOUBLE) AS v,
                    CASE WHEN regexp_full_match(rt, '[0-9]{{1,18}}') THEN try_cast(rt AS BIGINT) END AS r
                 FROM t)
            SELECT *, {reasons} AS reason FROM typed
        """)
        con.execute(f"""
            CREATE TEMP TABLE intervals AS
            SELECT s AS sensor_id, epoch_us(t0) AS s_us, epoch_us(t1) AS e_us, v AS value,
                   (greatest(epoch_us(t0), {start_us}) - {start_us} + {step - 1}) // {step} AS first_k,
                   (least(epoch_us(t1), {end_us - 1}) - {start_us}) // {step} AS last_k
            FROM checked WHERE reason IS NULL AND epoch_us(t0) < {end_us} AND epoch_us(t1) >= {start_us}
        """)
        con.execute(f"""
            COPY (
                WITH covered AS (
                    SELECT sensor_id, k, max({{'s': s_us, 'e': e_us, 'v': value}}) AS winner
                    FROM (SELECT sensor_id, unnest(range(first_k, last_k + 1)) AS k, s_us, e_us, value
                          FROM intervals WHERE first_k <= last_k)
                    GROUP BY sensor_id, k),
                grid AS (SELECT sensor_id, k FROM (SELECT DISTINCT sensor_id FROM intervals), range({points}) r(k))
                SELECT g.sensor_id, make_timestamp({start_us} + g.k * {step})::TIMESTAMPTZ AS ts,
                       c.winner.v AS value, c.winner IS NULL AS is_gap, '{SENSOR_MONTH}' AS month
                FROM grid g LEFT JOIN covered c USING (sensor_id, k)
                ORDER BY g.sensor_id, g.k)
            TO {_sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (month))
        """)
        con.execute(f"""
            COPY (SELECT sensor_id, start_time, end_time, value, readings, filename AS source_file, reason
                  FROM checked WHERE reason IS NOT NULL)
            TO {_sql_text(root + "/quarantine/month=" + SENSOR_MONTH + "/quarantine.csv")} (FORMAT csv, HEADER)
        """)
        rows_in, valid = fetch_one(con, "SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM checked")
        intervals, sensors = fetch_one(con, "SELECT count(*), count(DISTINCT sensor_id) FROM intervals")
        (gaps,) = fetch_one(
            con, f"SELECT count(*) FROM read_parquet({_sql_text(root + '/out/**/*.parquet')}) WHERE is_gap"
        )
    return {
        "rows_in": rows_in,
        "rows_valid": valid,
        "rows_quarantined": rows_in - valid,
        "intervals_in_month": intervals,
        "sensors": sensors,
        "points": sensors * points,
        "gap_points": gaps,
    }


# --- comparing what both wrote ------------------------------------------------------------------------------


def _except_both_ways(con: Any, left: str, right: str) -> tuple[int, int, int, int]:
    """(rows in left, rows in right, left EXCEPT ALL right, right EXCEPT ALL left)."""
    n_left, n_right, only_left, only_right = fetch_one(
        con,
        f"""
        SELECT (SELECT count(*) FROM ({left})), (SELECT count(*) FROM ({right})),
               (SELECT count(*) FROM ({left} EXCEPT ALL {right})), (SELECT count(*) FROM ({right} EXCEPT ALL {left}))
    """,
    )
    return n_left, n_right, only_left, only_right


def _same_rows(con: Any, what: str, left: str, right: str) -> Check:
    n_left, n_right, only_left, only_right = _except_both_ways(con, left, right)
    ok = n_left == n_right and only_left == 0 and only_right == 0
    return Check(
        what, ok, f"{n_left:,} vs {n_right:,} rows; only in the job {only_left:,}, only in the reference {only_right:,}"
    )


def _reason_histograms(con: Any, left: str, right: str) -> Check:
    query = "SELECT reason, count(*) AS n FROM ({}) GROUP BY reason"
    _, _, only_left, only_right = _except_both_ways(con, query.format(left), query.format(right))
    kinds = fetch_one(con, f"SELECT count(*), sum(n) FROM ({query.format(left)})")
    return Check(
        "quarantine reasons (every distinct reason text and its count)",
        only_left == 0 and only_right == 0 and kinds[0] > 0,
        f"{kinds[0]} distinct reasons over {int(kinds[1] or 0):,} rows; differing groups {only_left} / {only_right}",
    )


def _figure_checks(job: Measurement, ref: Measurement, keys: tuple[str, ...]) -> list[Check]:
    return [Check.equal(key, job.figures.get(key), ref.figures.get(key)) for key in keys]


def verify_sales(job_root: Path, ref_root: Path) -> list[Check]:
    con = duckdb_connect()
    cols = "order_id, customer_id, product_id, category, region, quantity, unit_price, discount"
    hive = "hive_partitioning = true, hive_types = {'order_date': 'DATE', 'source_file': 'VARCHAR'}"

    def out(root: Path) -> str:
        return f"SELECT {cols}, order_date, source_file FROM read_parquet('{root}/out/**/*.parquet', {hive})"

    def quarantine(root: Path, escape: str) -> str:
        return (
            f"SELECT reason FROM read_csv('{root}/quarantine/**/*.csv', header = true, all_varchar = true, "
            f"hive_partitioning = true, quote = '\"', escape = '{escape}')"
        )

    return [
        _same_rows(con, "loaded rows identical (every column, EXCEPT ALL both ways)", out(job_root), out(ref_root)),
        # Spark's CSV writer escapes quotes with a backslash, DuckDB's by doubling them.
        _reason_histograms(con, quarantine(job_root, "\\"), quarantine(ref_root, '"')),
    ]


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
        _same_rows(con, "loaded rows identical (22 columns, EXCEPT ALL both ways)", out(job_root), out(ref_root)),
        _reason_histograms(con, quarantine(job_root), quarantine(ref_root)),
        Check("the job's files hold at most 10,000 records", (max_rows or 0) <= 10_000, f"largest {max_rows or 0:,}"),
    ]


def verify_sensor(job_root: Path, ref_root: Path) -> list[Check]:
    con = duckdb_connect()

    def out(root: Path) -> str:
        parquet = f"read_parquet('{root}/out/**/*.parquet', hive_partitioning = true)"
        return f"SELECT sensor_id, ts, value, is_gap, month FROM {parquet}"

    def quarantine(root: Path) -> str:
        return f"SELECT reason FROM read_csv('{root}/quarantine/**/*.csv', header = true, all_varchar = true)"

    return [
        _same_rows(
            con,
            "points identical (sensor_id, ts, value, is_gap, month; EXCEPT ALL both ways)",
            out(job_root),
            out(ref_root),
        ),
        _reason_histograms(con, quarantine(job_root), quarantine(ref_root)),
    ]


# --- the benchmarks -------------------------------------------------------------------------------------------


def _run_pair(ctx: Context, input_dir: Path, job_fn: Any, ref_fn: Any) -> tuple[Measurement, Measurement, Path, Path]:
    job_root, ref_root = ctx.run_dir / "job", ctx.run_dir / "reference"
    job = run_isolated(
        job_fn, JOB_LABEL, outputs=job_root / "out", log_dir=ctx.run_dir, input_dir=str(input_dir), root=str(job_root)
    )
    ref = run_isolated(
        ref_fn, REF_LABEL, outputs=ref_root / "out", log_dir=ctx.run_dir, input_dir=str(input_dir), root=str(ref_root)
    )
    return job, ref, job_root, ref_root


JOB_LABEL = "Glue job, Spark local[2]"
REF_LABEL = "DuckDB reference, 2 threads"


def _files_note(root: Path, what: str, suffixes: tuple[str, ...]) -> str:
    from bench.measure import data_files

    sizes = data_files(root, suffixes)
    mean = human_bytes(sum(sizes) / len(sizes)) if sizes else "-"
    return f"{what}: {len(sizes):,} files, mean {mean}"


def _spark_note(job: Measurement) -> str:
    return (
        f"the job ran {job.figures['spark_jobs']} Spark jobs (its actions, and the extra jobs adaptive execution "
        "and partitioned writes start); no Python UDFs; only counts (and state markers) reach the driver"
    )


# What these benchmarks found in the scripts, and what was done (measured with BENCH_GLUE_SCRIPTS pointing at
# the scripts before the change, full sizes, on the machine of bench/RESULTS.md).
FINDINGS = {
    "sales": "found: trimming with regexp_replace(^\\s+|\\s+$) was evaluated once per use of each column "
    "(CollapseProject inlines it into every check): job work 184 s. Now btrim of the same six characters: 90 s, "
    "identical output",
    "sensor": "found: the counts went through two actions (rows, then in-month intervals and sensors). Now one "
    "aggregation: Spark jobs before the writes 6 -> 4; the time saved (< 1 s) is within this machine's noise",
    "gharchive": "found nothing to fix: one read of the hours, one shuffle for the de-duplication, per-file counts "
    "from the cached rows, files of at most 10,000 rows",
}


@benchmark("sales", title="sales CSV -> validated, de-duplicated Parquet (sales_csv_to_parquet)", order=10)
def bench_sales(ctx: Context) -> Report:
    input_dir = cached_input(ctx, "sales", _sizes(ctx, "sales"), write_sales)
    job, ref, job_root, ref_root = _run_pair(ctx, input_dir, spark_sales, duckdb_sales)
    checks = _figure_checks(job, ref, ("rows_in", "rows_loaded", "rows_quarantined"))
    checks.append(
        Check("some rows quarantined", job.figures["rows_quarantined"] > 0, f"{job.figures['rows_quarantined']:,}")
    )
    checks += verify_sales(job_root, ref_root)
    return Report(
        name="sales",
        title=f"{_sizes(ctx, 'sales')['rows']:,} CSV rows -> typed, validated, de-duplicated Parquet",
        measurements=[job, ref],
        reference=REF_LABEL,
        rows_key="rows_in",
        rows_label="rows in",
        checks=checks,
        notes=[
            _input_note(input_dir),
            "output: Parquet partitioned by order_date/source_file (one file per partition; the layout is the job's)",
            _files_note(job_root / "quarantine", "job quarantine", (".csv",)),
            _spark_note(job),
            FINDINGS["sales"],
        ],
    )


@benchmark("gharchive", title="GH Archive hours -> flat Parquet (gharchive_events)", order=20)
def bench_gharchive(ctx: Context) -> Report:
    sizes = _sizes(ctx, "gharchive")
    input_dir = cached_input(ctx, "gharchive", sizes, write_gharchive)
    job, ref, job_root, ref_root = _run_pair(ctx, input_dir, spark_gharchive, duckdb_gharchive)
    checks = _figure_checks(job, ref, ("rows_in", "rows_loaded", "rows_quarantined", "duplicates"))
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
            _input_note(input_dir),
            "output: Parquet by date/hour, at most 10,000 records per file (the job's rule; DuckDB writes 8,192-row "
            "files, its row groups being multiples of 2,048)",
            _files_note(job_root / "quarantine", "job quarantine", (".json",)),
            _spark_note(job),
            FINDINGS["gharchive"],
        ],
    )


@benchmark("sensor", title="sensor intervals -> 1-minute series (sensor_timeseries)", order=30)
def bench_sensor(ctx: Context) -> Report:
    sizes = _sizes(ctx, "sensor")
    input_dir = cached_input(ctx, "sensor", sizes, write_sensor)
    job, ref, job_root, ref_root = _run_pair(ctx, input_dir, spark_sensor, duckdb_sensor)
    keys = ("rows_in", "rows_valid", "rows_quarantined", "intervals_in_month", "sensors", "points", "gap_points")
    checks = _figure_checks(job, ref, keys)
    checks += verify_sensor(job_root, ref_root)
    return Report(
        name="sensor",
        title=f"a month of intervals for {sizes['sensors']:,} sensors -> {job.figures['points']:,} one-minute points",
        measurements=[job, ref],
        reference=REF_LABEL,
        rows_key="points",
        rows_label="points out",
        checks=checks,
        notes=[
            _input_note(input_dir),
            f"input rows: {job.figures['rows_in']:,}; intervals in the month: {job.figures['intervals_in_month']:,}",
            "output: the job writes ceil(points / 5,000,000) files, one per task of the expansion (its "
            "ROWS_PER_FILE); DuckDB writes one",
            _files_note(job_root / "quarantine", "job quarantine", (".csv",)),
            _spark_note(job),
            FINDINGS["sensor"],
        ],
    )
