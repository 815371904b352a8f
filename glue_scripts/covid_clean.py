"""Glue job `covid_clean`: the staged COVID-19 datasets -> the star schema's curated tables, bad rows quarantined.

Input: `--staging_path` holds one Parquet folder per dataset, written by Athena's UNLOAD of
pipelines/covid_staging.py (every column a string): `cases`, `testing`, `county_population`,
`state_abbreviations`. A dataset with no data files fails the run (BadInputError naming it) before anything
is written; so does one lacking a staged column.

Output (Snappy Parquet, no partition folders - Redshift's Parquet COPY maps columns by position and
would not see partition values - replaced as a whole on every run, a few files each):
  <curated_path>dim_date/      date_key int (yyyymmdd), full_date date, year, quarter, month, day,
                               day_of_week int (ISO: 1 = Monday .. 7 = Sunday), is_weekend boolean
  <curated_path>dim_location/  location_key, country, state, state_abbr, county, fips (5 digits),
                               latitude double, longitude double, population bigint
  <curated_path>fact_cases/    date_key, location_key, confirmed, deaths, recovered, active (bigint)
  <curated_path>fact_testing/  date_key, location_key, positive, negative, pending, hospitalized_currently,
                               in_icu_currently, on_ventilator_currently, recovered, deaths,
                               total_test_results (bigint)
  <quarantine_path><dataset>/  CSV with header: the staged row as it was + `reason` ("; "-joined)
Every staged row is either used (rows_loaded) or quarantined with its reasons (rows_quarantined);
the run's summary reports both per dataset, with rows_in = rows_loaded + rows_quarantined.

Text: every value is trimmed and runs of whitespace become one space; blank means missing.
Numbers: counts are whole, non-negative numbers up to BIGINT (`12`, `12.0`, `1.2E1` - Athena writes a
DOUBLE column's VARCHAR in scientific notation); blank counts are null, other text is quarantined.

Reference data (used to key and describe locations):
  * state_abbreviations: state name and two-letter code required; names compare case-insensitively.
    Rows repeating another row are quarantined ("duplicate of another row"; the kept spelling is
    the first in code-point order, so `Alabama` beats `alabama`); a name with two codes, or a code
    used by two names, makes every row involved ambiguous, and they are quarantined.
  * county_population: fips (Id2: a whole number 1000-99999, zero-padded to 5 digits), a known
    state name and a population are required; repeated rows keep one, and differing rows for one
    fips are all quarantined ("conflicting rows for the same fips"). Its state's code is looked up
    by name.

Location keys (at most 128 ASCII characters), the same in both facts:
  * US (country_region US/USA/United States[ of America], any case): every row needs a known
    province_state (state_abbreviations). A row with a county (admin2) or a fips is a county row and
    needs a county FIPS (a whole number 1000-99999, written 1001, 01001 or 1001.0) -> `US-01001`;
    a row with neither is a state row -> `US-<code>` (e.g. `US-AL`). Testing rows are state rows
    keyed by their two-letter code, which must be known.
  * other countries: `<COUNTRY>` or `<COUNTRY>-<PROVINCE>`, upper-cased with every run of characters
    other than A-Z and 0-9 replaced by `_` (trimmed of `_`): `Korea, South` -> `KOREA_SOUTH`,
    `Ontario, Canada` -> `CANADA-ONTARIO`. Spellings differing only in case/punctuation share a key.
Days: cases are dated by last_update's calendar day as written (UTC in the source; formats
`yyyy-M-d[( |T)H:mm[:ss[.fff]]][Z]` and `M/d/yy[yy] H:mm[:ss]`, years 2000-2099); testing by its
report_date (`yyyyMMdd`, also `yyyy-MM-dd` or that number written as a DOUBLE).

One fact per location and day: among a location-day's valid rows the latest update wins (cases:
last_update; testing: date_modified, blank or unparsable counting as oldest), then the highest counts.
Losers are quarantined as "superseded by a later update of the same location and day", "duplicate of
another row" (same time and counts) or "conflicts with another update of the same location and
time (kept the highest counts)".

dim_location has one row per location key of either fact (so every fact key exists in it), with
the most common spelling among the kept rows (ties: the latest): country `US` for US keys, state
the state_abbreviations name, county the Census name from county_population (else admin2), fips
for counties; latitude/longitude from the latest kept row with a usable pair (both numbers in
range and not 0,0, which the source uses for "unknown"; otherwise they are just left null, never a
reason to quarantine); population from county_population for counties and, for US state keys, the
sum of that state's counties in county_population (null when it has none), null for other
countries. dim_date has one row per day of either fact.

Bad rows (quarantined with every reason that applies): a missing or unparsable date, a missing or
unknown location (blank country, a US row without or with an unknown state, a US county without
or with an invalid fips, an unknown state code), counts that are not whole numbers or are below
zero, names longer than 256 bytes (the warehouse's VARCHAR(256)).

Arguments: --staging_path --curated_path --quarantine_path
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import glue_common
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime.contracts import (
    COVID_CASE_COUNTS,
    COVID_DATASETS,
    COVID_STAGED_COLUMNS,
    COVID_STAR_TABLES,
    COVID_TESTING_COUNTS,
)
from job_runtime.errors import BadInputError

JOB = "covid_clean"
PIPELINE = "covid19"  # pipelines/registry.py: the Pipeline dimension of its metrics
REASON = "reason"

# The staged columns per dataset and the curated star schema: job_runtime.contracts, which the Athena
# staging (pipelines/covid_staging.py) and the warehouse load (pipelines/covid_star_schema.py) also read.
STAGED_COLUMNS: dict[str, tuple[str, ...]] = {
    dataset: tuple(staged for staged, _ in pairs) for dataset, pairs in COVID_STAGED_COLUMNS.items()
}
DATASETS = COVID_DATASETS
CASE_COUNTS = COVID_CASE_COUNTS
TESTING_COUNTS = COVID_TESTING_COUNTS

# The Spark type of each Arrow type name the curated contract uses.
_SPARK_TYPES: dict[str, T.DataType] = {
    "int32": T.IntegerType(),
    "int64": T.LongType(),
    "double": T.DoubleType(),
    "string": T.StringType(),
    "bool": T.BooleanType(),
    "date32[day]": T.DateType(),
}
TABLE_SCHEMAS: dict[str, T.StructType] = {
    table.name: T.StructType([T.StructField(c.name, _SPARK_TYPES[c.arrow_type]) for c in table.columns])
    for table in COVID_STAR_TABLES.values()
}
TABLES = tuple(TABLE_SCHEMAS)

US_NAMES = ("US", "USA", "U.S.", "U.S.A.", "UNITED STATES", "UNITED STATES OF AMERICA")
MAX_KEY_CHARS = 128
MAX_NAME_BYTES = 256
ROWS_PER_FILE = 2_000_000  # facts: ~10-20 MB of Snappy Parquet per file; the dimensions are one file

SUPERSEDED = "superseded by a later update of the same location and day"
DUPLICATE = "duplicate of another row"
CONFLICT = "conflicts with another update of the same location and time (kept the highest counts)"
UNKNOWN_STATE = "unknown US state (not in state_abbreviations)"

# Timestamps/dates as the sources write them (regexp groups: year, month, day, hour, minute, second, fraction).
_ISO = r"^(20\d\d)-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:Z|[+-]00:?00)?$"
_US = r"^(\d{1,2})/(\d{1,2})/(20\d\d|\d\d)(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
_COMPACT = r"^(20\d\d)(\d\d)(\d\d)$"


# --- column helpers ----------------------------------------------------------------------------------


def _text(column: str) -> Column:
    """Trimmed text with whitespace runs collapsed to one space; null when blank."""
    cleaned = F.trim(F.regexp_replace(F.col(column), r"\s+", " "))
    return F.when(cleaned != "", cleaned)


def _t(name: str) -> Column:
    return F.col(f"_t_{name}")


def _try_cast(column: str, sql_type: str) -> Column:
    # try_cast: null on failure whatever spark.sql.ansi.enabled says.
    return F.expr(f"try_cast(`{column}` AS {sql_type})")


def _reasons(*checks: Column) -> Column:
    """'; '-joined non-null reason texts, or null when there are none (concat_ws skips nulls)."""
    joined = F.concat_ws("; ", *checks)
    return F.when(joined != "", joined)


def _too_long(name: str, label: str) -> Column:
    return F.when(F.octet_length(_t(name)) > MAX_NAME_BYTES, F.lit(f"{label} is longer than {MAX_NAME_BYTES} bytes"))


def _whole(name: str) -> Column:
    """The whole number a text holds as BIGINT, or null (blank, not a number, fractional, out of range)."""
    number = F.col(f"_n_{name}")
    return F.when(
        (number == F.floor(number)) & (number <= F.lit(2**63 - 1)) & (number >= F.lit(-(2**63))),
        number.cast("bigint"),
    )


def _count_checks(name: str) -> list[Column]:
    """A count's reasons: present but not a whole number, or below zero."""
    return [
        F.when(_t(name).isNotNull() & _whole(name).isNull(), F.lit(f"{name} is not a whole number")),
        F.when(_whole(name) < 0, F.lit(f"{name} is below zero")),
    ]


def _with_texts(df: DataFrame, names: Sequence[str], numbers: Sequence[str] = ()) -> DataFrame:
    """Adds `_t_<name>` (clean text) per column, then `_n_<name>` (DECIMAL(38,18) or null) per numeric one."""
    texts = df.select("*", *(_text(n).alias(f"_t_{n}") for n in names))
    return texts.select("*", *(_try_cast(f"_t_{n}", "DECIMAL(38, 18)").alias(f"_n_{n}") for n in numbers))


def _iso_text(text: Column, with_time: bool) -> Column:
    """`yyyy-MM-dd[ HH:mm:ss[.fff]]` from any accepted spelling, or null; validity is left to a cast."""

    def part(pattern: str, group: int) -> Column:
        return F.regexp_extract(text, pattern, group)

    def two(value: Column) -> Column:
        return F.when(value == "", F.lit("00")).otherwise(F.lpad(value, 2, "0"))

    def iso(year: Column, month: Column, day: Column, time: list[Column], fraction: Column | None) -> Column:
        date = F.concat_ws("-", year, F.lpad(month, 2, "0"), F.lpad(day, 2, "0"))
        if not with_time:
            return date
        clock = F.concat_ws(":", *(two(t) for t in time))
        stamp = F.concat(date, F.lit(" "), clock)
        if fraction is None:
            return stamp
        return F.when(fraction == "", stamp).otherwise(F.concat(stamp, F.lit("."), fraction))

    us_year = part(_US, 3)
    return (
        F.when(
            text.rlike(_ISO),
            iso(part(_ISO, 1), part(_ISO, 2), part(_ISO, 3), [part(_ISO, g) for g in (4, 5, 6)], part(_ISO, 7)),
        )
        .when(
            text.rlike(_US),
            iso(
                F.when(F.length(us_year) == 2, F.concat(F.lit("20"), us_year)).otherwise(us_year),
                part(_US, 1),
                part(_US, 2),
                [part(_US, g) for g in (4, 5, 6)],
                None,
            ),
        )
        .when(text.rlike(_COMPACT), iso(part(_COMPACT, 1), part(_COMPACT, 2), part(_COMPACT, 3), [], None))
    )


def _slug(text: Column) -> Column:
    """Upper-cased, runs of anything but A-Z/0-9 as `_`, no leading/trailing `_`; '' when nothing is left."""
    replaced = F.regexp_replace(F.upper(F.coalesce(text, F.lit(""))), r"[^A-Z0-9]+", "_")
    return F.regexp_replace(replaced, r"^_+|_+$", "")


def _date_key(date: Column) -> Column:
    return (F.year(date) * 10000 + F.month(date) * 100 + F.dayofmonth(date)).cast("int")


def require_columns(df: DataFrame, dataset: str) -> None:
    missing = [c for c in STAGED_COLUMNS[dataset] if c not in df.columns]
    if missing:
        raise BadInputError(
            f"staged dataset {dataset!r} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns) or 'none'}"
        )


def _raw(df: DataFrame, dataset: str) -> DataFrame:
    """The staged columns only, as strings, in staged order."""
    require_columns(df, dataset)
    return df.select(*(F.col(c).cast("string").alias(c) for c in STAGED_COLUMNS[dataset]))


# --- reference data ----------------------------------------------------------------------------------


def transform_state_abbreviations(staged: DataFrame) -> DataFrame:
    """Staged rows + `_state_key` (upper-case name), `_state` (name), `_abbr` (code) + `reason`."""
    df = _with_texts(_raw(staged, "state_abbreviations"), ("state", "state_abbr"))
    df = df.select("*", F.upper(_t("state")).alias("_state_key"), F.upper(_t("state_abbr")).alias("_abbr"))
    own = _reasons(
        F.when(_t("state").isNull(), F.lit("state is missing")),
        F.when(_t("state_abbr").isNull(), F.lit("state_abbr is missing")),
        F.when(
            _t("state_abbr").isNotNull() & ~F.col("_abbr").rlike("^[A-Z]{2}$"),
            F.lit("state_abbr is not two letters"),
        ),
        _too_long("state", "state"),
    )
    df = df.withColumn("_own", own)
    ok = F.col("_own").isNull()
    by_name = Window.partitionBy("_state_key")
    by_abbr = Window.partitionBy("_abbr")
    # Among the rows without a problem of their own: the name's codes and the code's names must be unique.
    many_abbrs = F.min(F.when(ok, F.col("_abbr"))).over(by_name) != F.max(F.when(ok, F.col("_abbr"))).over(by_name)
    many_names = F.min(F.when(ok, F.col("_state_key"))).over(by_abbr) != F.max(F.when(ok, F.col("_state_key"))).over(
        by_abbr
    )
    order = Window.partitionBy("_state_key", "_abbr", ok).orderBy(_t("state"), "state", "state_abbr")
    checked = df.select(
        "*",
        _reasons(
            F.col("_own"),
            F.when(ok & many_abbrs, F.lit("state has more than one abbreviation")),
            F.when(ok & many_names, F.lit("abbreviation used by more than one state")),
            F.when(ok & (F.row_number().over(order) > 1), F.lit(DUPLICATE)),
        ).alias(REASON),
    )
    return checked.select(
        *STAGED_COLUMNS["state_abbreviations"], "_state_key", _t("state").alias("_state"), "_abbr", REASON
    )


def _states(states_checked: DataFrame, prefix: str) -> DataFrame:
    """The valid state lookup (unique by name and by code), columns renamed `<prefix>key/name/abbr`."""
    return F.broadcast(
        states_checked.where(F.col(REASON).isNull()).select(
            F.col("_state_key").alias(f"{prefix}key"),
            F.col("_state").alias(f"{prefix}name"),
            F.col("_abbr").alias(f"{prefix}abbr"),
        )
    )


def _fips(name: str) -> Column:
    """A county FIPS code (5 digits) from a whole number 1000-99999, else null."""
    number = _whole(name)
    return F.when((number >= 1000) & (number <= 99999), F.lpad(number.cast("string"), 5, "0"))


def transform_county_population(staged: DataFrame, states_checked: DataFrame) -> DataFrame:
    """Staged rows + `_fips`, `_county`, `_state_abbr`, `_population` + `reason`."""
    df = _with_texts(
        _raw(staged, "county_population"), ("fips", "county", "state", "population"), ("fips", "population")
    )
    df = df.join(_states(states_checked, "_cs_"), F.upper(_t("state")) == F.col("_cs_key"), "left")
    df = df.select("*", _fips("fips").alias("_fips"), _whole("population").alias("_population"))
    own = _reasons(
        F.when(_t("fips").isNull(), F.lit("fips is missing")),
        F.when(_t("fips").isNotNull() & F.col("_fips").isNull(), F.lit("fips is not a county FIPS code")),
        F.when(_t("state").isNull(), F.lit("state is missing")),
        F.when(_t("state").isNotNull() & F.col("_cs_abbr").isNull(), F.lit(UNKNOWN_STATE)),
        F.when(_t("population").isNull(), F.lit("population is missing")),
        *_count_checks("population"),
        _too_long("county", "county"),
    )
    df = df.withColumn("_own", own)
    ok = F.col("_own").isNull()
    values = F.struct(_t("county"), F.col("_cs_abbr"), F.col("_population"))
    by_fips = Window.partitionBy("_fips", ok)
    conflicting = F.min(values).over(by_fips) != F.max(values).over(by_fips)
    order = Window.partitionBy("_fips", ok).orderBy(*STAGED_COLUMNS["county_population"])
    reason = _reasons(
        F.col("_own"),
        F.when(ok & conflicting, F.lit("conflicting rows for the same fips")),
        F.when(ok & ~conflicting & (F.row_number().over(order) > 1), F.lit(DUPLICATE)),
    )
    return df.select(
        *STAGED_COLUMNS["county_population"],
        "_fips",
        _t("county").alias("_county"),
        F.col("_cs_abbr").alias("_state_abbr"),
        "_population",
        reason.alias(REASON),
    )


# --- facts -------------------------------------------------------------------------------------------


def _latest_wins(
    df: DataFrame, partition: Sequence[str], latest: str, counts: Sequence[str], raw: Sequence[str]
) -> Column:
    """The reason a valid row (`_own` null) loses to another of its location and day, or null.

    Order: `latest` (nulls oldest), then the highest counts, then the staged text (only to be deterministic).
    """
    ok = F.col("_own").isNull()
    window = Window.partitionBy(*partition, ok).orderBy(
        F.col(latest).desc_nulls_last(),
        *(F.col(f"_v_{c}").desc_nulls_last() for c in counts),
        *(F.col(c).asc_nulls_first() for c in raw),
    )
    winner_time = F.first(latest).over(window)
    values = F.struct(*(F.col(f"_v_{c}") for c in counts))
    return F.when(
        ok & (F.row_number().over(window) > 1),
        F.when(winner_time.isNotNull() & (F.col(latest).isNull() | (F.col(latest) < winner_time)), F.lit(SUPERSEDED))
        .when(values.eqNullSafe(F.first(values).over(window)), F.lit(DUPLICATE))
        .otherwise(F.lit(CONFLICT)),
    )


def transform_cases(staged: DataFrame, states_checked: DataFrame) -> DataFrame:
    """Staged cases rows + typed/keyed private columns (`_date`, `_location_key`, `_v_<count>`, names...) + `reason`."""
    raw = STAGED_COLUMNS["cases"]
    df = _with_texts(_raw(staged, "cases"), raw, ("fips", *CASE_COUNTS))
    df = df.join(_states(states_checked, "_st_"), F.upper(_t("province_state")) == F.col("_st_key"), "left")
    iso = _iso_text(_t("last_update"), with_time=True)
    df = df.select(
        "*",
        iso.alias("_iso"),
        F.coalesce(F.upper(_t("country_region")).isin(*US_NAMES), F.lit(False)).alias("_us"),
        (_t("county").isNotNull() | _t("fips").isNotNull()).alias("_county_row"),
        _fips("fips").alias("_fips"),
        _slug(_t("country_region")).alias("_country_slug"),
        _slug(_t("province_state")).alias("_province_slug"),
        *(_whole(c).alias(f"_v_{c}") for c in CASE_COUNTS),
    )
    df = df.select("*", _try_cast("_iso", "TIMESTAMP").alias("_ts"), _try_cast("_iso", "DATE").alias("_date"))
    us, county_row = F.col("_us"), F.col("_county_row")
    us_key = F.when(county_row, F.when(F.col("_fips").isNotNull(), F.concat(F.lit("US-"), F.col("_fips")))).otherwise(
        F.when(F.col("_st_abbr").isNotNull(), F.concat(F.lit("US-"), F.col("_st_abbr")))
    )
    other_key = F.when(
        F.col("_country_slug") != "",
        F.substring(
            F.when(F.col("_province_slug") == "", F.col("_country_slug")).otherwise(
                F.concat_ws("-", F.col("_country_slug"), F.col("_province_slug"))
            ),
            1,
            MAX_KEY_CHARS,
        ),
    )
    df = df.withColumn("_location_key", F.when(us, us_key).otherwise(other_key))
    own = _reasons(
        F.when(_t("last_update").isNull(), F.lit("last_update is missing")),
        F.when(_t("last_update").isNotNull() & F.col("_ts").isNull(), F.lit("last_update is not a timestamp")),
        F.when(_t("country_region").isNull(), F.lit("missing location (country_region is blank)")),
        F.when(
            _t("country_region").isNotNull() & ~us & (F.col("_country_slug") == ""),
            F.lit("missing location (country_region has no letters or digits)"),
        ),
        F.when(us & _t("province_state").isNull(), F.lit("missing location (US row without province_state)")),
        F.when(us & _t("province_state").isNotNull() & F.col("_st_abbr").isNull(), F.lit(UNKNOWN_STATE)),
        F.when(us & _t("county").isNotNull() & _t("fips").isNull(), F.lit("US county without a FIPS code")),
        F.when(us & _t("fips").isNotNull() & F.col("_fips").isNull(), F.lit("fips is not a county FIPS code")),
        *(check for c in CASE_COUNTS for check in _count_checks(c)),
        _too_long("country_region", "country_region"),
        _too_long("province_state", "province_state"),
        _too_long("county", "county"),
    )
    df = df.withColumn("_own", own)
    loses = _latest_wins(df, ("_location_key", "_date"), "_ts", CASE_COUNTS, raw)
    lat, lon = _try_cast("_t_latitude", "DOUBLE"), _try_cast("_t_longitude", "DOUBLE")
    usable = lat.between(-90, 90) & lon.between(-180, 180) & ~((lat == 0) & (lon == 0))
    return df.select(
        *raw,
        "_date",
        "_ts",
        "_location_key",
        F.when(us, F.lit("US")).otherwise(_t("country_region")).alias("_country"),
        F.when(us, F.col("_st_name")).otherwise(_t("province_state")).alias("_state"),
        F.when(us, F.col("_st_abbr")).alias("_state_abbr"),
        F.when(us & county_row, _t("county")).alias("_county"),
        F.when(us & county_row, F.col("_fips")).alias("_fips"),
        F.when(usable, lat).alias("_latitude"),
        F.when(usable, lon).alias("_longitude"),
        *(f"_v_{c}" for c in CASE_COUNTS),
        _reasons(F.col("_own"), loses).alias(REASON),
    )


def transform_testing(staged: DataFrame, states_checked: DataFrame) -> DataFrame:
    """Staged testing rows + `_date`, `_location_key`, names, `_v_<count>` + `reason`."""
    raw = STAGED_COLUMNS["testing"]
    df = _with_texts(_raw(staged, "testing"), raw, ("report_date", *TESTING_COUNTS))
    df = df.join(_states(states_checked, "_st_"), F.upper(_t("state")) == F.col("_st_abbr"), "left")
    # A DOUBLE column's VARCHAR (2.0200315E7) or 20200315.0 is the same yyyymmdd number.
    number = _whole("report_date")
    digits = F.when(_t("report_date").rlike(r"^\d{8}$"), _t("report_date")).when(
        number.between(20000101, 20991231), number.cast("string")
    )
    df = df.select(
        "*",
        F.coalesce(_iso_text(digits, with_time=False), _iso_text(_t("report_date"), with_time=False)).alias("_iso"),
        _iso_text(_t("date_modified"), with_time=True).alias("_modified_iso"),
        *(_whole(c).alias(f"_v_{c}") for c in TESTING_COUNTS),
    )
    df = df.select(
        "*", _try_cast("_iso", "DATE").alias("_date"), _try_cast("_modified_iso", "TIMESTAMP").alias("_modified")
    )
    df = df.withColumn("_location_key", F.concat(F.lit("US-"), F.col("_st_abbr")))
    own = _reasons(
        F.when(_t("report_date").isNull(), F.lit("report_date is missing")),
        F.when(_t("report_date").isNotNull() & F.col("_date").isNull(), F.lit("report_date is not a date (yyyymmdd)")),
        F.when(_t("state").isNull(), F.lit("missing location (state is blank)")),
        F.when(
            _t("state").isNotNull() & F.col("_st_abbr").isNull(),
            F.lit("unknown state code (not in state_abbreviations)"),
        ),
        *(check for c in TESTING_COUNTS for check in _count_checks(c)),
    )
    df = df.withColumn("_own", own)
    loses = _latest_wins(df, ("_location_key", "_date"), "_modified", TESTING_COUNTS, raw)
    return df.select(
        *raw,
        "_date",
        F.col("_date").cast("timestamp").alias("_ts"),
        "_location_key",
        F.lit("US").alias("_country"),
        F.col("_st_name").alias("_state"),
        F.col("_st_abbr").alias("_state_abbr"),
        F.lit(None).cast("string").alias("_county"),
        F.lit(None).cast("string").alias("_fips"),
        F.lit(None).cast("double").alias("_latitude"),
        F.lit(None).cast("double").alias("_longitude"),
        *(f"_v_{c}" for c in TESTING_COUNTS),
        _reasons(F.col("_own"), loses).alias(REASON),
    )


def _valid(checked: DataFrame) -> DataFrame:
    return checked.where(F.col(REASON).isNull())


def _conform(df: DataFrame, table: str) -> DataFrame:
    """The contract's columns, in order, at the contract's types."""
    return df.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in TABLE_SCHEMAS[table].fields))


def _fact(checked: DataFrame, table: str, counts: Sequence[str]) -> DataFrame:
    facts = _valid(checked).select(
        _date_key(F.col("_date")).alias("date_key"),
        F.col("_location_key").alias("location_key"),
        *(F.col(f"_v_{c}").alias(c) for c in counts),
    )
    return _conform(facts, table)


def transform_fact_cases(cases_checked: DataFrame) -> DataFrame:
    return _fact(cases_checked, "fact_cases", CASE_COUNTS)


def transform_fact_testing(testing_checked: DataFrame) -> DataFrame:
    return _fact(testing_checked, "fact_testing", TESTING_COUNTS)


# --- dimensions --------------------------------------------------------------------------------------


def transform_dim_date(*facts: DataFrame) -> DataFrame:
    """One row per date_key of the given facts."""
    keys = reduce(DataFrame.unionByName, (f.select("date_key") for f in facts)).distinct()
    key = F.col("date_key")
    full = F.make_date(
        F.floor(key / 10000).cast("int"), (F.floor(key / 100) % 100).cast("int"), (key % 100).cast("int")
    )
    days = keys.select("date_key", full.alias("full_date"))
    iso_weekday = F.weekday("full_date") + 1  # weekday: 0 = Monday
    return _conform(
        days.select(
            "date_key",
            "full_date",
            F.year("full_date").alias("year"),
            F.quarter("full_date").alias("quarter"),
            F.month("full_date").alias("month"),
            F.dayofmonth("full_date").alias("day"),
            iso_weekday.alias("day_of_week"),
            (iso_weekday >= 6).alias("is_weekend"),
        ),
        "dim_date",
    )


_NAMES = ("_country", "_state", "_state_abbr", "_county", "_fips")


def transform_dim_location(
    cases_checked: DataFrame, testing_checked: DataFrame, counties_checked: DataFrame
) -> DataFrame:
    """One row per location key of the facts: names, coordinates and population (see module docstring)."""
    columns = ["_location_key", *_NAMES, "_latitude", "_longitude", "_ts"]
    seen = _valid(cases_checked).select(*columns).unionByName(_valid(testing_checked).select(*columns))
    names = F.struct(*(F.col(n) for n in _NAMES))
    spellings = seen.groupBy("_location_key", *_NAMES).agg(F.count(F.lit(1)).alias("_n"), F.max("_ts").alias("_last"))
    best = spellings.groupBy("_location_key").agg(F.max_by(names, F.struct("_n", "_last", names)).alias("_names"))
    point = F.struct("_latitude", "_longitude")
    coordinates = (
        seen.where(F.col("_latitude").isNotNull() & F.col("_longitude").isNotNull())
        .groupBy("_location_key")
        .agg(F.max_by(point, F.struct("_ts", "_latitude", "_longitude")).alias("_point"))
    )
    counties = _valid(counties_checked)
    census = F.broadcast(
        counties.select(F.col("_fips").alias("_c_fips"), F.col("_county").alias("_c_county"), "_population")
    )
    state_population = F.broadcast(
        counties.groupBy(F.col("_state_abbr").alias("_p_abbr")).agg(F.sum("_population").alias("_state_population"))
    )
    location = best.join(coordinates, "_location_key", "left").select(
        "_location_key",
        "_names.*",
        F.col("_point._latitude").alias("latitude"),
        F.col("_point._longitude").alias("longitude"),
    )
    is_state = F.col("_fips").isNull() & (F.col("_location_key") == F.concat(F.lit("US-"), F.col("_state_abbr")))
    joined = location.join(census, F.col("_fips") == F.col("_c_fips"), "left").join(
        state_population, is_state & (F.col("_state_abbr") == F.col("_p_abbr")), "left"
    )
    return _conform(
        joined.select(
            F.col("_location_key").alias("location_key"),
            F.col("_country").alias("country"),
            F.col("_state").alias("state"),
            F.col("_state_abbr").alias("state_abbr"),
            F.coalesce("_c_county", "_county").alias("county"),
            F.col("_fips").alias("fips"),
            "latitude",
            "longitude",
            F.coalesce("_population", "_state_population").alias("population"),
        ),
        "dim_location",
    )


# --- the whole transform -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleaned:
    """Every staged row with its `reason` (null = used), per dataset; and the curated tables."""

    checked: dict[str, DataFrame]
    tables: dict[str, DataFrame]


def transform_checked(staged: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Staged datasets (raw strings) -> per dataset, every row with typed private columns and `reason`."""
    states = transform_state_abbreviations(staged["state_abbreviations"])
    return {
        "cases": transform_cases(staged["cases"], states),
        "testing": transform_testing(staged["testing"], states),
        "county_population": transform_county_population(staged["county_population"], states),
        "state_abbreviations": states,
    }


def transform_tables(checked: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """The curated tables (contract order and types) from the checked datasets."""
    fact_cases = transform_fact_cases(checked["cases"])
    fact_testing = transform_fact_testing(checked["testing"])
    return {
        "dim_date": transform_dim_date(fact_cases, fact_testing),
        "dim_location": transform_dim_location(checked["cases"], checked["testing"], checked["county_population"]),
        "fact_cases": fact_cases,
        "fact_testing": fact_testing,
    }


def transform_quarantine(checked: DataFrame, dataset: str) -> DataFrame:
    """The dataset's rejected rows: the staged text as it was, and why."""
    return checked.where(F.col(REASON).isNotNull()).select(*STAGED_COLUMNS[dataset], REASON)


def transform_all(staged: dict[str, DataFrame]) -> Cleaned:
    checked = transform_checked(staged)
    return Cleaned(checked, transform_tables(checked))


# --- I/O ---------------------------------------------------------------------------------------------


def _folder(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}/"


def read_staged(spark: SparkSession, staging_path: str) -> dict[str, DataFrame]:
    """Each staged dataset's Parquet (Athena names its files without an extension); BadInputError if one is missing."""
    missing = [d for d in DATASETS if not glue_common.list_files(spark, _folder(staging_path, d))]
    if missing:
        raise BadInputError(
            f"staged dataset(s) {', '.join(missing)} missing: no data files under "
            + ", ".join(_folder(staging_path, d) for d in missing)
        )
    staged = {d: spark.read.parquet(_folder(staging_path, d)) for d in DATASETS}
    for dataset, df in staged.items():
        require_columns(df, dataset)
    return staged


def _files(rows: int) -> int:
    return max(1, -(-rows // ROWS_PER_FILE))


def run(spark: SparkSession, staging_path: str, curated_path: str, quarantine_path: str) -> dict[str, Any]:
    """The whole job; returns the logged summary."""
    staged = read_staged(spark, staging_path)
    checked = {d: df.persist() for d, df in transform_checked(staged).items()}
    try:
        return _write(spark, checked, curated_path, quarantine_path, staging_path)
    finally:
        for df in checked.values():
            df.unpersist()


def _write(
    spark: SparkSession, checked: dict[str, DataFrame], curated_path: str, quarantine_path: str, staging_path: str
) -> dict[str, Any]:
    # One small job counts every dataset (and fills the cache).
    totals = reduce(
        DataFrame.unionByName,
        (
            df.agg(F.count(F.lit(1)).alias("rows_in"), F.count(REASON).alias("rows_quarantined")).select(
                F.lit(d).alias("dataset"), "rows_in", "rows_quarantined"
            )
            for d, df in checked.items()
        ),
    ).collect()
    datasets: dict[str, dict[str, int]] = {}
    for row in totals:
        rows_in, quarantined = int(row["rows_in"]), int(row["rows_quarantined"])
        datasets[row["dataset"]] = {
            "rows_in": rows_in,
            "rows_loaded": rows_in - quarantined,
            "rows_quarantined": quarantined,
        }

    for dataset, df in checked.items():
        # The dataset's quarantine is replaced as a whole (header only when every row is fine).
        transform_quarantine(df, dataset).coalesce(1).write.mode("overwrite").options(
            header="true", ignoreLeadingWhiteSpace="false", ignoreTrailingWhiteSpace="false"
        ).csv(_folder(quarantine_path, dataset))

    tables = transform_tables(checked)
    files = {
        "fact_cases": _files(datasets["cases"]["rows_loaded"]),
        "fact_testing": _files(datasets["testing"]["rows_loaded"]),
    }
    written: dict[str, int] = {}
    for table, df in tables.items():
        observation = Observation(f"covid_{table}")
        observed = df.observe(observation, F.count(F.lit(1)).alias("rows"))
        keys = ["date_key", "location_key"] if table.startswith("fact_") else [df.columns[0]]
        # Overwrite without partition columns replaces the whole folder: a rerun leaves only this run's files.
        observed.coalesce(files.get(table, 1)).sortWithinPartitions(*keys).write.mode("overwrite").option(
            "compression", "snappy"
        ).parquet(_folder(curated_path, table))
        written[table] = int(observation.get["rows"])
    assert written["fact_cases"] == datasets["cases"]["rows_loaded"], (written, datasets)
    assert written["fact_testing"] == datasets["testing"]["rows_loaded"], (written, datasets)

    return glue_common.log_summary(
        JOB,
        PIPELINE,
        staging_path=staging_path,
        rows_in=sum(d["rows_in"] for d in datasets.values()),
        rows_loaded=sum(d["rows_loaded"] for d in datasets.values()),
        rows_quarantined=sum(d["rows_quarantined"] for d in datasets.values()),
        datasets=datasets,
        tables=written,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point; a missing staged dataset or column raises BadInputError (see glue_common.run)."""
    glue_common.setup_logging()
    # Glue's getResolvedOptions skips argv[0], so on Glue this must be the whole sys.argv.
    argv = sys.argv if argv is None else argv
    glue_common.start_run(argv)
    args = glue_common.resolve_args(argv, required=("staging_path", "curated_path", "quarantine_path"), optional={})
    spark = glue_common.spark_session(JOB)
    return run(spark, args["staging_path"], args["curated_path"], args["quarantine_path"])


if __name__ == "__main__":
    sys.exit(glue_common.run(main))
