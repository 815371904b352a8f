"""Loads into one table serialize: many `render-summary` processes at once against a real PostgreSQL.

Each load's transaction starts with `LOCK <per-file table>, <summary table>` (job_runtime.sql.lock), as
Redshift's documentation advises for concurrent writers ("Serializable isolation",
https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html, and "LOCK",
https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html: the lock waits for conflicting locks; a
transaction that cannot be serialized is aborted instead). The tables are created before that
transaction (LOCK needs them), each CREATE on its own, retried when it loses the race to a concurrent
one (job_runtime.warehouse.split_setup). The processes sign in as the loader role, as the Batch job does.
"""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.warehouse_access import Loader
from job_runtime import sql, warehouse
from localrun.postgres import login_dsn, setup_access
from tests.jobs.emf import one_run_summary

CONSOLE_SCRIPT = Path(sys.executable).parent / "render-summary"
HEADER = "timestamp,device_id,frame_rate,gpu_usage,latency_ms\n"
FILES = 22  # distinct files; two of them are loaded twice at the same time as well
SHARED_DEVICES = [f"shared-{d:02d}" for d in range(8)]  # in every file: every load touches their totals


def file_rows(i: int) -> list[tuple[str, float, float, int]]:
    """File i: three rows per shared device and two per device of its own, plus one bad row."""
    rows = []
    for d, device in enumerate(SHARED_DEVICES):
        for r in range(3):
            fps, gpu = 30 + i + d * 0.5 + r * 0.25, 40 + (i * 7 + d + r) % 50 + 0.125
            rows.append((device, fps, gpu, 10 + (i * 3 + d + r) % 40))
    for d in range(4):
        for r in range(2):
            rows.append((f"file{i:02d}-{d}", 50 + r * 0.5, 60 + d, 20 + i + r))
    return rows


def write_file(path: Path, i: int) -> None:
    lines = [f"2025-10-06T12:00:{n % 60:02d},{device},{fps!r},{gpu!r},{latency}\n"
             for n, (device, fps, gpu, latency) in enumerate(file_rows(i))]  # fmt: skip
    lines.insert(5, "2025-10-06T12:00:00,shared-00,fast,50.0,10\n")  # quarantined: rows_in counts it
    path.write_text(HEADER + "".join(lines))


@pytest.fixture
def loader(postgres_dsn: str) -> Iterator[tuple[str, str]]:
    """(schema, DSN of a login holding only the render-log loader role for that schema)."""
    schema = f"conc_{uuid.uuid4().hex[:10]}"
    setup_access(postgres_dsn, [Loader("render_logs_loader", schema)])
    yield schema, login_dsn(postgres_dsn, "IAMR:render-logs-job", "render_logs_loader")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def run_all_at_once(paths: list[Path], dsn: str, schema: str, tmp_path: Path) -> list[dict]:
    """Start every process before waiting for any; returns their JSON run summaries."""
    processes = [
        subprocess.Popen(
            [
                str(CONSOLE_SCRIPT),
                "--input",
                str(path),
                "--quarantine",
                str(tmp_path / "q"),
                "--warehouse",
                "postgres",
                "--postgres-dsn",
                dsn,
                "--schema",
                schema,
                "--stage",
                str(tmp_path / "stage"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        summaries.append(one_run_summary(out, pipeline="render-logs", job="render_summary"))
    return summaries


def snapshot(dsn: str, schema: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(dsn) as conn:
        by_file = conn.execute(f"SELECT * FROM {schema}.performance_summary_by_file ORDER BY 1, 2").fetchall()
        summary = conn.execute(f"SELECT * FROM {schema}.performance_summary ORDER BY 1").fetchall()
    return by_file, summary


def test_twenty_four_loads_at_once_all_land_and_every_row_is_counted(loader: tuple[str, str], tmp_path: Path) -> None:
    schema, dsn = loader
    paths = []
    for i in range(FILES):
        paths.append(tmp_path / f"render_{i:02d}.csv")
        write_file(paths[-1], i)
    # The tables do not exist yet: the first loads race to create them, too.
    summaries = run_all_at_once([*paths, paths[0], paths[1]], dsn, schema, tmp_path)

    assert len(summaries) == FILES + 2 >= 20
    for i, run in enumerate(summaries):
        expected = len(file_rows(i % FILES))
        assert (run["status"], run["RowsIn"], run["RowsLoaded"], run["RowsQuarantined"]) == (
            "succeeded", expected + 1, expected, 1,
        )  # fmt: skip

    by_file, summary = snapshot(dsn, schema)
    # Per file: each device's count and max exactly, its sums to the last few bits (addition order).
    expected_by_file = {}
    for i, path in enumerate(paths):
        devices: dict[str, list[tuple[str, float, float, int]]] = {}
        for row in file_rows(i):
            devices.setdefault(row[0], []).append(row)
        for device, rows in devices.items():
            expected_by_file[(path.resolve().as_uri(), device)] = rows
    assert [(uri, device) for uri, device, *_ in by_file] == sorted(expected_by_file)
    for uri, device, sum_fps, sum_gpu, max_latency, count in by_file:
        rows = expected_by_file[(uri, device)]
        assert (max_latency, count) == (max(r[3] for r in rows), len(rows))
        assert sum_fps == pytest.approx(math.fsum(r[1] for r in rows), rel=1e-13)
        assert sum_gpu == pytest.approx(math.fsum(r[2] for r in rows), rel=1e-13)

    # Totals: one row per device over every file; every loaded row counted once (the doubled loads too).
    all_rows: dict[str, list[tuple[str, float, float, int]]] = {}
    for rows in expected_by_file.values():
        for row in rows:
            all_rows.setdefault(row[0], []).append(row)
    assert [row[0] for row in summary] == sorted(all_rows)
    for device, avg_fps, avg_gpu, max_latency, count in summary:
        rows = all_rows[device]
        assert (max_latency, count) == (max(r[3] for r in rows), len(rows))
        assert avg_fps == pytest.approx(math.fsum(r[1] for r in rows) / len(rows), rel=1e-13)
        assert avg_gpu == pytest.approx(math.fsum(r[2] for r in rows) / len(rows), rel=1e-13)
    loaded = sum(s["RowsLoaded"] for s in summaries[:FILES])
    assert sum(r[5] for r in by_file) == sum(r[4] for r in summary) == loaded == FILES * 32
    assert dict((r[0], r[4]) for r in summary)["shared-00"] == 3 * FILES

    # The same files again, all at once: nothing changes (idempotent under concurrency).
    run_all_at_once(paths[:20], dsn, schema, tmp_path)
    again_by_file, again_summary = snapshot(dsn, schema)
    assert again_by_file == by_file
    assert [(r[0], r[3], r[4]) for r in again_summary] == [(r[0], r[3], r[4]) for r in summary]
    for new, old in zip(again_summary, summary, strict=True):
        assert new[1:3] == pytest.approx(old[1:3], rel=1e-13)
    assert not list((tmp_path / "stage").iterdir())  # every stage removed after its load


def test_the_load_transaction_starts_with_lock_after_its_creates() -> None:
    from render_summary.warehouse import load_statements

    setup, transaction = warehouse.split_setup(load_statements("s3://b/k.csv", "public", "performance_summary"))
    assert [s.split(" (")[0] for s in setup] == [
        "CREATE TABLE IF NOT EXISTS public.performance_summary_by_file",
        "CREATE TABLE IF NOT EXISTS public.performance_summary",
    ]
    assert transaction[0] == "LOCK public.performance_summary_by_file, public.performance_summary"
    assert not any(s.startswith("CREATE TABLE IF NOT EXISTS") for s in transaction)
    assert sql.lock("a.t") == "LOCK a.t"
    with pytest.raises(ValueError, match="LOCK needs at least one table"):
        sql.lock()


def test_concurrent_creates_of_a_new_table_all_succeed(postgres_dsn: str) -> None:
    """PostgreSQL: two transactions creating the same new table: the second fails with a unique violation
    on pg_type once the first commits, IF NOT EXISTS notwithstanding. Retried, it finds the table."""
    schema = f"race_{uuid.uuid4().hex[:10]}"
    table = f"{schema}.t"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        create = sql.create_table(table, ["k INT4 NOT NULL"], ["k"])
        with psycopg.connect(postgres_dsn) as first, psycopg.connect(postgres_dsn, autocommit=True) as second:
            first.execute(create)  # uncommitted
            second.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                second.execute(create)  # waits on the first's pg_type row
        # The race itself, by processes: eight at once, each then LOCKs and inserts its own key.
        code = (
            "import sys; from job_runtime import warehouse, sql\n"
            f"warehouse.run_postgres_transaction(sys.argv[1], [{create!r}, sql.lock({table!r}), "
            f"'INSERT INTO {table} VALUES (' + sys.argv[2] + ')'])\n"
        )
        processes = [
            subprocess.Popen([sys.executable, "-c", code, postgres_dsn, str(k)], stderr=subprocess.PIPE, text=True)
            for k in range(8)
        ]
        errors = [p.communicate(timeout=120)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 8, errors
        with psycopg.connect(postgres_dsn) as conn:
            assert conn.execute(f"SELECT k FROM {table} ORDER BY k").fetchall() == [(k,) for k in range(8)]
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
