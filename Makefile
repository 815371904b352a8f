# The README's two commands are `make run` and `make test`; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint format clean bench pulumi-yaml

setup: $(VENV)/.installed node_modules/.installed
	@scripts/ensure-postgres.sh

# asl-validator, the independent Step Functions definition check the tests run.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt batch_image/requirements.txt batch_image/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: setup  ## the five pipelines locally on the bundled samples (python -m localrun), printing what each loaded
	$(BIN)/python -m localrun

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy components pipelines localrun ingestion glue_scripts batch_image/render_summary batch_image/lake_ingest job_runtime __main__.py policy/guardrails.py scripts bench smoke

test: lint  ## everything CI runs
	$(BIN)/pytest

bench: setup  ## every benchmark at full size (render-summary, the Glue jobs, the estate); rewrites bench/RESULTS.md
	$(BIN)/python -m bench

pulumi-yaml: setup  ## write Pulumi.yaml's config block from the settings the code declares
	$(BIN)/python scripts/pulumi_yaml.py

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .ruff_cache
