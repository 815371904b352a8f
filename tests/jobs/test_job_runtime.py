"""job_runtime is one copy: every runtime imports these very files.

- Glue: the zip the estate uploads for --extra-py-files holds job_runtime/*.py byte for byte, and a bare
  interpreter with only that zip (and glue_common.py) on its path imports job_runtime from it.
- The Pulumi program, the Glue scripts and the jobs, as the tests and local runs import them: one module
  object each, loaded from the repository's job_runtime/ (the dev install is editable).
- The Batch image: tests/integration/test_batch_image.py installs the image's files into a clean venv and
  compares the installed job_runtime with these files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import covid_clean
import glue_common
import sales_csv_to_parquet
import sales_load_warehouse

import job_runtime
from components.compute import python_package_zip
from job_runtime import contracts, errors
from pipelines import covid_staging, covid_star_schema
from pipelines.glue_estate import GLUE_SCRIPTS, JOB_RUNTIME

REPO = Path(__file__).resolve().parents[2]
RUNTIME_FILES = {p.name: p.read_bytes() for p in sorted((REPO / "job_runtime").glob("*.py"))}


def test_the_estate_ships_the_repositorys_job_runtime_to_glue() -> None:
    assert JOB_RUNTIME == REPO / "job_runtime"
    assert set(RUNTIME_FILES) >= {"__init__.py", "contracts.py", "errors.py", "sql.py", "warehouse.py"}


def test_the_glue_zip_holds_the_very_files(tmp_path: Path) -> None:
    archive = python_package_zip(JOB_RUNTIME, tmp_path)
    with zipfile.ZipFile(archive) as zipped:
        assert {name: zipped.read(name) for name in zipped.namelist()} == {
            f"job_runtime/{name}": data for name, data in RUNTIME_FILES.items()
        }


def test_glue_imports_job_runtime_from_the_zip(tmp_path: Path) -> None:
    """What Glue does with --extra-py-files: the zip and glue_common.py on the path, nothing else of ours."""
    archive = python_package_zip(JOB_RUNTIME, tmp_path / "build")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "glue_common.py").write_bytes((GLUE_SCRIPTS / "glue_common.py").read_bytes())
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import json, glue_common, job_runtime.errors, job_runtime.sql, job_runtime.contracts;"
        "print(json.dumps({'errors': job_runtime.errors.__file__, 'bad_input': glue_common.BadInputError is "
        "job_runtime.errors.BadInputError, 'sales': list(job_runtime.contracts.SALES_COLUMNS)}))"
    )
    # -I -S: no site-packages (so not the editable install), no current directory, no PYTHONPATH.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(archive), str(tmp_path / "lib")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["errors"] == str(archive / "job_runtime" / "errors.py")
    assert found["bad_input"] is True
    assert found["sales"] == list(contracts.SALES_COLUMNS)


def test_program_scripts_and_jobs_share_one_module_from_the_repository() -> None:
    assert Path(job_runtime.__file__).parent == REPO / "job_runtime"
    # The contracts, not copies of them.
    assert covid_star_schema.TABLES is contracts.COVID_STAR_TABLES
    assert covid_staging.STAGED_COLUMNS is contracts.COVID_STAGED_COLUMNS
    assert covid_staging.DATASETS is covid_clean.DATASETS is contracts.COVID_DATASETS
    assert sales_csv_to_parquet.SCHEMA is contracts.SALES_SCHEMA
    assert list(sales_load_warehouse.COLUMNS) == list(contracts.SALES_COLUMNS)
    assert glue_common.EXIT_BAD_INPUT is errors.EXIT_BAD_INPUT


def test_the_dev_install_imports_the_repositorys_files_from_anywhere(tmp_path: Path) -> None:
    probe = (
        "import json, job_runtime, render_summary.warehouse as w, lake_ingest.gharchive.bookkeeper as b;"
        "print(json.dumps([job_runtime.__file__, w.sql.__file__, b.classify_aws_error.__module__]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    init, sql, module = json.loads(result.stdout)
    assert (Path(init), Path(sql), module) == (
        REPO / "job_runtime" / "__init__.py",
        REPO / "job_runtime" / "sql.py",
        "job_runtime.errors",
    )
