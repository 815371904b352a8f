"""The `covid_clean` Glue job on pyspark 3.5 (Glue 5.0's engine): transforms, the curated contract, main end to end.

Expected rows and reasons are literal, worked out by hand from sample_data/covid/ (staged by
pipelines/covid_staging.stage_locally) or from the rows written here - never computed with the code
under test.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import covid_clean as job
import glue_common
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from job_runtime.errors import BadInputError
from pipelines import covid_staging, covid_star_schema
from tests.jobs.emf import figures, one_run_summary

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "covid"

CONTRACT: dict[str, list[tuple[str, T.DataType]]] = {
    "dim_date": [
        ("date_key", T.IntegerType()), ("full_date", T.DateType()), ("year", T.IntegerType()),
        ("quarter", T.IntegerType()), ("month", T.IntegerType()), ("day", T.IntegerType()),
        ("day_of_week", T.IntegerType()), ("is_weekend", T.BooleanType()),
    ],
    "dim_location": [
        ("location_key", T.StringType()), ("country", T.StringType()), ("state", T.StringType()),
        ("state_abbr", T.StringType()), ("county", T.StringType()), ("fips", T.StringType()),
        ("latitude", T.DoubleType()), ("longitude", T.DoubleType()), ("population", T.LongType()),
    ],
    "fact_cases": [
        ("date_key", T.IntegerType()), ("location_key", T.StringType()), ("confirmed", T.LongType()),
        ("deaths", T.LongType()), ("recovered", T.LongType()), ("active", T.LongType()),
    ],
    "fact_testing": [
        ("date_key", T.IntegerType()), ("location_key", T.StringType()), ("positive", T.LongType()),
        ("negative", T.LongType()), ("pending", T.LongType()), ("hospitalized_currently", T.LongType()),
        ("in_icu_currently", T.LongType()), ("on_ventilator_currently", T.LongType()), ("recovered", T.LongType()),
        ("deaths", T.LongType()), ("total_test_results", T.LongType()),
    ],
}  # fmt: skip
NOT_NULL = {
    "dim_date": ["date_key", "full_date", "year", "quarter", "month", "day", "day_of_week", "is_weekend"],
    "dim_location": ["location_key", "country"],
    "fact_cases": ["date_key", "location_key"],
    "fact_testing": ["date_key", "location_key"],
}
D = dt.date

DIM_DATE = [
    (20200320, D(2020, 3, 20), 2020, 1, 3, 20, 5, False),  # a Friday
    (20200321, D(2020, 3, 21), 2020, 1, 3, 21, 6, True),
    (20200322, D(2020, 3, 22), 2020, 1, 3, 22, 7, True),
    (20200323, D(2020, 3, 23), 2020, 1, 3, 23, 1, False),
]
DIM_LOCATION = [
    ("CANADA-ONTARIO", "Canada", "Ontario", None, None, None, 51.2538, -85.3232, None),
    ("ITALY", "Italy", None, None, None, None, 41.8719, 12.5674, None),
    ("KOREA_SOUTH", "Korea, South", None, None, None, None, 35.9078, 127.7669, None),
    ("US-01001", "US", "Alabama", "AL", "Autauga County", "01001", 32.53952745, -86.64408227, 55601),
    ("US-01003", "US", "Alabama", "AL", "Baldwin County", "01003", 30.72774991, -87.72207058, 218022),
    ("US-01005", "US", "Alabama", "AL", "Barbour County", "01005", 31.86826, -85.38713, 24881),
    ("US-36061", "US", "New York", "NY", "New York County", "36061", 40.7672726, -73.97152637, 1628701),
    ("US-53033", "US", "Washington", "WA", "King County", "53033", 47.49137892, -121.8346131, 2233163),
    ("US-53061", "US", "Washington", "WA", "Snohomish County", "53061", 48.04615983, -121.7170703, 814901),
    ("US-90053", "US", "Washington", "WA", "Unassigned", "90053", None, None, None),  # 0,0 = unknown
    ("US-AL", "US", "Alabama", "AL", None, None, 32.3182, -86.9023, 55601 + 218022 + 24881),
    ("US-NY", "US", "New York", "NY", None, None, 42.1657, -74.9481, 1628701),
    ("US-WA", "US", "Washington", "WA", None, None, 47.4009, -121.4905, 2233163 + 891299 + 814901),
]
FACT_CASES = [
    (20200321, "CANADA-ONTARIO", 311, 2, 0, 309),
    (20200321, "ITALY", 53578, 4825, 6072, 42681),
    (20200321, "KOREA_SOUTH", 8799, 102, 1540, 7157),
    (20200321, "US-01001", 1, 0, 0, 1),
    (20200321, "US-53033", 1170, 87, 0, 1083),
    (20200321, "US-AL", 5, 0, 0, 5),
    (20200321, "US-NY", 11710, 60, 0, 11650),
    (20200321, "US-WA", 1524, 83, 0, 1441),
    (20200322, "CANADA-ONTARIO", 425, 2, 0, 423),
    (20200322, "KOREA_SOUTH", 8897, 104, 2909, 5884),
    (20200322, "US-01001", 2, 0, 0, 2),  # fips 01001 at 23:45 beats 1001.0 at 12:00
    (20200322, "US-01003", 2, 0, 0, 2),
    (20200322, "US-36061", 9045, 63, 0, 8982),
    (20200322, "US-53033", 1359, 94, 0, 1265),
    (20200322, "US-53061", 500, 10, None, None),
    (20200323, "CANADA-ONTARIO", 503, 6, 0, 497),
    (20200323, "ITALY", 63927, 6077, 7432, 50418),
    (20200323, "US-01001", 6, 0, 0, 6),
    (20200323, "US-01003", 3, 0, 0, 3),
    (20200323, "US-01005", 3, 0, 0, 3),
    (20200323, "US-36061", 12305, 99, 0, 12206),
    (20200323, "US-53033", 1577, 100, 0, 1477),
    (20200323, "US-90053", 67, 0, 0, 67),
]
FACT_TESTING = [
    (20200320, "US-WA", 1376, 19336, None, None, None, None, None, 74, 20712),
    (20200321, "US-AL", 124, 28, 11, None, None, None, None, 0, 152),
    (20200321, "US-WA", 1524, 21719, None, None, None, None, None, 83, 23243),
    (20200322, "US-AL", 138, 1464, None, None, None, None, None, 0, 1602),
    (20200322, "US-NY", 15168, 46233, None, 1603, None, None, None, 114, 61401),
    (20200322, "US-WA", 1793, 25328, None, None, None, None, None, 94, 27121),
    (20200323, "US-AL", 167, 1912, None, None, None, None, None, 0, 2079),
    (20200323, "US-NY", 20875, 57414, None, 2635, 621, None, None, 157, 78289),
    (20200323, "US-WA", 1996, 28879, None, None, None, None, None, 95, 30875),
]
TABLES: dict[str, list[tuple]] = {
    "dim_date": DIM_DATE,
    "dim_location": DIM_LOCATION,
    "fact_cases": FACT_CASES,
    "fact_testing": FACT_TESTING,
}

SUPERSEDED = "superseded by a later update of the same location and day"
DUPLICATE = "duplicate of another row"
CONFLICT = "conflicts with another update of the same location and time (kept the highest counts)"
UNKNOWN_STATE = "unknown US state (not in state_abbreviations)"
# Quarantined cases: (fips, county, province_state, country_region, last_update, confirmed, reason).
QUARANTINED_CASES = [
    (None, None, None, None, "2020-03-22 23:45:00", "1", "missing location (country_region is blank)"),
    (None, None, None, "Korea South ", "2020-03-22 09:00:00", "8850", SUPERSEDED),
    (None, None, None, "Korea, South", "yesterday", "9037", "last_update is not a timestamp"),
    (None, None, None, "us", "2020-03-23 23:59:00", "7", "missing location (US row without province_state)"),
    (None, None, "Alabama", "US", None, "5", "last_update is missing"),
    (None, None, "Atlantis", "US", "2020-03-22 23:45:00", "3", UNKNOWN_STATE),
    (None, "Unassigned", "Washington", "US", "2020-03-22 23:45:00", "10", "US county without a FIPS code"),
    ("1001", "Autauga", "Alabama", "US", "2020-03-23 23:59:00", "6", DUPLICATE),
    ("1001.0", "Autauga", "Alabama", "US", "2020-03-22 12:00:00", "1", SUPERSEDED),
    ("1005", "Barbour", "Alabama", "US", "2020-03-23 23:59:00", "2", CONFLICT),
    ("53033", "King", "Washington", "US", "2020-03-22 23:45:00", "12a", "confirmed is not a whole number"),
    ("53061", "Snohomish", "Washington", "US", "2020-03-23 23:59:00", "-5", "confirmed is below zero"),
    ("abc", "Barbour", "Alabama", "US", "2020-03-23 23:59:00", "1", "fips is not a county FIPS code"),
]
# Quarantined testing: (report_date, state, positive, hospitalized_currently, date_modified, reason).
QUARANTINED_TESTING = [
    ("20200321", "NY", "N/A", None, "2020-03-21T20:00:00Z", "positive is not a whole number"),
    ("20200322", None, "5", None, "2020-03-22T20:00:00Z", "missing location (state is blank)"),
    ("20200322", "AL", "138", None, "2020-03-22T20:00:00Z", DUPLICATE),
    ("20200322", "ZZ", "5", None, "2020-03-22T20:00:00Z", "unknown state code (not in state_abbreviations)"),
    ("20200322", "wa ", "1700", None, "2020-03-22T16:00:00Z", SUPERSEDED),
    ("20200323", "NY", "20875", "-1", "2020-03-23T19:00:00Z", "hospitalized_currently is below zero"),
    ("20201345", "NY", "1", None, "2020-03-22T20:00:00Z", "report_date is not a date (yyyymmdd)"),
]
QUARANTINED_COUNTY_POPULATION = [
    ("0500000US01003", "1003", "Baldwin County", "Alabama", "218022", DUPLICATE),
    ("0500000US01007", "1007", "Bibb County", "Alabama", "22400", "conflicting rows for the same fips"),
    ("0500000US01007", "1007", "Bibb County", "Alabama", "22500", "conflicting rows for the same fips"),
    ("0500000US06037", "6037", "Los Angeles County", "Californa", "10105518", UNKNOWN_STATE),
    ("0500000US36047", "36047", "Kings County", "New York", "n/a", "population is not a whole number"),
    ("0500000US36999", "abc", "Bad County", "New York", "5", "fips is not a county FIPS code"),
    ("0500000US48001", "48001", "Anderson County", "Texas", "-57922", "population is below zero"),
    ("0500000US48999", None, "Nowhere County", "Texas", "100", "fips is missing"),
]
QUARANTINED_STATE_ABBREVIATIONS = [
    (" new york ", " ny ", DUPLICATE),
    ("Columbia", "DC", "abbreviation used by more than one state"),
    ("District of Columbia", "DC", "abbreviation used by more than one state"),
    ("Georgia", "GA", "state has more than one abbreviation"),
    ("Georgia", "GE", "state has more than one abbreviation"),
    ("Puerto Rico", None, "state_abbr is missing"),
    ("Virgin Islands", "V.I.", "state_abbr is not two letters"),
]
COUNTS = {
    "cases": {"rows_in": 36, "rows_loaded": 23, "rows_quarantined": 13},
    "testing": {"rows_in": 16, "rows_loaded": 9, "rows_quarantined": 7},
    "county_population": {"rows_in": 16, "rows_loaded": 8, "rows_quarantined": 8},
    "state_abbreviations": {"rows_in": 56, "rows_loaded": 49, "rows_quarantined": 7},
}


def ordered(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def rows_of(df) -> list[tuple]:
    return ordered([tuple(r) for r in df.collect()])


@pytest.fixture(scope="module")
def staging_dir(spark, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("covid") / "staging"
    covid_staging.stage_locally(spark, str(SAMPLE), str(directory))
    return directory


@pytest.fixture(scope="module")
def cleaned(spark, staging_dir: Path) -> Iterator[job.Cleaned]:
    """The sample's checked datasets and curated tables, cached: the tests below run many small queries on them."""
    checked = {d: df.cache() for d, df in job.transform_checked(job.read_staged(spark, str(staging_dir))).items()}
    tables = {t: df.cache() for t, df in job.transform_tables(checked).items()}
    yield job.Cleaned(checked, tables)
    for df in [*checked.values(), *tables.values()]:
        df.unpersist()


# --- the curated contract ------------------------------------------------------------------------------


def test_contract_schemas_in_order(cleaned: job.Cleaned) -> None:
    assert list(cleaned.tables) == ["dim_date", "dim_location", "fact_cases", "fact_testing"]
    for table, columns in CONTRACT.items():
        assert [(f.name, f.dataType) for f in cleaned.tables[table].schema] == columns, table
        assert [(f.name, f.dataType) for f in job.TABLE_SCHEMAS[table]] == columns, table


def test_contract_matches_the_warehouse_star_schema() -> None:
    arrow: dict[T.DataType, str] = {
        T.IntegerType(): "int32", T.LongType(): "int64", T.StringType(): "string", T.DoubleType(): "double",
        T.DateType(): "date32[day]", T.BooleanType(): "bool",
    }  # fmt: skip
    assert list(covid_star_schema.TABLES) == list(CONTRACT)
    for table, columns in CONTRACT.items():
        spec = covid_star_schema.TABLES[table]
        assert [(c.name, c.arrow_type) for c in spec.columns] == [(n, arrow[t]) for n, t in columns], table
        assert [c.name for c in spec.columns if c.not_null] == NOT_NULL[table], table


@pytest.mark.parametrize("table", list(TABLES))
def test_curated_rows_for_the_sample(cleaned: job.Cleaned, table: str) -> None:
    assert rows_of(cleaned.tables[table]) == ordered(TABLES[table])


def test_keys_are_unique_not_null_and_every_fact_key_is_in_the_dimensions(cleaned: job.Cleaned) -> None:
    t = cleaned.tables
    for table, keys in (
        ("dim_date", ["date_key"]),
        ("dim_location", ["location_key"]),
        ("fact_cases", ["date_key", "location_key"]),
        ("fact_testing", ["date_key", "location_key"]),
    ):
        assert t[table].groupBy(*keys).count().where("count > 1").count() == 0, table
        for column in NOT_NULL[table]:
            assert t[table].where(F.col(column).isNull()).count() == 0, (table, column)
    for fact in ("fact_cases", "fact_testing"):
        assert t[fact].join(t["dim_date"], "date_key", "left_anti").count() == 0
        assert t[fact].join(t["dim_location"], "location_key", "left_anti").count() == 0
    # And the dimensions hold nothing the facts do not reference.
    facts = (
        t["fact_cases"].select("date_key", "location_key").union(t["fact_testing"].select("date_key", "location_key"))
    )
    assert t["dim_date"].join(facts, "date_key", "left_anti").count() == 0
    assert t["dim_location"].join(facts, "location_key", "left_anti").count() == 0


# --- quarantine ----------------------------------------------------------------------------------------


def quarantined(cleaned: job.Cleaned, dataset: str, columns: list[str]) -> list[tuple]:
    df = job.transform_quarantine(cleaned.checked[dataset], dataset)
    assert df.columns == [*job.STAGED_COLUMNS[dataset], "reason"]
    return rows_of(df.select(*columns, "reason"))


def test_each_quarantine_reason_in_the_sample(cleaned: job.Cleaned) -> None:
    cases = ["fips", "county", "province_state", "country_region", "last_update", "confirmed"]
    assert quarantined(cleaned, "cases", cases) == ordered(QUARANTINED_CASES)
    testing = ["report_date", "state", "positive", "hospitalized_currently", "date_modified"]
    assert quarantined(cleaned, "testing", testing) == ordered(QUARANTINED_TESTING)
    population = list(job.STAGED_COLUMNS["county_population"])
    assert quarantined(cleaned, "county_population", population) == ordered(QUARANTINED_COUNTY_POPULATION)
    states = list(job.STAGED_COLUMNS["state_abbreviations"])
    assert quarantined(cleaned, "state_abbreviations", states) == ordered(QUARANTINED_STATE_ABBREVIATIONS)


def test_every_staged_row_is_loaded_or_quarantined(cleaned: job.Cleaned) -> None:
    for dataset, expected in COUNTS.items():
        checked = cleaned.checked[dataset]
        rows_in = checked.count()
        loaded = checked.where("reason IS NULL").count()
        assert {"rows_in": rows_in, "rows_loaded": loaded, "rows_quarantined": rows_in - loaded} == expected
        assert expected["rows_in"] == expected["rows_loaded"] + expected["rows_quarantined"]
    assert cleaned.tables["fact_cases"].count() == COUNTS["cases"]["rows_loaded"]
    assert cleaned.tables["fact_testing"].count() == COUNTS["testing"]["rows_loaded"]


# --- transforms on hand-written rows -------------------------------------------------------------------

STATES = [("Alabama", "AL"), ("Washington", "WA"), ("New York", "NY")]


def staged_df(spark, dataset: str, rows: list[dict[str, Any]]):
    columns = job.STAGED_COLUMNS[dataset]
    schema = T.StructType([T.StructField(c, T.StringType()) for c in columns])
    return spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], schema)


def states_checked(spark):
    rows = [{"state": s, "state_abbr": a} for s, a in STATES]
    return job.transform_state_abbreviations(staged_df(spark, "state_abbreviations", rows))


def case(**values: Any) -> dict[str, Any]:
    base = {"last_update": "2020-03-21 10:00:00", "confirmed": "1", "deaths": "0", "recovered": "0", "active": "1"}
    return {**base, **values}


def checked_cases(spark, rows: list[dict[str, Any]]) -> list[tuple]:
    checked = job.transform_cases(staged_df(spark, "cases", rows), states_checked(spark))
    fact = job.transform_fact_cases(checked)
    assert fact.count() == checked.where("reason IS NULL").count()
    return rows_of(checked.select("country_region", "last_update", "fips", "_location_key", "_date", "reason"))


def test_timestamps_in_every_accepted_spelling(spark) -> None:
    spellings = [
        "2020-03-21 10:00:00", "2020-03-21T10:00:00", "2020-03-21T10:00:00Z", "2020-03-21 10:00:00.123",
        "2020-3-21 1:02", "3/21/2020 10:00", "3/21/20 10:00", "03/21/2020 10:00:05", " 2020-03-21  10:00:00 ",
        "2020-03-21", "2020-03-21T10:00:00+00:00",
    ]  # fmt: skip
    rejected = ["2020-02-30 10:00:00", "2020-03-21 24:00:00", "1999-03-21 10:00:00", "21.03.2020", "2020-03-21 10"]
    rows = [case(country_region=f"C{i}", last_update=t) for i, t in enumerate(spellings + rejected)]
    result = {r[0]: r[3:] for r in checked_cases(spark, rows)}
    for i in range(len(spellings)):
        assert result[f"C{i}"] == (f"C{i}", D(2020, 3, 21), None), spellings[i]
    for i in range(len(spellings), len(rows)):
        assert result[f"C{i}"][2] == "last_update is not a timestamp", rows[i]["last_update"]


def test_fips_spellings_and_us_keys(spark) -> None:
    rows = [
        case(fips="1.001E3", county="Autauga", province_state="Alabama", country_region="US"),
        case(fips=" 01001 ", province_state="alabama", country_region="United States", last_update="2020-03-22"),
        case(fips="53033.0", county="King", province_state="Washington", country_region="usa"),
        case(fips="1001.5", county="Autauga", province_state="Alabama", country_region="US", confirmed="2"),
        case(fips="123", county="X", province_state="Alabama", country_region="US", confirmed="3"),
        case(fips="100000", county="Y", province_state="Alabama", country_region="US", confirmed="4"),
        case(province_state=" new  york ", country_region="US"),
        case(fips="", county="", province_state="Washington", country_region="US"),
    ]
    assert ordered([(r[2], r[3], r[5]) for r in checked_cases(spark, rows)]) == [
        (None, "US-NY", None),  # "new  york": whitespace collapsed, case ignored
        ("", "US-WA", None),  # blank fips and county: a state row
        (" 01001 ", "US-01001", None),
        ("1.001E3", "US-01001", None),
        ("100000", None, "fips is not a county FIPS code"),
        ("1001.5", None, "fips is not a county FIPS code"),
        ("123", None, "fips is not a county FIPS code"),
        ("53033.0", "US-53033", None),
    ]


def test_other_countries_keys(spark) -> None:
    rows = [
        case(country_region="Korea, South"),
        case(country_region="Canada", province_state="Ontario"),
        case(country_region=" canada ", province_state="British Columbia", fips="12345", county="ignored"),
        case(country_region="Côte d'Ivoire"),
        case(country_region="Bonaire, Sint Eustatius and Saba", province_state="--"),
        case(country_region="?!"),
        case(country_region="A" * 100, province_state="B" * 100),
        case(country_region="Long" + "x" * 253),
    ]
    assert [(r[0][:12], r[3], r[5]) for r in checked_cases(spark, rows)] == [
        (" canada ", "CANADA-BRITISH_COLUMBIA", None),
        ("?!", None, "missing location (country_region has no letters or digits)"),
        ("A" * 12, "A" * 100 + "-" + "B" * 27, None),  # at most 128 characters
        ("Bonaire, Sin", "BONAIRE_SINT_EUSTATIUS_AND_SABA", None),
        ("Canada", "CANADA-ONTARIO", None),
        ("Côte d'Ivoir", "C_TE_D_IVOIRE", None),
        ("Korea, South", "KOREA_SOUTH", None),
        ("Longxxxxxxxx", "LONG" + "X" * 124, "country_region is longer than 256 bytes"),
    ]


def test_counts_and_coordinates(spark) -> None:
    rows = [
        case(country_region="A", confirmed="1.2E1", deaths=" 3 ", recovered="", active=None),
        case(country_region="B", confirmed="12.5", deaths="NaN", recovered="1e30", active="-0.0"),
        case(country_region="C", latitude="91", longitude="10"),
        case(country_region="D", latitude="north", longitude="10"),
        case(country_region="E", latitude="-33.5", longitude="151.25"),
        case(country_region="F", latitude="0", longitude="0"),
    ]
    checked = job.transform_cases(staged_df(spark, "cases", rows), states_checked(spark))
    counts = checked.select("country_region", "_v_confirmed", "_v_deaths", "_v_recovered", "_v_active", "reason")
    assert rows_of(counts) == [
        ("A", 12, 3, None, None, None),
        ("B", None, None, None, 0, "confirmed is not a whole number; deaths is not a whole number; "
                                   "recovered is not a whole number"),
        ("C", 1, 0, 0, 1, None),
        ("D", 1, 0, 0, 1, None),
        ("E", 1, 0, 0, 1, None),
        ("F", 1, 0, 0, 1, None),
    ]  # fmt: skip
    # Unusable coordinates are left out, never a reason to quarantine.
    assert rows_of(checked.select("country_region", "_latitude", "_longitude")) == [
        ("A", None, None), ("B", None, None), ("C", None, None), ("D", None, None), ("E", -33.5, 151.25),
        ("F", None, None),
    ]  # fmt: skip


def test_latest_update_of_the_day_wins_then_the_highest_counts(spark) -> None:
    rows = [
        case(country_region="Italy", last_update="2020-03-21 08:00:00", confirmed="10"),
        case(country_region="Italy", last_update="2020-03-21 20:00:00", confirmed="5"),
        case(country_region="ITALY", last_update="3/21/2020 20:00", confirmed="5"),
        case(country_region="Italy", last_update="2020-03-21 20:00:00", confirmed="4"),
        case(country_region="Italy", last_update="2020-03-22 01:00:00", confirmed="6"),
        case(country_region="Italy", last_update="2020-03-21 23:00:00", confirmed="-1"),  # invalid: cannot win
    ]
    checked = job.transform_cases(staged_df(spark, "cases", rows), states_checked(spark))
    assert rows_of(checked.select("last_update", "confirmed", "reason")) == [
        ("2020-03-21 08:00:00", "10", SUPERSEDED),
        ("2020-03-21 20:00:00", "4", CONFLICT),
        ("2020-03-21 20:00:00", "5", DUPLICATE),  # of ITALY's (the staged text breaks ties: "ITALY" < "Italy")
        ("2020-03-21 23:00:00", "-1", "confirmed is below zero"),
        ("2020-03-22 01:00:00", "6", None),
        ("3/21/2020 20:00", "5", None),
    ]


def test_testing_dates_codes_and_repeats(spark) -> None:
    def day(**values: Any) -> dict[str, Any]:
        return {"report_date": "20200315", "state": "WA", "positive": "1", **values}

    rows = [
        day(report_date="2.0200315E7", state="wa", positive="3", date_modified="2020-03-15T20:00:00Z"),
        day(report_date="2020-03-15", positive="2", date_modified=None),  # no time: oldest
        day(report_date="20200316.0", state=" ny ", positive="4"),
        day(report_date="", state="AL"),
        day(report_date="20200230", state="AL", positive="5"),
        day(state="Washington"),
        day(state="AL", total_test_results="1,234"),
    ]
    checked = job.transform_testing(staged_df(spark, "testing", rows), states_checked(spark))
    assert rows_of(checked.select("report_date", "state", "_location_key", "_date", "reason")) == [
        ("", "AL", "US-AL", None, "report_date is missing"),
        ("2.0200315E7", "wa", "US-WA", D(2020, 3, 15), None),
        ("2020-03-15", "WA", "US-WA", D(2020, 3, 15), SUPERSEDED),
        ("20200230", "AL", "US-AL", None, "report_date is not a date (yyyymmdd)"),
        ("20200315", "AL", "US-AL", D(2020, 3, 15), "total_test_results is not a whole number"),
        ("20200315", "Washington", None, D(2020, 3, 15), "unknown state code (not in state_abbreviations)"),
        ("20200316.0", " ny ", "US-NY", D(2020, 3, 16), None),
    ]
    assert rows_of(job.transform_fact_testing(checked).select("date_key", "location_key", "positive")) == [
        (20200315, "US-WA", 3),
        (20200316, "US-NY", 4),
    ]


def test_missing_staged_column_is_bad_input(spark) -> None:
    df = staged_df(spark, "state_abbreviations", [{"state": "Alabama", "state_abbr": "AL"}]).drop("state_abbr")
    with pytest.raises(
        BadInputError, match=r"^staged dataset 'state_abbreviations' lacks column\(s\) state_abbr; it has state$"
    ):
        job.transform_state_abbreviations(df)


# --- main end to end -----------------------------------------------------------------------------------


def parquet_files(directory: Path) -> list[str]:
    return sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".crc")
    )


def read_quarantine(directory: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    parts = sorted(directory.glob("part-*.csv"))
    assert len(parts) == 1
    with parts[0].open(newline="") as handle:
        rows.extend(csv.reader(handle))
    return rows


def test_main_end_to_end_and_rerun(spark, staging_dir: Path, tmp_path: Path, capsys) -> None:
    curated, quarantine = tmp_path / "curated", tmp_path / "quarantine"
    argv = ["--staging_path", f"{staging_dir}/", "--curated_path", f"{curated}/", "--quarantine_path", f"{quarantine}/"]
    expected_summary = {
        "job": "covid_clean",
        "staging_path": f"{staging_dir}/",
        "rows_in": 36 + 16 + 16 + 56,
        "rows_loaded": 23 + 9 + 8 + 49,
        "rows_quarantined": 13 + 7 + 8 + 7,
        "datasets": COUNTS,
        "tables": {"dim_date": 4, "dim_location": 13, "fact_cases": 23, "fact_testing": 9},
    }

    capsys.readouterr()
    assert job.main(argv) == expected_summary
    # The run's one metrics line (tests/jobs/emf.py): the summary's figures, dimensions for this pipeline.
    document = one_run_summary(capsys.readouterr().out, pipeline="covid19", job="covid_clean")
    assert figures(document) == {
        "Stack": "local",
        "Pipeline": "covid19",
        "Job": "covid_clean",
        "RowsIn": 36 + 16 + 16 + 56,
        "RowsLoaded": 23 + 9 + 8 + 49,
        "RowsQuarantined": 13 + 7 + 8 + 7,
        "staging_path": f"{staging_dir}/",
        "datasets": COUNTS,
        "tables": {"dim_date": 4, "dim_location": 13, "fact_cases": 23, "fact_testing": 9},
    }

    def snapshot() -> dict[str, Any]:
        files = {t: parquet_files(curated / t) for t in TABLES}
        return {
            "rows": {t: rows_of(spark.read.parquet(str(curated / t))) for t in TABLES},
            "files": files,
            "quarantine": {d: ordered([tuple(r) for r in read_quarantine(quarantine / d)[1:]]) for d in COUNTS},
        }

    first = snapshot()
    assert {t: len(f) for t, f in first["files"].items()} == dict.fromkeys(TABLES, 1)  # few files: one each here
    for table, expected in TABLES.items():
        assert first["rows"][table] == ordered(expected), table
        # Snappy Parquet straight in the table's folder: no partition folders, no _SUCCESS, the contract's types.
        assert first["files"][table] and all(
            "/" not in f and f.endswith(".snappy.parquet") for f in first["files"][table]
        )
        schema = pq.read_schema(curated / table / first["files"][table][0])
        spec = covid_star_schema.TABLES[table]
        assert [(f.name, str(f.type)) for f in schema] == [(c.name, c.arrow_type) for c in spec.columns]
        metadata = pq.ParquetFile(curated / table / first["files"][table][0]).metadata
        assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {"SNAPPY"}
    for dataset, count in COUNTS.items():
        rows = read_quarantine(quarantine / dataset)
        assert rows[0] == [*job.STAGED_COLUMNS[dataset], "reason"]
        assert len(rows) - 1 == count["rows_quarantined"]
    # Raw text survives the CSV round trip (no trimming on write).
    assert ["", "", "", "Korea South ", "2020-03-22 09:00:00", "35.9078", "127.7669", "8850", "103", "2800", "5947",
            SUPERSEDED] in read_quarantine(quarantine / "cases")  # fmt: skip

    # A rerun replaces everything: the same rows, no duplicates, no extra files.
    assert job.main(argv) == expected_summary
    second = snapshot()
    assert second["rows"] == first["rows"]
    assert second["quarantine"] == first["quarantine"]
    assert {t: len(f) for t, f in second["files"].items()} == {t: len(f) for t, f in first["files"].items()}

    # The curated Parquet loads into the warehouse stand-in's contract check (pyarrow, by position).
    for table in TABLES:
        assert pq.read_table(curated / table).num_rows == len(TABLES[table])


def test_missing_staged_dataset_is_bad_input(spark, staging_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "staging"
    for dataset in ("cases", "county_population"):
        (partial / dataset).mkdir(parents=True)
        for f in (staging_dir / dataset).iterdir():
            (partial / dataset / f.name).write_bytes(f.read_bytes())
    (partial / "testing").mkdir()  # an empty folder is as missing as none
    curated = tmp_path / "curated"
    argv = ["--staging_path", str(partial), "--curated_path", str(curated), "--quarantine_path", str(tmp_path / "q")]

    with pytest.raises(BadInputError) as error:
        job.main(argv)
    assert str(error.value) == (
        f"staged dataset(s) testing, state_abbreviations missing: no data files under {partial}/testing/, "
        f"{partial}/state_abbreviations/"
    )
    assert not curated.exists()  # nothing written
    assert glue_common.run(job.main, argv) == glue_common.EXIT_BAD_INPUT


def test_arguments_are_required(spark) -> None:
    with pytest.raises(SystemExit):
        job.main(["--staging_path", "/tmp/x"])
