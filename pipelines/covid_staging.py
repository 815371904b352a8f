"""COVID-19 staging: the Athena SQL that stages each landing dataset, and its local stand-in.

The landing crawler catalogs `s3://<raw>/covid/landing/<dataset>/` as table `covid_landing_<dataset>`
(CSV, header present; column names are the header's, lower-cased, other characters kept). Athena then
stages each dataset with

    UNLOAD (<staging_select(dataset)>) TO '<staging>/<dataset>/' WITH (format = 'PARQUET', compression = 'SNAPPY')

and the Glue job `covid_clean` (glue_scripts/covid_clean.py) types and cleans the staged Parquet.
Staging only selects and renames: every column is cast to VARCHAR (the crawler's inferred types vary
from run to run and from file to file; typing, trimming and validation belong to the clean job, which
quarantines what it cannot parse), and the only rows dropped are those whose selected columns are all
blank (nothing in them can matter). Athena's UNLOAD refuses a location that already holds objects, so
each run stages into a fresh folder (pipelines/covid.py uses one per state-machine execution).

Staged columns (snake_case, all strings), per dataset, from the catalog columns named after `<-`:

cases  (enigma-jhu: Johns Hopkins cases, one row per location and update)
    fips <- fips                      county FIPS as written (1001, 01001, 1001.0) or blank
    county <- admin2                  US county name, blank for state/country rows
    province_state <- province_state  US state, or a province of another country
    country_region <- country_region  country (US for the United States)
    last_update <- last_update        time of the update (UTC), several formats
    latitude, longitude, confirmed, deaths, recovered, active  <- the same names
testing  (COVID Tracking Project states daily, one row per state and day)
    report_date <- date               the day, yyyymmdd (e.g. 20200315)
    state <- state                    two-letter state code
    positive, negative, pending, recovered  <- the same names
    hospitalized_currently <- hospitalizedcurrently
    in_icu_currently <- inicucurrently
    on_ventilator_currently <- onventilatorcurrently
    deaths <- death
    total_test_results <- totaltestresults
    date_modified <- datemodified     when the source last changed the row (orders repeated rows)
county_population  (static-datasets CountyPopulation, Census 2018 estimates)
    geo_id <- id                      Census GEO id, e.g. 0500000US01001
    fips <- id2                       county FIPS without the leading zero, e.g. 1001
    county <- county                  e.g. Autauga County
    state <- state                    full state name
    population <- "population estimate 2018"
state_abbreviations  (static-datasets state_abv)
    state <- state                    full state name
    state_abbr <- abbreviation        two-letter code

Pure Python (the Pulumi program imports it): `stage_locally` takes a Spark session from its caller and
imports sqlglot itself.
"""

from __future__ import annotations

import re
from typing import Any

from job_runtime.contracts import COVID_DATASETS, COVID_STAGED_COLUMNS

# The datasets and, per dataset, (staged column, catalog column it comes from) in staged order: the
# contract the clean job reads too.
DATASETS = COVID_DATASETS
STAGED_COLUMNS = COVID_STAGED_COLUMNS
RAW_TABLE_PREFIX = "covid_landing_"

# An S3 "folder": a bucket, then zero or more non-empty key segments of plain characters, ending in "/".
# No quotes, backslashes or spaces, so the URI embeds in a SQL string literal (and a States.Format
# template) as is.
_S3_FOLDER = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(?:[A-Za-z0-9!_.*()=+-]+/)*$")


def _dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"unknown COVID-19 dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return dataset


def staged_columns(dataset: str) -> tuple[str, ...]:
    """The staged (Parquet) column names of a dataset, in order."""
    return tuple(staged for staged, _ in STAGED_COLUMNS[_dataset(dataset)])


def raw_table(dataset: str) -> str:
    """The catalog table the landing crawler creates for a dataset."""
    return RAW_TABLE_PREFIX + _dataset(dataset)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def staging_select(dataset: str) -> str:
    """Athena (Trino) SELECT of one landing table: the needed columns, renamed, as VARCHAR; all-blank rows dropped."""
    pairs = STAGED_COLUMNS[_dataset(dataset)]
    as_text = [f"CAST({_quoted(source)} AS VARCHAR)" for _, source in pairs]
    columns = ", ".join(f"{text} AS {staged}" for text, (staged, _) in zip(as_text, pairs, strict=True))
    any_value = ", ".join(f"NULLIF(TRIM({text}), '')" for text in as_text)
    return f"SELECT {columns} FROM {raw_table(dataset)} WHERE COALESCE({any_value}) IS NOT NULL"


def unload_statement(dataset: str, location: str) -> str:
    """The Athena UNLOAD that stages one dataset as Snappy Parquet under `location` (s3://bucket/prefix/)."""
    if not isinstance(location, str) or not _S3_FOLDER.match(location):
        raise ValueError(
            "UNLOAD location must be an s3://bucket/prefix/ URI ending in '/' with plain key characters, "
            f"got {location!r}"
        )
    return f"UNLOAD ({staging_select(dataset)}) TO '{location}' WITH (format = 'PARQUET', compression = 'SNAPPY')"


def stage_locally(spark: Any, landing_dir: str, staging_dir: str) -> dict[str, int]:
    """The Athena step on local Spark: landing CSVs -> `<staging_dir>/<dataset>/` Parquet; rows staged per dataset.

    Reads each `<landing_dir>/<dataset>/` folder's CSV files (header, every column a string, names
    lower-cased like the crawler's), registers it as the temporary view named like the catalog table,
    and runs `staging_select` transpiled from Athena's dialect to Spark's by sqlglot.
    """
    import sqlglot

    landing, staging = landing_dir.rstrip("/"), staging_dir.rstrip("/")
    counts: dict[str, int] = {}
    for dataset in DATASETS:
        raw = spark.read.options(header="true", inferSchema="false", escape='"', recursiveFileLookup="true").csv(
            f"{landing}/{dataset}/"
        )
        raw.toDF(*(name.lower() for name in raw.columns)).createOrReplaceTempView(raw_table(dataset))
        sql = sqlglot.transpile(staging_select(dataset), read="athena", write="spark")[0]
        target = f"{staging}/{dataset}/"
        spark.sql(sql).write.mode("overwrite").option("compression", "snappy").parquet(target)
        counts[dataset] = spark.read.parquet(target).count()
    return counts
