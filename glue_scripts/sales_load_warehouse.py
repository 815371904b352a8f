"""Glue job `sales_load_warehouse`: converted sales Parquet -> the warehouse table, idempotently.

Driven by state markers like the converter: a source (CSV) needs a load when
`<state>/converted/<rel>.json` exists and `<state>/loaded/<rel>.json` is missing or records another
size/modified time. Per batch of such sources, in one transaction:

  CREATE TABLE IF NOT EXISTS (run first, on its own); LOCK the table (concurrent loads queue);
  CREATE TEMP TABLE stage (LIKE target); fill the stage;
  DELETE the batch sources' rows the stage no longer has (a corrected file dropped them);
  MERGE stage into the table on order_id; DROP the stage.

Redshift (default): the batch is staged as plain Parquet under `<stage_path>/<run id>/`, COPYed
by the cluster's IAM role, and the statements run through the Redshift Data API
(BatchExecuteStatement = one transaction). PostgreSQL (local runs, tests): the same statements
over psycopg, the client filling the stage from the staged Parquet with COPY FROM STDIN.
A rerun of the same input leaves the same table; only after a commit are `loaded/` markers written.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import glue_common
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from job_runtime import metrics, sql
from job_runtime.contracts import SALES_SCHEMA
from job_runtime.errors import BadInputError
from job_runtime.warehouse import parquet_rows, run_postgres_transaction, run_redshift_transaction

JOB = "sales_load_warehouse"
PIPELINE = "sales"  # pipelines/registry.py: the Pipeline dimension of its metrics
SOURCE_FILE = "source_file"
MAX_SOURCES_PER_LOAD = 500  # keeps the DELETE's IN list far below the Data API's 100 KB statement limit
# Names of tables that get a `<table>_stage` beside them, and of their schema, stay within Redshift's limit.
MAX_NAME_BYTES = sql.MAX_IDENTIFIER_BYTES - len(sql.STAGE_SUFFIX)

# The warehouse side of the sales schema (job_runtime.contracts.SALES_SCHEMA, which the converter also
# reads): column -> (Spark type of the converted Parquet, SQL type, NOT NULL). VARCHAR sizes are in bytes,
# matching the converter's length checks.
COLUMNS: dict[str, tuple[str, str, bool]] = {f.name: (f.spark_type_name, f.sql_type, f.required) for f in SALES_SCHEMA}
SOURCE_FILE_SQL = "VARCHAR(1024)"


def identifier(name: str, what: str) -> str:
    return sql.identifier(name, what, max_bytes=MAX_NAME_BYTES)


def table_columns(selected: Sequence[str]) -> list[str]:
    """The table's columns: the selected sales columns in schema order, then source_file."""
    unknown = sorted(set(selected) - set(COLUMNS))
    if unknown or "order_id" not in selected or "order_date" not in selected:
        raise BadInputError(f"converted columns {list(selected)} are not a valid sales selection (unknown: {unknown})")
    return [c for c in COLUMNS if c in selected] + [SOURCE_FILE]


def load_statements(
    selected: Sequence[str],
    sources: Sequence[str],
    *,
    schema: str,
    table: str,
    stage_uri: str | None = None,
    iam_role: str | None = None,
) -> list[str]:
    """The SQL of one load transaction.

    With stage_uri + iam_role (Redshift) the stage is filled by COPY from the staged Parquet, whose
    columns are the table's in the same order (Parquet COPY maps by position). Without them
    (PostgreSQL) the fill is `COPY stage (...) FROM STDIN`, fed by the client.
    """
    schema, table = identifier(schema, "schema"), identifier(table, "table")
    target, stage = f"{schema}.{table}", sql.stage_name(table)
    columns = table_columns(selected)
    definitions = [f"{c} {COLUMNS[c][1]}" + (" NOT NULL" if COLUMNS[c][2] else "") for c in columns[:-1]]
    definitions.append(f"{SOURCE_FILE} {SOURCE_FILE_SQL} NOT NULL")
    if stage_uri is not None:
        if not stage_uri.startswith("s3://") or not iam_role or not sql.IAM_ROLE_ARN.match(iam_role):
            raise BadInputError(
                f"Redshift COPY needs an s3:// stage and an IAM role ARN, got {stage_uri!r}, {iam_role!r}"
            )
        fill = sql.copy_from_s3(stage, stage_uri, iam_role)
    else:
        fill = sql.copy_from_stdin(stage, columns)
    if not sources:
        raise ValueError("a load needs at least one source")
    return [
        sql.create_table(target, definitions, ["order_id"]),
        sql.lock(target),  # loads into the table queue here (job_runtime.sql.lock)
        sql.create_stage(stage, target),
        fill,
        sql.delete_vanished(target, stage, SOURCE_FILE, sources, "order_id"),
        sql.merge(target, stage, columns, ["order_id"]),
        sql.drop(stage),
    ]


def transform_batch(parquet_df: DataFrame, modified_ms: dict[str, int], selected: Sequence[str]) -> DataFrame:
    """One row per order_id across the batch, in table column order.

    Redshift does not enforce primary keys and MERGE rejects duplicate source keys, so an order_id
    in several sources keeps the row of the most recently modified source (ties: the greater
    source_file name) - deterministic, and the same rule a later upload follows across runs.
    """
    columns = table_columns(selected)
    pairs = [F.lit(x) for rel, ms in sorted(modified_ms.items()) for x in (rel, ms)]
    source_ms = F.create_map(*pairs)[F.col(SOURCE_FILE)]
    newest_first = Window.partitionBy("order_id").orderBy(source_ms.desc(), F.col(SOURCE_FILE).desc())
    ranked = parquet_df.withColumn("_rank", F.row_number().over(newest_first))
    return ranked.where(F.col("_rank") == 1).select(*columns)


# --- warehouses --------------------------------------------------------------------------------------


class Warehouse(Protocol):
    def run_transaction(self, statements: Sequence[str], stage_uri: str) -> None: ...


class RedshiftDataWarehouse:
    def __init__(self, workgroup: str, database: str, client=None, **polling: float) -> None:
        self.workgroup, self.database, self.client, self.polling = workgroup, database, client, polling

    def run_transaction(self, statements: Sequence[str], stage_uri: str) -> None:
        run_redshift_transaction(
            statements, workgroup=self.workgroup, database=self.database, client=self.client, name=JOB, **self.polling
        )


class PostgresWarehouse:
    """Local stand-in for Redshift: the same statements in one psycopg transaction, the stage filled
    from the staged Parquet."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def run_transaction(self, statements: Sequence[str], stage_uri: str) -> None:
        run_postgres_transaction(self.dsn, statements, lambda _copy: parquet_rows(stage_uri))


def make_warehouse(args: dict[str, str]) -> Warehouse:
    kind = args["warehouse"]
    if kind == "redshift-data":
        missing = [n for n in ("workgroup", "database", "iam_role") if not args.get(n)]
        if missing:
            raise BadInputError(f"--warehouse redshift-data needs {', '.join('--' + n for n in missing)}")
        return RedshiftDataWarehouse(args["workgroup"], args["database"])
    if kind == "postgres":
        if not args.get("dsn"):
            raise BadInputError("--warehouse postgres needs --dsn")
        return PostgresWarehouse(args["dsn"])
    raise BadInputError(f"--warehouse must be redshift-data or postgres, got {kind!r}")


# --- job ---------------------------------------------------------------------------------------------


def pending_sources(converted: dict[str, dict], loaded: dict[str, dict]) -> list[dict]:
    """Converted markers not yet loaded in their current version, oldest upload first."""

    def version(marker: dict | None):
        return None if marker is None else (marker.get("size"), marker.get("modified_ms"))

    todo = [m for rel, m in converted.items() if version(loaded.get(rel)) != version(m)]
    return sorted(todo, key=lambda m: (m["modified_ms"], m["source_file"]))


def read_batch(spark, parquet_path: str, selected: Sequence[str], sources: Sequence[str]) -> DataFrame:
    """The sources' converted rows; partition columns typed by the schema given (no type inference)."""
    columns = table_columns(selected)
    ddl = ", ".join(f"{c} {COLUMNS[c][0]}" for c in columns if c not in ("order_date", SOURCE_FILE))
    ddl += f", order_date date, {SOURCE_FILE} string"
    if not glue_common.exists(spark, parquet_path):  # every source so far had only quarantined rows
        return spark.createDataFrame([], ddl)
    return spark.read.schema(ddl).parquet(parquet_path).where(F.col(SOURCE_FILE).isin(list(sources)))


def load_batch(spark, batch: list[dict], args: dict[str, str], warehouse: Warehouse) -> dict[str, int]:
    """Stage, load in one transaction, then mark each source loaded; returns staged rows per source."""
    selected = [c for c in COLUMNS if any(c in m.get("columns", COLUMNS) for m in batch)]
    sources = [m["source_file"] for m in batch]
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    stage_uri = f"{args['stage_path'].rstrip('/')}/{run_id}/"
    rows = transform_batch(
        read_batch(spark, args["parquet_path"], selected, sources),
        {m["source_file"]: m["modified_ms"] for m in batch},
        selected,
    )
    try:
        # Decimals as fixed-length byte arrays, the Hive-style layout Redshift's Parquet COPY reads.
        legacy = spark.conf.get("spark.sql.parquet.writeLegacyFormat")
        spark.conf.set("spark.sql.parquet.writeLegacyFormat", "true")
        try:
            rows.write.mode("overwrite").parquet(stage_uri)
        finally:
            spark.conf.set("spark.sql.parquet.writeLegacyFormat", legacy)
        staged = {
            r[SOURCE_FILE]: r["count"] for r in spark.read.parquet(stage_uri).groupBy(SOURCE_FILE).count().collect()
        }
        redshift = args["warehouse"] == "redshift-data"
        statements = load_statements(
            selected,
            sources,
            schema=args["schema"],
            table=args["table"],
            stage_uri=stage_uri if redshift else None,
            iam_role=args["iam_role"] if redshift else None,
        )
        warehouse.run_transaction(statements, stage_uri)
    finally:
        glue_common.delete_path(spark, stage_uri)
    target = f"{args['schema']}.{args['table']}"
    for marker in batch:
        rel = marker["source_file"]
        done = {**marker, "table": target, "run_id": run_id, "rows_staged": staged.get(rel, 0)}
        glue_common.write_text(
            spark, f"{args['state_path'].rstrip('/')}/loaded/{rel}.json", json.dumps(done, sort_keys=True)
        )
    return {rel: staged.get(rel, 0) for rel in sources}


def main(argv: Sequence[str] | None = None, warehouse: Warehouse | None = None) -> dict:
    # Glue's getResolvedOptions skips argv[0], so on Glue this must be the whole sys.argv.
    argv = sys.argv if argv is None else argv
    glue_common.start_run(argv)
    args = glue_common.resolve_args(
        argv,
        ["parquet_path", "stage_path", "state_path"],
        {
            "table": "sales_data_table",
            "warehouse": "redshift-data",
            "workgroup": "",
            "database": "",
            "iam_role": "",
            "dsn": "",
            "schema": "public",
        },
    )
    identifier(args["schema"], "--schema")
    identifier(args["table"], "--table")
    warehouse = warehouse or make_warehouse(args)
    spark = glue_common.spark_session(JOB)
    state = args["state_path"].rstrip("/")
    pending = pending_sources(
        glue_common.read_markers(spark, f"{state}/converted"), glue_common.read_markers(spark, f"{state}/loaded")
    )
    loaded: dict[str, int] = {}
    # Oldest uploads first, so across batches too a later upload's version of an order wins.
    for start in range(0, len(pending), MAX_SOURCES_PER_LOAD):
        loaded.update(load_batch(spark, pending[start : start + MAX_SOURCES_PER_LOAD], args, warehouse))
    rows = sum(loaded.values())
    # The converted Parquet it loads was validated by the conversion: every staged row is loaded.
    return glue_common.log_summary(
        JOB,
        PIPELINE,
        {metrics.FILES: len(loaded)},
        sources=list(loaded),
        rows_in=rows,
        rows_loaded=rows,
        rows_quarantined=0,
        table=f"{args['schema']}.{args['table']}",
        warehouse=args["warehouse"],
    )


if __name__ == "__main__":
    glue_common.setup_logging()
    sys.exit(glue_common.run(main))
