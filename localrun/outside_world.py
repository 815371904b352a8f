"""The GH Archive and COVID-19 pipelines on this machine, step by step as their state machines run them.

Outside data comes from local servers instead of the internet: GH Archive's hourly files from a local
HTTP server (generated events of three hours of 2024-01-01; hour 3 is "not published yet"), the
COVID-19 data lake from a moto S3 bucket seeded with sample_data/covid/. DynamoDB (the GH Archive
bookmark and run log) is moto too. The Batch jobs run as real processes (`python -m lake_ingest...`),
the Glue scripts on local Spark, Athena's staging SQL on Spark (transpiled by sqlglot), and the
star schema's transaction on the throwaway PostgreSQL.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GHARCHIVE_HOURS = [datetime(2024, 1, 1, hour) for hour in range(3)]  # hour 3 is not "published"
GHARCHIVE_EVENTS_PER_HOUR = 400
COVID_SOURCE_BUCKET = "covid19-lake"
COVID_LANDING_BUCKET = "local-landing"
COVID_SCHEMA = "covid"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_files(folder: Path) -> Iterator[str]:
    """A local HTTP server for `folder` (404 for anything missing); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def moto_aws() -> Iterator[dict[str, str]]:
    """moto's HTTP server; yields the environment that points AWS SDK calls (and subprocesses) at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def run_job(module: str, *args: str) -> dict[str, Any]:
    """One Batch job as a real process (as its container runs it); its JSON summary, printed."""
    print(f"\n$ python -m {module} {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        raise SystemExit(result.returncode)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(summary, indent=2))
    return summary


# --- GH Archive -------------------------------------------------------------------------------------


def run_gharchive(lake: Path, spark: Any) -> dict[str, Any]:
    import boto3
    import gharchive_events
    import sqlglot

    from job_runtime.contracts import GHARCHIVE_EVENT_COLUMNS, GHARCHIVE_EVENT_PARTITIONS
    from localrun.sample_data import write_gharchive_hour
    from pipelines.gharchive_queries import named_queries

    site = lake.parent / "gharchive-site"
    for i, hour in enumerate(GHARCHIVE_HOURS):
        # Two duplicated events and one broken line per hour, as the real feed occasionally has.
        stored = write_gharchive_hour(
            site / "generated", hour, GHARCHIVE_EVENTS_PER_HOUR, seed=i, duplicates=2, bad_lines=1
        )
        stored.rename(site / stored.name)  # GH Archive serves every hour at the top level
    raw = lake / "raw" / "gharchive" / "raw"
    dynamodb = boto3.client("dynamodb")
    tables = {"jobs": ["job_name"], "job_run_details": ["job_name", "run_id"]}
    for table, keys in tables.items():
        dynamodb.create_table(
            TableName=f"gharchive-{table}",
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    with serve_files(site) as base_url:
        ingest = [
            *("--base-url", base_url, "--output", f"{raw}/"),
            *("--jobs-table", "gharchive-jobs", "--runs-table", "gharchive-job_run_details"),
            *("--baseline-day", "2024-01-01", "--now", "2024-01-02T00:00:00Z", "--backoff-seconds", "0.1"),
        ]
        ingested = run_job("lake_ingest.gharchive", *ingest)
        rerun = run_job("lake_ingest.gharchive", *ingest)  # the bookmark holds: nothing is fetched twice
    assert rerun["hours_fetched"] == 0, rerun

    processed = lake / "processed"
    output = processed / "gharchive" / "events"
    print(f"\n$ gharchive_events.py --input_path {raw}", flush=True)
    summary = gharchive_events.main(
        [
            *("--input_path", f"{raw}/", "--output_path", f"{output}/"),
            *("--quarantine_path", f"{processed / 'quarantine' / 'gharchive'}/"),
            *("--state_path", f"{processed / 'gharchive' / 'state'}/"),
            *("--runs_table", "gharchive-job_run_details"),  # the transform's run log, beside the ingest's
        ]
    )
    print(json.dumps(summary, indent=2))
    runs = dynamodb.query(
        TableName="gharchive-job_run_details",
        KeyConditionExpression="job_name = :j",
        ExpressionAttributeValues={":j": {"S": "gharchive_events"}},
    )["Items"]
    for run in runs:
        print(
            f"job_run_details gharchive_events {run['run_id']['S']}: {run['status']['S']}, "
            f"{run['rows_loaded']['N']} loaded, {run['rows_quarantined']['N']} quarantined"
        )
    # The stack's table (its columns and partition keys are the job's contract), and two of the Athena
    # named queries run on Spark over it.
    ddl = ", ".join(f"`{n}` {t}" for n, t in (*GHARCHIVE_EVENT_COLUMNS, *GHARCHIVE_EVENT_PARTITIONS))
    spark.read.schema(ddl).parquet(str(output)).createOrReplaceTempView("gharchive_events")
    queries = named_queries("gharchive_events")
    for name in list(queries)[:2]:
        print(f"\nAthena named query gharchive-{name}: {queries[name].description}")
        rows = spark.sql(sqlglot.transpile(queries[name].sql, read="athena", write="spark")[0]).take(8)
        for row in rows:
            print("  " + " | ".join(str(v) for v in row))
    return {**summary, "hours_ingested": ingested["hours_fetched"], "bookmark": ingested["bookmark"]}


# --- COVID-19 ---------------------------------------------------------------------------------------


def run_covid(lake: Path, spark: Any, loader_dsn: str, reader_dsn: str) -> dict[str, Any]:
    import boto3
    import covid_clean
    import psycopg

    from pipelines.covid_staging import stage_locally
    from pipelines.covid_star_schema import TABLES, load_postgres
    from pipelines.registry import load_stack_config

    # The deployed defaults.
    datasets = load_stack_config({}, "dataplatform", "local", "us-east-1").pipeline_settings["covid19"].datasets
    s3 = boto3.client("s3")
    for bucket in (COVID_SOURCE_BUCKET, COVID_LANDING_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for dataset, prefix in datasets.items():
        for sample in sorted((ROOT / "sample_data" / "covid" / dataset).glob("*.csv")):
            s3.upload_file(str(sample), COVID_SOURCE_BUCKET, f"{prefix}{sample.name}")
    copy = [
        *("--source-bucket", COVID_SOURCE_BUCKET, "--target", f"s3://{COVID_LANDING_BUCKET}/covid/landing/"),
        *(arg for name, prefix in datasets.items() for arg in ("--dataset", f"{name}={prefix}")),
    ]
    copied = run_job("lake_ingest.copy_datasets", *copy)
    again = run_job("lake_ingest.copy_datasets", *copy)  # only what changed is copied: nothing
    assert again["copied"] == 0, again

    # The landing zone, brought to the local lake for Spark (on AWS the crawler and Athena read it in S3).
    landing = lake / "raw" / "covid" / "landing"
    for item in s3.list_objects_v2(Bucket=COVID_LANDING_BUCKET, Prefix="covid/landing/")["Contents"]:
        target = landing / item["Key"].removeprefix("covid/landing/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(COVID_LANDING_BUCKET, item["Key"], str(target))
    staging = lake / "processed" / "covid" / "staging" / "local-execution"
    print(f"\n$ Athena UNLOAD staging (on Spark) -> {staging}", flush=True)
    print(json.dumps(stage_locally(spark, str(landing), str(staging)), indent=2))
    curated = lake / "curated" / "covid" / "curated"
    print(f"\n$ covid_clean.py --staging_path {staging}", flush=True)
    cleaned = covid_clean.main(
        [
            *("--staging_path", f"{staging}/", "--curated_path", f"{curated}/"),
            *("--quarantine_path", f"{lake / 'processed' / 'quarantine' / 'covid'}/"),
        ]
    )
    print(json.dumps(cleaned, indent=2))
    print("\n$ star schema: CREATE, COPY into stages, MERGE (one transaction, PostgreSQL for Redshift)", flush=True)
    staged = load_postgres(loader_dsn, COVID_SCHEMA, str(curated))
    load_postgres(loader_dsn, COVID_SCHEMA, str(curated))  # a rerun MERGEs the same rows: nothing changes
    with psycopg.connect(reader_dsn) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {COVID_SCHEMA}.{t}").fetchall()[0][0] for t in TABLES}
        latest = conn.execute(
            f"SELECT d.full_date, l.location_key, l.county, l.state_abbr, f.confirmed, f.deaths "
            f"FROM {COVID_SCHEMA}.fact_cases f JOIN {COVID_SCHEMA}.dim_date d USING (date_key) "
            f"JOIN {COVID_SCHEMA}.dim_location l USING (location_key) "
            f"WHERE l.fips IS NOT NULL ORDER BY d.full_date DESC, f.confirmed DESC, l.location_key LIMIT 5"
        ).fetchall()
    print(f"\n{COVID_SCHEMA} star schema rows: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    print("latest county cases: date | location | county | state | confirmed | deaths")
    for row in latest:
        print("  " + " | ".join(str(v) for v in row))
    return {"copied": copied["copied"], "staged": staged, "tables": counts, **cleaned}
