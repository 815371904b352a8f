"""pipelines/covid_staging.py: the Athena staging SQL (parsed by sqlglot as Athena) and its local Spark stand-in.

Expected counts and values are literal, read by hand from sample_data/covid/ - never computed with the
code under test.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import covid_clean
import pytest
import sqlglot
from sqlglot import expressions as exp

from pipelines import covid_staging

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "covid"

STAGED = {
    "cases": [
        "fips", "county", "province_state", "country_region", "last_update", "latitude", "longitude",
        "confirmed", "deaths", "recovered", "active",
    ],
    "testing": [
        "report_date", "state", "positive", "negative", "pending", "hospitalized_currently", "in_icu_currently",
        "on_ventilator_currently", "recovered", "deaths", "total_test_results", "date_modified",
    ],
    "county_population": ["geo_id", "fips", "county", "state", "population"],
    "state_abbreviations": ["state", "state_abbr"],
}  # fmt: skip
# Catalog (lower-cased header) column behind each staged column.
SOURCES = {
    "cases": [
        "fips", "admin2", "province_state", "country_region", "last_update", "latitude", "longitude",
        "confirmed", "deaths", "recovered", "active",
    ],
    "testing": [
        "date", "state", "positive", "negative", "pending", "hospitalizedcurrently", "inicucurrently",
        "onventilatorcurrently", "recovered", "death", "totaltestresults", "datemodified",
    ],
    "county_population": ["id", "id2", "county", "state", "population estimate 2018"],
    "state_abbreviations": ["state", "abbreviation"],
}  # fmt: skip
LOCATION = "s3://processed-bucket/covid/staging/run-1/cases/"


def test_datasets_and_names() -> None:
    assert covid_staging.DATASETS == ("cases", "testing", "county_population", "state_abbreviations")
    assert covid_staging.RAW_TABLE_PREFIX == "covid_landing_"
    for dataset in covid_staging.DATASETS:
        assert list(covid_staging.staged_columns(dataset)) == STAGED[dataset]
        assert covid_staging.raw_table(dataset) == f"covid_landing_{dataset}"
    # The Glue job keeps its own copy (it ships without the pipelines package): the two must agree.
    assert {d: list(c) for d, c in covid_clean.STAGED_COLUMNS.items()} == STAGED
    assert covid_clean.DATASETS == covid_staging.DATASETS


def test_the_module_does_not_import_pulumi() -> None:
    code = "import sys, pipelines.covid_staging; assert 'pulumi' not in sys.modules, 'pulumi imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.parametrize("dataset", covid_staging.DATASETS)
def test_staging_select_parses_as_athena_and_keeps_renames_and_casts(dataset: str) -> None:
    sql = covid_staging.staging_select(dataset)
    tree = sqlglot.parse_one(sql, read="athena")

    assert isinstance(tree, exp.Select)
    assert [t.name for t in tree.find_all(exp.Table)] == [f"covid_landing_{dataset}"]
    assert tree.named_selects == STAGED[dataset]
    for projection, source in zip(tree.expressions, SOURCES[dataset], strict=True):
        cast = projection.this
        assert isinstance(cast, exp.Cast) and cast.to.this == exp.DataType.Type.VARCHAR
        assert isinstance(cast.this, exp.Column) and cast.this.name == source
    # The only filter: at least one selected column is not blank.
    where = tree.args["where"].this
    assert isinstance(where, exp.Not) and isinstance(where.this, exp.Is)
    assert isinstance(where.this.this, exp.Coalesce)
    assert len([where.this.this.this, *where.this.this.expressions]) == len(STAGED[dataset])
    # It transpiles to Spark (what stage_locally runs).
    assert sqlglot.transpile(sql, read="athena", write="spark")[0].startswith("SELECT CAST(")


def test_a_header_with_spaces_is_a_quoted_identifier() -> None:
    sql = covid_staging.staging_select("county_population")
    assert 'CAST("population estimate 2018" AS VARCHAR) AS population' in sql
    assert sql == (
        'SELECT CAST("id" AS VARCHAR) AS geo_id, CAST("id2" AS VARCHAR) AS fips, CAST("county" AS VARCHAR) AS county, '
        'CAST("state" AS VARCHAR) AS state, CAST("population estimate 2018" AS VARCHAR) AS population '
        "FROM covid_landing_county_population WHERE COALESCE("
        "NULLIF(TRIM(CAST(\"id\" AS VARCHAR)), ''), NULLIF(TRIM(CAST(\"id2\" AS VARCHAR)), ''), "
        "NULLIF(TRIM(CAST(\"county\" AS VARCHAR)), ''), NULLIF(TRIM(CAST(\"state\" AS VARCHAR)), ''), "
        "NULLIF(TRIM(CAST(\"population estimate 2018\" AS VARCHAR)), '')) IS NOT NULL"
    )


@pytest.mark.parametrize("dataset", covid_staging.DATASETS)
def test_unload_statement_wraps_the_select(dataset: str) -> None:
    location = f"s3://processed-bucket/covid/staging/EXECUTIONNAME/{dataset}/"
    sql = covid_staging.unload_statement(dataset, location)
    select = covid_staging.staging_select(dataset)

    assert sql == f"UNLOAD ({select}) TO '{location}' WITH (format = 'PARQUET', compression = 'SNAPPY')"
    # sqlglot has no UNLOAD grammar: Athena's statement parses as a command, and the query inside as a SELECT.
    tree = sqlglot.parse_one(sql, read="athena")
    assert isinstance(tree, exp.Command) and tree.this.upper() == "UNLOAD"
    inner = sql[len("UNLOAD (") : sql.rindex(f") TO '{location}'")]
    assert inner == select
    assert isinstance(sqlglot.parse_one(inner, read="athena"), exp.Select)


@pytest.mark.parametrize(
    "location",
    [
        "s3://processed-bucket/covid/staging",  # no trailing slash
        "s3://processed-bucket",
        "s3://processed-bucket/covid//",  # empty key segment
        "S3://processed-bucket/x/",
        "https://processed-bucket.s3.amazonaws.com/x/",
        "s3://Processed_Bucket/x/",  # not a bucket name
        "s3://ab/x/",  # too short a bucket name
        "s3://processed-bucket/it's/",  # a quote would end the SQL literal
        "s3://processed-bucket/a b/",
        "s3://processed-bucket/a\\b/",
        "",
    ],
)
def test_unload_location_must_be_a_plain_s3_folder(location: str) -> None:
    with pytest.raises(ValueError, match=r"^UNLOAD location must be an s3://bucket/prefix/ URI ending in '/'"):
        covid_staging.unload_statement("cases", location)


def test_unload_accepts_the_bucket_root_and_rejects_non_strings() -> None:
    assert "TO 's3://processed-bucket/' WITH" in covid_staging.unload_statement("testing", "s3://processed-bucket/")
    with pytest.raises(ValueError, match="UNLOAD location"):
        covid_staging.unload_statement("testing", None)  # type: ignore[arg-type]


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown COVID-19 dataset 'deaths'; expected one of cases, testing"):
        covid_staging.staging_select("deaths")
    with pytest.raises(ValueError, match="unknown COVID-19 dataset"):
        covid_staging.unload_statement("deaths", LOCATION)


def _landing_rows(dataset: str) -> int:
    """Data rows in the sample's CSV files (header excluded), read with the csv module."""
    rows = 0
    for path in sorted((SAMPLE / dataset).glob("*.csv")):
        with path.open(newline="") as handle:
            rows += sum(1 for _ in csv.reader(handle)) - 1
    return rows


def test_stage_locally_stages_the_sample(spark, tmp_path: Path) -> None:
    counts = covid_staging.stage_locally(spark, str(SAMPLE), str(tmp_path / "staging"))

    # One entirely empty row each in cases and state_abbreviations is dropped; nothing else.
    assert {d: _landing_rows(d) for d in covid_staging.DATASETS} == {
        "cases": 37, "testing": 16, "county_population": 16, "state_abbreviations": 57,
    }  # fmt: skip
    assert counts == {"cases": 36, "testing": 16, "county_population": 16, "state_abbreviations": 56}
    for dataset in covid_staging.DATASETS:
        staged = spark.read.parquet(str(tmp_path / "staging" / dataset))
        assert [(f.name, f.dataType.simpleString()) for f in staged.schema] == [
            (name, "string") for name in STAGED[dataset]
        ]
        assert staged.count() == counts[dataset]

    # Text is staged as it was (whitespace, case, odd numbers): the clean job owns typing.
    cases = spark.read.parquet(str(tmp_path / "staging" / "cases"))
    assert sorted(r.fips for r in cases.where("county = 'Autauga'").select("fips").distinct().collect()) == [
        "01001", "1001", "1001.0",
    ]  # fmt: skip
    assert cases.where("province_state = ' alabama '").count() == 1
    assert cases.where("last_update = '3/23/2020 23:59'").count() == 1
    population = spark.read.parquet(str(tmp_path / "staging" / "county_population"))
    assert [tuple(r) for r in population.where("geo_id = '0500000US01001'").collect()] == [
        ("0500000US01001", "1001", "Autauga County", "Alabama", "55601")
    ]
    testing = spark.read.parquet(str(tmp_path / "staging" / "testing"))
    first = testing.where("report_date = '20200320'").collect()
    assert [tuple(r) for r in first] == [
        ("20200320", "WA", "1376", "19336", None, None, None, None, None, "74", "20712", "2020-03-20T20:00:00Z")
    ]
    # Staging again into the same local folder replaces it.
    assert covid_staging.stage_locally(spark, str(SAMPLE), str(tmp_path / "staging")) == counts
