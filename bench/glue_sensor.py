"""Benchmark `sensor`: the Glue job `sensor_timeseries` against DuckDB doing the same work.

A month of constant-value intervals -> a 1-minute grid for every sensor (>= 10M points at full size).
The input: weekly uploads overlapping the month on both sides, with gaps, overlapping intervals,
rows repeated by the next upload and a few bad rows. How the pair is run and compared:
bench/glue_shared.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.glue_shared import (
    REF_LABEL,
    SEED,
    LineWriter,
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
from bench.measure import Check, Clock, Context, Report, benchmark, run_isolated

GENERATOR_VERSION = 1  # bump when write_sensor changes: cached inputs are regenerated
SIZES = {
    "full": {"sensors": 240},  # x 44,640 one-minute points in March = 10,713,600 points
    "quick": {"sensors": 3},
}


# --- input -------------------------------------------------------------------------------------------

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
    outs = [LineWriter(h) for h in handles]
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


# --- the job ---------------------------------------------------------------------------------------


def spark_sensor(clock: Clock, *, input_dir: str, root: str) -> dict[str, Any]:
    argv = ["sensor_timeseries.py", *locations(input_dir, root, "output", "quarantine")]
    return run_job(clock, "sensor_timeseries", [*argv, "--month", SENSOR_MONTH, "--frequency", "1min"])


# --- the DuckDB reference ----------------------------------------------------------------------------


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
            FROM read_csv({sql_text(input_dir + "/**/*.csv")}, header = true, auto_detect = false, columns = {spec},
                          delim = ',', quote = '"', escape = '\\', filename = true, store_rejects = true)
        """)
        con.execute("""
            INSERT INTO raw
            SELECT parts[1], parts[2], parts[3], parts[4], parts[5], file_path, true
            FROM (SELECT DISTINCT s.file_path, e.line, string_split(e.csv_line, ',') AS parts
                  FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id))
        """)
        reasons_sql = reasons(
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
            SELECT *, {reasons_sql} AS reason FROM typed
        """)
        con.execute(f"""
            CREATE TEMP TABLE intervals AS
            SELECT s AS sensor_id, epoch_us(t0) AS s_us, epoch_us(t1) AS e_us, v AS value, r AS readings,
                   (greatest(epoch_us(t0), {start_us}) - {start_us} + {step - 1}) // {step} AS first_k,
                   (least(epoch_us(t1), {end_us - 1}) - {start_us}) // {step} AS last_k
            FROM checked WHERE reason IS NULL AND epoch_us(t0) < {end_us} AND epoch_us(t1) >= {start_us}
        """)
        con.execute(f"""
            COPY (
                WITH covered AS (
                    SELECT sensor_id, k, max({{'s': s_us, 'e': e_us, 'v': value, 'r': readings}}) AS winner
                    FROM (SELECT sensor_id, unnest(range(first_k, last_k + 1)) AS k, s_us, e_us, value, readings
                          FROM intervals WHERE first_k <= last_k)
                    GROUP BY sensor_id, k),
                grid AS (SELECT sensor_id, k FROM (SELECT DISTINCT sensor_id FROM intervals), range({points}) r(k))
                SELECT g.sensor_id, make_timestamp({start_us} + g.k * {step})::TIMESTAMPTZ AS ts,
                       c.winner.v AS value, c.winner.r AS readings, c.winner IS NULL AS is_gap,
                       '{SENSOR_MONTH}' AS month
                FROM grid g LEFT JOIN covered c USING (sensor_id, k)
                ORDER BY g.sensor_id, g.k)
            TO {sql_text(root + "/out")} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (month))
        """)
        con.execute(f"""
            COPY (SELECT sensor_id, start_time, end_time, value, readings, filename AS source_file, reason
                  FROM checked WHERE reason IS NOT NULL)
            TO {sql_text(root + "/quarantine/month=" + SENSOR_MONTH + "/quarantine.csv")} (FORMAT csv, HEADER)
        """)
        rows_in, valid = fetch_one(con, "SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM checked")
        intervals, sensors = fetch_one(con, "SELECT count(*), count(DISTINCT sensor_id) FROM intervals")
        (gaps,) = fetch_one(
            con, f"SELECT count(*) FROM read_parquet({sql_text(root + '/out/**/*.parquet')}) WHERE is_gap"
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


# --- comparing what both wrote ----------------------------------------------------------------------


def verify_sensor(job_root: Path, ref_root: Path) -> list[Check]:
    con = duckdb_connect()

    def out(root: Path) -> str:
        parquet = f"read_parquet('{root}/out/**/*.parquet', hive_partitioning = true)"
        return f"SELECT sensor_id, ts, value, readings, is_gap, month FROM {parquet}"

    def quarantine(root: Path) -> str:
        return f"SELECT reason FROM read_csv('{root}/quarantine/**/*.csv', header = true, all_varchar = true)"

    return [
        same_rows(
            con,
            "points identical (sensor_id, ts, value, readings, is_gap, month; EXCEPT ALL both ways)",
            out(job_root),
            out(ref_root),
        ),
        reason_histograms(con, quarantine(job_root), quarantine(ref_root)),
    ]


# --- the benchmark ------------------------------------------------------------------------------------


@benchmark("sensor", title="sensor intervals -> 1-minute series (sensor_timeseries)", order=30)
def bench_sensor(ctx: Context) -> Report:
    sizes = sized(ctx, SIZES)
    input_dir = cached_input(ctx, "sensor", GENERATOR_VERSION, sizes, write_sensor)
    job, ref, job_root, ref_root = run_pair(ctx, input_dir, spark_sensor, duckdb_sensor)
    keys = ("rows_in", "rows_valid", "rows_quarantined", "intervals_in_month", "sensors", "points", "gap_points")
    checks = figure_checks(job, ref, keys)
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
            input_note(input_dir),
            f"input rows: {job.figures['rows_in']:,}; intervals in the month: {job.figures['intervals_in_month']:,}",
            "output: the job writes ceil(points / 5,000,000) files, one per task of the expansion (its "
            "ROWS_PER_FILE); DuckDB writes one",
            files_note(job_root / "quarantine", "job quarantine", (".csv",)),
            spark_note(job),
        ],
    )


# --- a month's run over a growing history: the month index ---------------------------------------------
#
# Monthly uploads (each runs a day into the next month, as an export cut after midnight would) for
# `months` months ending in HISTORY_LAST. The last month is built twice per history length: reading
# only the files the month index names (as deployed: --state_path, the entries the upload CLI wrote),
# and scanning every file (no --state_path). The indexed run must read the same files and bytes
# whatever the history; the full scan grows with it; both write the same points.

HISTORY_VERSION = 1
HISTORY_SIZES = {
    "full": {"sensors": 50, "months": 24, "short": 6},
    "quick": {"sensors": 2, "months": 6, "short": 2},
}
HISTORY_LAST = (2024, 3)  # the month each history ends with, and the one built
HISTORY_FREQUENCY = "10min"


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _months_back(count: int) -> list[tuple[int, int]]:
    """The `count` months ending with HISTORY_LAST, oldest first."""
    year, month = HISTORY_LAST
    out = []
    for _ in range(count):
        out.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def write_history(folder: Path, sensors: int, months: int, short: int) -> dict[str, int]:
    """One upload per month (`<YYYY-MM>.csv`): constant-value intervals of 10 min to 2 h for every sensor
    from the month's start to a day into the next; each month's file depends only on (month, sensor)."""
    del short  # a parameter of the benchmark (the shorter history), not of the files
    rows = 0
    for year, month in _months_back(months):
        start = _month_start(year, month)
        end = (start + timedelta(days=32)).replace(day=1) + timedelta(days=1)
        with (folder / f"{year:04d}-{month:02d}.csv").open("w", encoding="utf-8", newline="") as handle:
            out = LineWriter(handle)
            out.add("sensor_id,start_time,end_time,value,readings")
            for s in range(sensors):
                rng = random.Random(f"sensor-history:{SEED}:{year}-{month}:{s}")  # noqa: S311 - benchmark data
                t, value = start, rng.uniform(5, 30)
                while t < end:
                    length = rng.randint(600, 7200)
                    value = round(value + rng.gauss(0, 0.5), 1)
                    stop = t + timedelta(seconds=length - 1)
                    out.add(f"sensor-{s:04d},{_iso(t)},{_iso(stop)},{value:.1f},{max(1, length // 60)}")
                    rows += 1
                    t = stop + timedelta(seconds=1)
            out.flush()
    return {"rows": rows, "files": months}


def _history_view(source: Path, target: Path, months: int) -> Path:
    """The last `months` uploads of `source` as an input folder, with the entries the upload CLI writes."""
    from ingestion.sensor_upload import index_entries

    target.mkdir(parents=True)
    for year, month in _months_back(months):
        name = f"{year:04d}-{month:02d}.csv"
        data = (source / name).read_bytes()
        (target / name).write_bytes(data)
        for key, body in index_entries("", name, data).items():
            (target / key).parent.mkdir(parents=True, exist_ok=True)
            (target / key).write_bytes(body)
    return target


def spark_sensor_month(clock: Clock, *, input_dir: str, root: str, indexed: bool) -> dict[str, Any]:
    year, month = HISTORY_LAST
    argv = ["sensor_timeseries.py", *locations(input_dir, root, "output", "quarantine")]
    argv += ["--month", f"{year:04d}-{month:02d}", "--frequency", HISTORY_FREQUENCY]
    if indexed:
        argv += ["--state_path", f"{root}/state"]
    return run_job(clock, "sensor_timeseries", argv)


@benchmark("sensor-history", title="one month of sensor series over a growing history (month index)", order=31)
def bench_sensor_history(ctx: Context) -> Report:
    sizes = sized(ctx, HISTORY_SIZES)
    source = cached_input(ctx, "sensor-history", HISTORY_VERSION, sizes, write_history)
    runs: dict[tuple[int, bool], Any] = {}
    roots: dict[tuple[int, bool], Path] = {}
    for months in (sizes["short"], sizes["months"]):
        view = _history_view(source, ctx.run_dir / f"input-{months}", months)
        for indexed in (True, False):
            label = f"{'month index' if indexed else 'full scan'}, {months} months of history"
            root = ctx.run_dir / f"{'indexed' if indexed else 'full'}-{months}"
            runs[months, indexed] = run_isolated(
                spark_sensor_month,
                label,
                outputs=root / "out",
                log_dir=ctx.run_dir,
                input_dir=str(view),
                root=str(root),
                indexed=indexed,
            )
            roots[months, indexed] = root
    short, long = sizes["short"], sizes["months"]
    fig = {key: m.figures for key, m in runs.items()}
    con = duckdb_connect()

    def out(root: Path) -> str:
        parquet = f"read_parquet('{root}/out/**/*.parquet', hive_partitioning = true)"
        return f"SELECT sensor_id, ts, value, readings, is_gap, month FROM {parquet}"

    checks = [
        # Read once per history length: what the index saves does not depend on the history.
        Check.equal(
            "month index: files read, short vs long history",
            fig[short, True]["files_read"],
            fig[long, True]["files_read"],
        ),
        Check.equal(
            "month index: bytes read, short vs long history",
            fig[short, True]["bytes_read"],
            fig[long, True]["bytes_read"],
        ),
        # This month's upload and last month's (it runs a day into this one): nothing else.
        Check.equal("month index: files read = 2", fig[long, True]["files_read"], 2),
        Check.equal("full scan: files read = every upload", fig[long, False]["files_read"], long),
        *(
            same_rows(
                con,
                f"{months} months: points identical, index vs full scan",
                out(roots[months, True]),
                out(roots[months, False]),
            )
            for months in (short, long)
        ),
        *(
            Check.equal(f"{months} months: {key}, index vs full scan", fig[months, True][key], fig[months, False][key])
            for months in (short, long)
            for key in ("intervals_in_month", "sensors", "points", "gap_points")
        ),
    ]
    notes = [input_note(source)]
    for months in (short, long):
        indexed, full = fig[months, True], fig[months, False]
        notes.append(
            f"{months} months of history: the month index reads {indexed['files_read']} of {indexed['files_listed']} "
            f"files, {indexed['bytes_read']:,} bytes; the full scan reads {full['files_read']} files, "
            f"{full['bytes_read']:,} bytes ({full['bytes_read'] / indexed['bytes_read']:.1f}x)"
        )
    notes.append(
        "listing is still per history (one LIST per 1,000 keys, to find files without an index entry); "
        "what a run reads and computes is not"
    )
    return Report(
        name="sensor-history",
        title=f"{sizes['sensors']:,} sensors, {HISTORY_FREQUENCY} points of the last of {short} and {long} months",
        measurements=[runs[short, True], runs[long, True], runs[short, False], runs[long, False]],
        reference=runs[long, False].approach,
        rows_key="points",
        rows_label="points out",
        checks=checks,
        notes=notes,
    )
