"""Glue Data Catalog tables the estate defines (CatalogTable) under mocks.

AWS rules these tests hold the component to:
- Glue CreateTable / TableInput (https://docs.aws.amazon.com/glue/latest/webapi/API_TableInput.html):
  Name 1-255 characters, folded to lower case; PartitionKeys primitive types only, and for a table
  Athena uses, set even when empty ("PartitionKeys": []); TableType EXTERNAL_TABLE for tables over S3.
- Athena names (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html):
  database, table and column names lower case, at most 255 characters; names starting with an
  underscore need backticks.
- Athena partition projection (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html,
  https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html):
  `projection.enabled`, `projection.<column>.type` one of enum/integer/date/injected, date columns
  need `range` and `format` (with `interval` and `interval.unit` among YEARS...MILLISECONDS), integer
  columns `range` ("low,high"), enum columns `values`; `storage.location.template` names every
  partition column as `${column}`. With projection on, Athena ignores registered partitions, so no
  crawler or MSCK REPAIR is needed for a new partition. The properties are the table's parameters
  (TableInput.Parameters), not the storage descriptor's
  (https://docs.aws.amazon.com/athena/latest/ug/partition-projection-setting-up.html).
- Glue recrawl policy for the crawlers kept (tests/infra/test_ingest_pipelines.py): incremental
  crawls (CRAWL_NEW_FOLDERS_ONLY) read only new folders, force schema changes to LOG and add no table
  after the first crawl (https://docs.aws.amazon.com/glue/latest/dg/incremental-crawls.html).
"""

from __future__ import annotations

import gharchive_events
import pytest

from components.warehouse import (
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    CatalogTable,
    CatalogTableArgs,
    Projection,
    date_projection,
    enum_projection,
    injected_projection,
    integer_projection,
    table_parameters,
)
from job_runtime.contracts import COVID_STAR_TABLES, GHARCHIVE_EVENT_COLUMNS, SENSOR_TIMESERIES_COLUMNS
from pipelines import sales
from tests.infra.harness import REGION, Estate, run_under_mocks

CONFIG = {"aws:region": REGION}
TABLE = "aws:glue/catalogTable:CatalogTable"


def build(args: CatalogTableArgs):
    return run_under_mocks("dev", CONFIG, lambda: CatalogTable("events", args))


def test_a_partitioned_parquet_table_with_projection_is_defined_exactly() -> None:
    estate = build(
        CatalogTableArgs(
            database="lake_db",
            name="gharchive_events",
            location="s3://processed/gharchive/events/",
            columns=(("id", "string"), ("created_at", "timestamp"), ("payload", "struct<size:bigint>")),
            partition_keys=(("date", "string"), ("hour", "int")),
            projection=(
                ("date", date_projection("yyyy-MM-dd", "2011-02-12,NOW")),
                ("hour", integer_projection(0, 23)),
            ),
            description="GH Archive events",
        )
    )
    table = estate.one(TABLE).inputs
    assert table == {
        "databaseName": "lake_db",
        "name": "gharchive_events",
        "description": "GH Archive events",
        "tableType": "EXTERNAL_TABLE",
        "parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "projection.enabled": "true",
            "projection.date.type": "date",
            "projection.date.format": "yyyy-MM-dd",
            "projection.date.range": "2011-02-12,NOW",
            "projection.date.interval": "1",
            "projection.date.interval.unit": "DAYS",
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "storage.location.template": "s3://processed/gharchive/events/date=${date}/hour=${hour}/",
        },
        "partitionKeys": [{"name": "date", "type": "string"}, {"name": "hour", "type": "int"}],
        "storageDescriptor": {
            "location": "s3://processed/gharchive/events/",
            "inputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "outputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "serDeInfo": {
                "serializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "parameters": {"serialization.format": "1"},
            },
            "columns": [
                {"name": "id", "type": "string"},
                {"name": "created_at", "type": "timestamp"},
                {"name": "payload", "type": "struct<size:bigint>"},
            ],
        },
    }
    assert (
        table["storageDescriptor"]["serDeInfo"]["serializationLibrary"],
        table["storageDescriptor"]["inputFormat"],
        table["storageDescriptor"]["outputFormat"],
    ) == (PARQUET_SERDE, PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT)


def test_an_unpartitioned_table_has_an_empty_partition_key_list_and_no_projection() -> None:
    table = (
        build(
            CatalogTableArgs(
                database="lake_db", name="covid_dim_date", location="s3://b/covid/dim_date/", columns=(("d", "date"),)
            )
        )
        .one(TABLE)
        .inputs
    )
    assert table["partitionKeys"] == []
    assert table["parameters"] == {"EXTERNAL": "TRUE", "classification": "parquet"}
    assert "description" not in table


def test_monthly_enum_and_injected_projections_write_athenas_properties() -> None:
    assert date_projection("yyyy-MM", "2020-01,NOW", 1, "MONTHS") == Projection(
        "date", (("format", "yyyy-MM"), ("interval", "1"), ("interval.unit", "MONTHS"), ("range", "2020-01,NOW"))
    )
    assert enum_projection(["eu", "us"]) == Projection("enum", (("values", "eu,us"),))
    assert injected_projection() == Projection("injected")
    table = (
        build(
            CatalogTableArgs(
                database="db",
                name="t",
                location="s3://b/p/",
                columns=(("v", "double"),),
                partition_keys=(("region", "string"), ("device", "string")),
                projection=(("region", enum_projection(["eu", "us"])), ("device", injected_projection())),
            )
        )
        .one(TABLE)
        .inputs
    )
    assert table["parameters"] == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "projection.enabled": "true",
        "projection.region.type": "enum",
        "projection.region.values": "eu,us",
        "projection.device.type": "injected",
        "storage.location.template": "s3://b/p/region=${region}/device=${device}/",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Events"}, "'Events' is not a lower_snake_case name"),
        ({"name": "_events"}, "'_events' is not a lower_snake_case name"),
        ({"name": "e" * 256}, "is not a lower_snake_case name of at most 255 bytes"),
        ({"columns": (("id", "string"), ("id", "int"))}, "must be non-empty and distinct"),
        ({"columns": ()}, "must be non-empty and distinct"),
        ({"columns": (("id", "text"),)}, "column id has type 'text', not a Glue/Hive type"),
        ({"partition_keys": (("d", "array<string>"),)}, "partition key d must have a primitive type"),
        (
            {"partition_keys": (("d", "string"), ("h", "int")), "projection": (("d", integer_projection(0, 1)),)},
            "projection must cover every partition key, in order",
        ),
        ({"partition_keys": (("d", "string"),), "projection": (("d", Projection("list")),)}, "projection type"),
        ({"location": "s3://b/p"}, "location must be a folder"),
        ({"location": "b/p/"}, "location must be a folder"),
    ],
)
def test_tables_glue_or_athena_would_refuse_are_refused_before_deploy(change: dict, message: str) -> None:
    args = {"database": "db", "name": "events", "location": "s3://b/p/", "columns": (("id", "string"),)} | change
    with pytest.raises(ValueError, match=message):
        build(CatalogTableArgs(**args))


def test_a_location_known_only_at_deploy_time_is_checked_when_known() -> None:
    args = CatalogTableArgs(database="db", name="events", location="unknown", columns=(("id", "string"),))
    assert table_parameters("events", args, "s3://b/p/") == {"EXTERNAL": "TRUE", "classification": "parquet"}
    with pytest.raises(ValueError, match="CatalogTable events: location must be a folder like 's3://bucket/prefix/'"):
        table_parameters("events", args, "s3://b/p")


def test_projection_helpers_refuse_what_athena_cannot_project() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        date_projection("yyyy-MM", "2020-01,NOW", 1, "MONTH")
    with pytest.raises(ValueError, match="is empty"):
        integer_projection(23, 0)
    with pytest.raises(ValueError, match="comma-free"):
        enum_projection(["a,b"])


# --- the estate's tables ------------------------------------------------------------------------------

SUFFIX = "20260101000000000000000001"
DATABASE = "dataplatform_dev_catalog"
PARQUET_FORMATS = {
    "inputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "outputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serDeInfo": {
        "serializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "parameters": {"serialization.format": "1"},
    },
}


def bucket(estate: Estate, zone: str) -> str:
    return estate.one("aws:s3/bucket:Bucket", f"lake-{zone}").inputs["bucketPrefix"] + SUFFIX


def tables(estate: Estate) -> dict[str, dict]:
    return {t.inputs["name"]: t.inputs for t in estate.of_type(TABLE)}


def columns(table: dict) -> list[tuple[str, str]]:
    return [(c["name"], c["type"]) for c in table["storageDescriptor"]["columns"]]


def test_the_estate_defines_a_table_for_every_dataset_a_pipeline_writes(dev: Estate) -> None:
    found = tables(dev)
    assert set(found) == {
        "gharchive_events",
        "sensor_timeseries",
        "covid_dim_date",
        "covid_dim_location",
        "covid_fact_cases",
        "covid_fact_testing",
        sales.PARQUET_TABLE,
    }
    for name, table in found.items():
        assert (table["databaseName"], table["tableType"]) == (DATABASE, "EXTERNAL_TABLE"), name
        assert {k: v for k, v in table["storageDescriptor"].items() if k not in ("location", "columns")} == (
            PARQUET_FORMATS
        ), name
        assert table["parameters"]["classification"] == "parquet", name


def test_gharchive_events_table_is_the_jobs_contract_with_date_and_hour_projected(dev: Estate) -> None:
    table = tables(dev)["gharchive_events"]
    processed = bucket(dev, "processed")
    assert table["storageDescriptor"]["location"] == f"s3://{processed}/gharchive/events/"
    assert columns(table) == list(GHARCHIVE_EVENT_COLUMNS)
    # What the job declares it writes (Spark types, partition columns last) is that contract.
    assert [(f.name, f.dataType.simpleString()) for f in gharchive_events.OUTPUT_SCHEMA.fields] == [
        *columns(table),
        *[(k["name"], k["type"]) for k in table["partitionKeys"]],
    ]
    assert table["partitionKeys"] == [{"name": "date", "type": "string"}, {"name": "hour", "type": "int"}]
    assert table["parameters"] == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "projection.enabled": "true",
        "projection.date.type": "date",
        "projection.date.format": "yyyy-MM-dd",
        "projection.date.range": "2011-02-12,NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "storage.location.template": f"s3://{processed}/gharchive/events/date=${{date}}/hour=${{hour}}/",
    }


def test_sensor_timeseries_table_is_the_jobs_contract_with_months_projected(dev: Estate) -> None:
    table = tables(dev)["sensor_timeseries"]
    processed = bucket(dev, "processed")
    assert table["storageDescriptor"]["location"] == f"s3://{processed}/sensor/timeseries/"
    assert (
        columns(table)
        == list(SENSOR_TIMESERIES_COLUMNS)
        == [
            ("sensor_id", "string"),
            ("ts", "timestamp"),
            ("value", "double"),
            ("readings", "bigint"),
            ("is_gap", "boolean"),
        ]
    )
    assert table["partitionKeys"] == [{"name": "month", "type": "string"}]
    assert table["parameters"] == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "projection.enabled": "true",
        "projection.month.type": "date",
        "projection.month.format": "yyyy-MM",
        "projection.month.range": "2000-01,NOW",
        "projection.month.interval": "1",
        "projection.month.interval.unit": "MONTHS",
        "storage.location.template": f"s3://{processed}/sensor/timeseries/month=${{month}}/",
    }


def test_covid_curated_tables_are_the_star_schema_contract(dev: Estate) -> None:
    found = tables(dev)
    curated = bucket(dev, "curated")
    for name, contract in COVID_STAR_TABLES.items():
        table = found[f"covid_{name}"]
        assert table["storageDescriptor"]["location"] == f"s3://{curated}/covid/curated/{name}/"
        assert columns(table) == [(c.name, c.hive_type) for c in contract.columns]
        assert table["partitionKeys"] == []
        assert table["parameters"] == {"EXTERNAL": "TRUE", "classification": "parquet"}
    # The Arrow types the clean job writes, as Athena reads them.
    assert columns(found["covid_dim_date"]) == [
        ("date_key", "int"),
        ("full_date", "date"),
        ("year", "int"),
        ("quarter", "int"),
        ("month", "int"),
        ("day", "int"),
        ("day_of_week", "int"),
        ("is_weekend", "boolean"),
    ]
    assert columns(found["covid_dim_location"])[-3:] == [
        ("latitude", "double"),
        ("longitude", "double"),
        ("population", "bigint"),
    ]


def test_the_named_queries_read_the_table_the_stack_defines(dev: Estate) -> None:
    """Each named query is created in the table's database after the table (its database input is the
    table's output), so Athena never sees a query before its table."""
    events = dev.one(TABLE, "gharchive-events")
    for query in dev.of_type("aws:athena/namedQuery:NamedQuery"):
        assert query.inputs["database"] == DATABASE
        assert events.urn in query.dependencies, query.name
