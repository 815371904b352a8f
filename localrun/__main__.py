"""`python -m localrun`: the registered pipelines (pipelines/registry.py) on this machine, end to end.

The lake is a local folder (.local/lake) and the warehouse a throwaway PostgreSQL. Render logs: the
same `render-summary` command the Batch image runs, one process per file, as Step Functions does
per upload. Sales and sensor: the very Glue scripts, on local Spark (the Glue 5.0 engine), in the
order the Glue workflow and the state machine run them. GH Archive and COVID-19: see localrun/outside_world.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg

from components.warehouse_access import READER_ROLE, Loader
from job_runtime import metrics
from localrun.outside_world import moto_aws, run_covid, run_gharchive
from localrun.postgres import login_dsn, setup_access, temporary_postgres
from localrun.sample_data import write_render_logs
from pipelines import registry

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data" / "render_logs"
# On Glue, each script and glue_common.py are top-level modules; the same here.
sys.path.insert(0, str(ROOT / "glue_scripts"))


def run_render_logs(lake: Path, dsn: str, generated_rows: int) -> list[dict]:
    raw = lake / "raw" / "render-logs" / "2025" / "10" / "06"
    raw.mkdir(parents=True, exist_ok=True)
    for sample in sorted(SAMPLES.glob("*.csv")):
        shutil.copy(sample, raw / sample.name)
    write_render_logs(raw / "render_logs_generated.csv", generated_rows)
    summaries = []
    for csv_file in sorted(raw.glob("*.csv")):
        print(f"\n$ render-summary --input {csv_file}", flush=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "render_summary",
                "--input",
                str(csv_file),
                "--quarantine",
                str(lake / "processed" / "quarantine" / "render-logs"),
                "--stage",  # the Parquet the load COPYs from, removed after it (s3://<processed>/stage/... on AWS)
                str(lake / "processed" / "stage" / "render-logs"),
                "--warehouse",
                "postgres",
                "--postgres-dsn",
                dsn,
            ],
            capture_output=True,
            text=True,
        )
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        summaries.append(summary)
        print(json.dumps(summary, indent=2))
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            raise SystemExit(result.returncode)
    return summaries


def print_table(dsn: str) -> None:
    """What an analyst sees (`dsn` signs in as the reader role): each file's devices, then the totals over
    every file, one row per device."""
    with psycopg.connect(dsn) as conn:
        files = conn.execute(
            "SELECT regexp_replace(source_uri, '^.*/', ''), count(*), sum(log_count) "
            "FROM public.performance_summary_by_file GROUP BY source_uri ORDER BY source_uri"
        ).fetchall()
        rows = conn.execute("SELECT * FROM performance_summary ORDER BY device_id").fetchall()
    print("\nSELECT regexp_replace(source_uri, '^.*/', ''), count(*), sum(log_count) FROM performance_summary_by_file")
    for file, devices, logs in files:
        print(f"{file:>28} | {devices:>3} device(s) | {logs:>5} row(s)")
    print("\nSELECT * FROM performance_summary")
    header = ("device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count")
    print(" | ".join(f"{h:>14}" for h in header))
    for device, fps, gpu, latency, count in rows:
        print(f"{device:>14} | {fps:>14.6f} | {gpu:>14.6f} | {latency:>14} | {count:>14}")


def sales_catalog_table(glue: Any, database: str) -> tuple[str, str]:
    """The stack's sales Parquet table (pipelines/sales.py) in moto's Glue Data Catalog, as Glue stores it."""
    from components.warehouse import PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE
    from pipelines import sales

    settings = registry.load_stack_config({}, "dataplatform", "local", "us-east-1").pipeline_settings["sales"]
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):  # another local pipeline made it first
        glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": sales.PARQUET_TABLE,
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": k, "Type": t} for k, t in sales.PARQUET_PARTITION_KEYS],
            "StorageDescriptor": {
                "Columns": [{"Name": c, "Type": t} for c, t in sales.parquet_columns(settings.columns)],
                "InputFormat": PARQUET_INPUT_FORMAT,
                "OutputFormat": PARQUET_OUTPUT_FORMAT,
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
            },
        },
    )
    return database, sales.PARQUET_TABLE


def query_catalog_table(spark: Any, glue: Any, database: str, table: str, athena_sql: str, root: Path) -> list[tuple]:
    """Athena SQL (transpiled by sqlglot) on local Spark over a Glue table: its columns and exactly the
    partitions the catalog holds, each at its registered location, as Athena reads them. `root`: the
    Spark table's own (empty) folder; it is external, so dropping it deletes no data."""
    import sqlglot

    definition = glue.get_table(DatabaseName=database, Name=table)["Table"]
    keys = definition["PartitionKeys"]
    columns = [*definition["StorageDescriptor"]["Columns"], *keys]
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.sql(
        f"CREATE TABLE {table} ({', '.join(c['Name'] + ' ' + c['Type'] for c in columns)}) USING parquet "
        f"PARTITIONED BY ({', '.join(k['Name'] for k in keys)}) LOCATION '{root}'"
    )
    try:
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            for partition in page["Partitions"]:
                spec = ", ".join(
                    f"{k['Name']} = {k['Type']} '{v}'" if k["Type"] == "date" else f"{k['Name']} = '{v}'"
                    for k, v in zip(keys, partition["Values"], strict=True)
                )
                location = partition["StorageDescriptor"]["Location"]
                spark.sql(f"ALTER TABLE {table} ADD PARTITION ({spec}) LOCATION '{location}'")
        [spark_sql] = sqlglot.transpile(athena_sql, read="athena", write="spark")
        return [tuple(r) for r in spark.sql(spark_sql).collect()]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def run_sales(lake: Path, dsn: str, reader_dsn: str, glue: Any = None) -> dict:
    """Crawlers aside (they only catalog), the sales workflow's steps in order: convert, then load. With
    `glue` (moto's), the convert step registers its partitions in the stack's Parquet table, which is
    then queried as Athena would."""
    import glue_common
    import sales_csv_to_parquet
    import sales_load_warehouse

    inputs = lake / "raw" / "sales" / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    for sample in sorted((ROOT / "sample_data" / "sales").glob("*.csv")):
        shutil.copy(sample, inputs / sample.name)
    processed = lake / "processed"
    spark = glue_common.spark_session("localrun")
    spark.sparkContext.setLogLevel("ERROR")
    catalog = sales_catalog_table(glue, "dataplatform_local_catalog") if glue is not None else None
    print(f"\n$ sales_csv_to_parquet.py --input_path {inputs}", flush=True)
    converted = sales_csv_to_parquet.main(
        [
            *("--input_path", str(inputs), "--output_path", str(processed / "sales" / "parquet")),
            *("--quarantine_path", str(processed / "quarantine" / "sales")),
            *("--state_path", str(processed / "sales" / "state")),
            *(("--catalog_database", catalog[0], "--catalog_table", catalog[1]) if catalog else ()),
        ],
        glue=glue,
    )
    print(json.dumps(converted, indent=2))
    print("\n$ sales_load_warehouse.py --warehouse postgres", flush=True)
    loaded = sales_load_warehouse.main(
        [
            *("--parquet_path", str(processed / "sales" / "parquet")),
            *("--stage_path", str(processed / "sales" / "stage")),
            *("--state_path", str(processed / "sales" / "state")),
            *("--warehouse", "postgres", "--dsn", dsn),
        ]
    )
    print(json.dumps(loaded, indent=2))
    with psycopg.connect(reader_dsn) as conn:
        rows = conn.execute(
            "SELECT order_date, count(*), sum(quantity), sum(quantity * unit_price * (1 - coalesce(discount, 0))) "
            "FROM public.sales_data_table GROUP BY order_date ORDER BY order_date"
        ).fetchall()
    print("\npublic.sales_data_table per day: order_date | orders | units | net revenue")
    for day, orders, units, revenue in rows:
        print(f"  {day} | {orders:>6} | {units:>5} | {revenue:>11.2f}")
    if catalog:
        athena = f"SELECT count(*), sum(quantity), count(DISTINCT order_date) FROM {catalog[1]}"
        [(orders, units, days)] = query_catalog_table(spark, glue, *catalog, athena, lake / "spark" / catalog[1])
        print(f"\nAthena {athena} (on local Spark, partitions as registered): {orders} | {units} | {days}")
    return converted


def run_sensor(lake: Path) -> dict:
    """The monthly state machine's one step: the time series for March 2024 at one-minute steps."""
    import pyarrow.dataset as ds
    import sensor_timeseries

    from ingestion.sensor_upload import index_entries

    raw = lake / "raw" / "sensor" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for sample in sorted((ROOT / "sample_data" / "sensor").glob("*.csv")):
        shutil.copy(sample, raw / sample.name)
        # What the upload CLI writes beside the upload: the months the file's intervals reach.
        for key, body in index_entries("", sample.name, sample.read_bytes()).items():
            (raw / key).parent.mkdir(parents=True, exist_ok=True)
            (raw / key).write_bytes(body)
    output = lake / "processed" / "sensor" / "timeseries"
    print(f"\n$ sensor_timeseries.py --input_path {raw} --month 2024-03 --frequency 1min", flush=True)
    summary = sensor_timeseries.main(
        [
            *("--input_path", str(raw), "--output_path", str(output)),
            *("--quarantine_path", str(lake / "processed" / "quarantine" / "sensor")),
            *("--state_path", str(lake / "processed" / "sensor" / "state")),
            *("--month", "2024-03", "--frequency", "1min"),
        ]
    )
    print(json.dumps(summary, indent=2))
    table = ds.dataset(output / "month=2024-03", format="parquet").to_table(columns=["sensor_id", "is_gap"])
    print(f"\n{output / 'month=2024-03'}: sensor_id | points | gap points")
    for row in sorted(
        table.group_by("sensor_id").aggregate([("is_gap", "count"), ("is_gap", "sum")]).to_pylist(),
        key=lambda r: r["sensor_id"],
    ):
        print(f"  {row['sensor_id']:>10} | {row['is_gap_count']:>6} | {row['is_gap_sum']:>6}")
    return summary


@dataclass
class LocalRun:
    """What the local pipelines share: the lake folder, each loading pipeline's and the reader's
    PostgreSQL logins, and (started on first use) one Spark session and moto's AWS stand-in."""

    lake: Path
    generated_rows: int
    dsn: dict[str, str]
    reader_dsn: str
    services: ExitStack
    aws_started: bool = field(default=False)

    @cached_property
    def spark(self) -> Any:
        import glue_common

        return glue_common.spark_session("localrun")

    def aws(self) -> None:
        """S3, DynamoDB and friends on moto from here to the end of the run."""
        if not self.aws_started:
            self.services.enter_context(moto_aws())
            self.aws_started = True


def local_render_logs(run: LocalRun) -> str:
    summaries = run_render_logs(run.lake, run.dsn["render-logs"], run.generated_rows)
    print_table(run.reader_dsn)
    # Each summary is the job's metrics line (job_runtime.metrics): its row counts are the metrics.
    rows_in = sum(s[metrics.ROWS_IN] for s in summaries)
    quarantined = sum(s[metrics.ROWS_QUARANTINED] for s in summaries)
    return (
        f"render-logs: {len(summaries)} file(s), {rows_in} row(s) in, {rows_in - quarantined} loaded, "
        f"{quarantined} quarantined"
    )


def local_sales(run: LocalRun) -> str:
    import boto3

    run.aws()  # the Glue Data Catalog the convert step registers its partitions in
    sales = run_sales(run.lake, run.dsn["sales"], run.reader_dsn, glue=boto3.client("glue"))
    return (
        f"sales: {sales['files']} file(s), {sales['rows_in']} row(s) in, {sales['rows_loaded']} loaded, "
        f"{sales['rows_quarantined']} quarantined"
    )


def local_sensor(run: LocalRun) -> str:
    sensor = run_sensor(run.lake)
    return (
        f"sensor-timeseries: {sensor['rows_in']} interval(s) in, {sensor['rows_valid']} valid, "
        f"{sensor['rows_quarantined']} quarantined; {sensor['points']} points for {sensor['sensors']} sensor(s) "
        f"in {sensor['month']}, {sensor['gap_points']} of them gaps; read {sensor['files_read']} of "
        f"{sensor['files_listed']} raw file(s) (month index)"
    )


def local_gharchive(run: LocalRun) -> str:
    spark = run.spark
    run.aws()
    gharchive = run_gharchive(run.lake, spark)
    return (
        f"gharchive: {gharchive['hours_ingested']} hour(s) ingested (bookmark {gharchive['bookmark']}), "
        f"{gharchive['rows_in']} event(s) in, {gharchive['rows_loaded']} loaded, "
        f"{gharchive['rows_quarantined']} quarantined"
    )


def local_covid(run: LocalRun) -> str:
    spark = run.spark
    run.aws()
    covid = run_covid(run.lake, spark, run.dsn["covid19"], run.reader_dsn)
    return (
        f"covid19: {covid['copied']} file(s) copied, {covid['rows_in']} row(s) in, {covid['rows_loaded']} loaded, "
        f"{covid['rows_quarantined']} quarantined; star schema "
        + ", ".join(f"{table} {rows}" for table, rows in covid["tables"].items())
    )


# How each registered pipeline runs here, by its name in the registry; it returns its summary line.
LOCAL_RUNS: dict[str, Callable[[LocalRun], str]] = {
    "render-logs": local_render_logs,
    "sales": local_sales,
    "sensor-timeseries": local_sensor,
    "gharchive": local_gharchive,
    "covid19": local_covid,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=ROOT / ".local" / "lake", help="local lake folder (recreated)")
    parser.add_argument("--generated-rows", type=int, default=200_000, help="rows in the generated sample file")
    args = parser.parse_args()
    shutil.rmtree(args.lake, ignore_errors=True)
    # The deployed defaults: which pipelines load the warehouse, and into which schema.
    cfg = registry.load_stack_config({}, "dataplatform", "local", "us-east-1")
    summaries: list[str] = []
    with temporary_postgres() as admin_dsn, ExitStack() as services:
        # As the stack does on Redshift: a database role per loading pipeline and a read-only one; each
        # job then signs in as its own user holding only its pipeline's role.
        loaders: dict[str, Loader] = {
            p.name: p.warehouse_loader(cfg.pipeline_settings[p.name])
            for p in registry.PIPELINES
            if p.warehouse_loader is not None
        }
        setup_access(admin_dsn, list(loaders.values()))
        dsn = {name: login_dsn(admin_dsn, f"IAMR:{name}-job", loader.role) for name, loader in loaders.items()}
        reader = login_dsn(admin_dsn, "IAMR:analyst", READER_ROLE)
        run = LocalRun(args.lake, args.generated_rows, dsn, reader, services)
        for pipeline in registry.PIPELINES:
            local = LOCAL_RUNS.get(pipeline.name)
            summaries.append(local(run) if local else f"{pipeline.name}: no local run")
    print(
        "\n" + "\n".join(summaries) + f"\n(rejected rows with reasons under {args.lake / 'processed' / 'quarantine'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
