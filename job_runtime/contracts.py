"""The column and table contracts several runtimes read: the Pulumi program (config checks, Athena SQL),
the Glue jobs (Spark schemas) and the warehouse loads (SQL types). Plain data, no Spark or Arrow types:
each runtime maps the type names given here to its own types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

# --- sales ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesField:
    """One sales column: how the converter parses, checks and types it, and its warehouse column."""

    name: str
    kind: str  # "string" | "date" | "int" | "decimal"
    required: bool  # the converter quarantines rows without it; the warehouse column is NOT NULL
    precision: int = 0  # decimal only
    scale: int = 0  # decimal only
    low: Decimal | None = None  # inclusive range for numbers
    high: Decimal | None = None
    max_bytes: int = 256  # strings: longer values would not fit the warehouse's VARCHAR (sized in bytes)

    @property
    def spark_type_name(self) -> str:
        """The type in Spark DDL, as the converted Parquet holds it."""
        return f"decimal({self.precision},{self.scale})" if self.kind == "decimal" else self.kind

    @property
    def sql_type(self) -> str:
        """The warehouse column type, valid in Redshift and PostgreSQL alike."""
        return {
            "string": f"VARCHAR({self.max_bytes})",
            "date": "DATE",
            "int": "INTEGER",
            "decimal": f"DECIMAL({self.precision},{self.scale})",
        }[self.kind]


INT_MAX = Decimal(2**31 - 1)
SALES_SCHEMA: tuple[SalesField, ...] = (
    SalesField("order_id", "string", True, max_bytes=64),
    SalesField("order_date", "date", True),
    SalesField("customer_id", "string", True, max_bytes=64),
    SalesField("product_id", "string", True, max_bytes=64),
    SalesField("product_name", "string", False),
    SalesField("category", "string", False),
    SalesField("region", "string", False),
    SalesField("quantity", "int", True, low=Decimal(1), high=INT_MAX),
    SalesField("unit_price", "decimal", True, precision=12, scale=2, low=Decimal(0), high=Decimal("9999999999.99")),
    SalesField("discount", "decimal", False, precision=5, scale=4, low=Decimal(0), high=Decimal(1)),
    SalesField("sales_rep", "string", False),
    SalesField("notes", "string", False, max_bytes=4096),
)
SALES_COLUMNS: tuple[str, ...] = tuple(f.name for f in SALES_SCHEMA)
# The columns the conversion keeps unless configured otherwise (the salesColumns setting's default).
SALES_DEFAULT_COLUMNS: tuple[str, ...] = (
    "order_id",
    "order_date",
    "customer_id",
    "product_id",
    "category",
    "region",
    "quantity",
    "unit_price",
    "discount",
)
# The key every selection keeps (MERGE key) and the partition column of the converted Parquet.
SALES_KEY_COLUMNS = ("order_id", "order_date")

# --- COVID-19 -----------------------------------------------------------------------------------------

# Per landing dataset: (staged column, catalog column it comes from), in staged order. Athena's staging
# SELECT (pipelines/covid_staging.py) writes these columns, all strings; the clean job
# (glue_scripts/covid_clean.py) reads them.
COVID_STAGED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "cases": (
        ("fips", "fips"),
        ("county", "admin2"),
        ("province_state", "province_state"),
        ("country_region", "country_region"),
        ("last_update", "last_update"),
        ("latitude", "latitude"),
        ("longitude", "longitude"),
        ("confirmed", "confirmed"),
        ("deaths", "deaths"),
        ("recovered", "recovered"),
        ("active", "active"),
    ),
    "testing": (
        ("report_date", "date"),
        ("state", "state"),
        ("positive", "positive"),
        ("negative", "negative"),
        ("pending", "pending"),
        ("hospitalized_currently", "hospitalizedcurrently"),
        ("in_icu_currently", "inicucurrently"),
        ("on_ventilator_currently", "onventilatorcurrently"),
        ("recovered", "recovered"),
        ("deaths", "death"),
        ("total_test_results", "totaltestresults"),
        ("date_modified", "datemodified"),
    ),
    "county_population": (
        ("geo_id", "id"),
        ("fips", "id2"),
        ("county", "county"),
        ("state", "state"),
        ("population", "population estimate 2018"),
    ),
    "state_abbreviations": (
        ("state", "state"),
        ("state_abbr", "abbreviation"),
    ),
}
COVID_DATASETS: tuple[str, ...] = tuple(COVID_STAGED_COLUMNS)


@dataclass(frozen=True)
class Column:
    """A warehouse column of the curated contract."""

    name: str
    sql_type: str  # valid in Redshift and PostgreSQL alike
    arrow_type: str  # str() of the pyarrow type of this column in the curated Parquet
    not_null: bool = False

    @property
    def hive_type(self) -> str:
        """The column's type in the Glue Data Catalog (Hive DDL), as Athena reads the curated Parquet."""
        return ARROW_TO_HIVE[self.arrow_type]


# pyarrow type (str) -> Glue/Hive type, for the types the curated Parquet holds.
ARROW_TO_HIVE = {
    "int32": "int",
    "int64": "bigint",
    "string": "string",
    "double": "double",
    "date32[day]": "date",
    "bool": "boolean",
}


@dataclass(frozen=True)
class Table:
    """A star-schema table: the curated Parquet's columns, in order, and its keys in the warehouse."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # (column, dimension table): the column references the dimension's primary key of the same name.
    references: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def hive_columns(self) -> tuple[tuple[str, str], ...]:
        """(name, Glue/Hive type) of each column, in order: the catalog table's columns."""
        return tuple((c.name, c.hive_type) for c in self.columns)


def _int(name: str, not_null: bool = False) -> Column:
    return Column(name, "INTEGER", "int32", not_null)


def _bigint(name: str, not_null: bool = False) -> Column:
    return Column(name, "BIGINT", "int64", not_null)


def _varchar(name: str, length: int, not_null: bool = False) -> Column:
    # Redshift sizes VARCHAR in bytes, PostgreSQL in characters: 256 bytes hold any place name.
    return Column(name, f"VARCHAR({length})", "string", not_null)


def _char(name: str, length: int) -> Column:
    return Column(name, f"CHAR({length})", "string")


def _double(name: str) -> Column:
    return Column(name, "DOUBLE PRECISION", "double")


COVID_CASE_COUNTS = ("confirmed", "deaths", "recovered", "active")
COVID_TESTING_COUNTS = (
    "positive",
    "negative",
    "pending",
    "hospitalized_currently",
    "in_icu_currently",
    "on_ventilator_currently",
    "recovered",
    "deaths",
    "total_test_results",
)

_DIM_DATE = Table(
    "dim_date",
    (
        _int("date_key", True),  # yyyymmdd
        Column("full_date", "DATE", "date32[day]", True),
        _int("year", True),
        _int("quarter", True),
        _int("month", True),
        _int("day", True),
        _int("day_of_week", True),  # ISO: 1 = Monday .. 7 = Sunday
        Column("is_weekend", "BOOLEAN", "bool", True),
    ),
    ("date_key",),
)
_DIM_LOCATION = Table(
    "dim_location",
    (
        _varchar("location_key", 128, True),  # US-01001 (county), US-AL (state), KOREA_SOUTH (country)
        _varchar("country", 256, True),
        _varchar("state", 256),
        _char("state_abbr", 2),
        _varchar("county", 256),
        _char("fips", 5),
        _double("latitude"),
        _double("longitude"),
        _bigint("population"),
    ),
    ("location_key",),
)
_FACT_KEYS = (_int("date_key", True), _varchar("location_key", 128, True))
_FACT_REFERENCES = (("date_key", "dim_date"), ("location_key", "dim_location"))
_FACT_CASES = Table(
    "fact_cases",
    (*_FACT_KEYS, *(_bigint(c) for c in COVID_CASE_COUNTS)),
    ("date_key", "location_key"),
    _FACT_REFERENCES,
)
_FACT_TESTING = Table(
    "fact_testing",
    (*_FACT_KEYS, *(_bigint(c) for c in COVID_TESTING_COUNTS)),
    ("date_key", "location_key"),
    _FACT_REFERENCES,
)

# The curated star schema: the clean job writes `<curated>/<table>/` with exactly these columns in this
# order; the warehouse load creates and fills the tables in this order (dimensions before facts).
COVID_STAR_TABLES: dict[str, Table] = {t.name: t for t in (_DIM_DATE, _DIM_LOCATION, _FACT_CASES, _FACT_TESTING)}

# --- sensor time series ---------------------------------------------------------------------------------

# (column, Glue/Hive type) of the Parquet glue_scripts/sensor_timeseries.py writes, in order: one row
# per sensor and grid point; `value` and `readings` are null at a gap (no interval covers the point).
# `readings` is the input's `readings` (a positive integer count; 1 when an upload has no such column).
SENSOR_TIMESERIES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sensor_id", "string"),
    ("ts", "timestamp"),
    ("value", "double"),
    ("readings", "bigint"),
    ("is_gap", "boolean"),
)
# The partition folders under the output: month=YYYY-MM.
SENSOR_TIMESERIES_PARTITIONS: tuple[tuple[str, str], ...] = (("month", "string"),)

# --- GH Archive -----------------------------------------------------------------------------------------

# (column, Glue/Hive type) of the Parquet glue_scripts/gharchive_events.py writes, in order (its
# docstring says what each holds); the Athena named queries (pipelines/gharchive_queries.py) use them.
GHARCHIVE_EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "bigint"),
    ("event_type", "string"),
    ("created_at", "timestamp"),
    ("public", "boolean"),
    ("actor_id", "bigint"),
    ("actor_login", "string"),
    ("repo_id", "bigint"),
    ("repo_name", "string"),
    ("org_id", "bigint"),
    ("org_login", "string"),
    ("payload_action", "string"),
    ("payload_ref", "string"),
    ("payload_ref_type", "string"),
    ("push_size", "int"),
    ("push_distinct_size", "int"),
    ("issue_or_pr_number", "int"),
    ("pr_merged", "boolean"),
    ("release_tag", "string"),
    ("forkee_full_name", "string"),
    ("source_file", "string"),
)
# The key of the download's item (bookmark, baseline) in the GH Archive jobs table: what the download
# writes and what operators and the smoke test read.
GHARCHIVE_JOBS_ITEM = "gharchive"
# The partition folders under the output: date=YYYY-MM-DD/hour=H (H = 0..23, no leading zero).
GHARCHIVE_EVENT_PARTITIONS: tuple[tuple[str, str], ...] = (("date", "string"), ("hour", "int"))


# The sensor month index: the upload CLI writes it at <input>/_index/, the monthly job reads it there.
SENSOR_INDEX_DIR = "_index"


def months_between(first: datetime, last: datetime) -> list[str]:
    """Every YYYY-MM from first's month to last's month (UTC), inclusive: the months a sensor file's
    intervals touch, under which the month index lists it."""
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
