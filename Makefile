# The README's two commands are `make run` and `make test`; both set everything up first.
# Empty: scripts/ensure-python.sh picks python3.11, or python3 when it is 3.11. Set PYTHON to choose one.
PYTHON ?=
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup tools run test lint format clean bench pulumi-yaml docs-check lock lock-upgrade

setup: tools $(VENV)/.installed node_modules/.installed

# What the virtualenv and the tests need from the machine, checked (installed from Debian's packages when
# run as root) before anything is downloaded: each script stops with one line naming what to install.
tools:
	@PYTHON="$(PYTHON)" scripts/ensure-python.sh >/dev/null
	@scripts/ensure-java.sh
	@scripts/ensure-node.sh
	@scripts/ensure-postgres.sh

# asl-validator, the independent Step Functions definition check the tests run.
node_modules/.installed: package.json package-lock.json | tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Reinstall only when the lock or a local package changed. requirements-dev.txt is the lock (`make lock`):
# every package pinned and hashed, pip checks each download against it. The two local packages have no
# hash: installed editable, without their dependencies (already locked) and with the lock's setuptools as
# the build backend (no build isolation, which would download an unpinned one).
$(VENV)/.installed: requirements-dev.txt job_runtime/pyproject.toml batch_image/pyproject.toml | tools
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
	  echo "$(VENV) is not a Python 3.11 virtualenv: run 'make clean' and retry." >&2; exit 1; fi
	python=$$(PYTHON="$(PYTHON)" scripts/ensure-python.sh) && "$$python" -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ./job_runtime -e ./batch_image
	touch $@

# Recompile every lock from its .in file (uv pip compile, scripts/lock.py) after editing one: pinned versions
# the inputs still allow are kept. `make lock-upgrade` moves everything to the newest versions allowed.
lock: $(VENV)/.installed  ## recompile the lock files after editing a requirements .in file (keeps the pins still allowed)
	$(BIN)/python scripts/lock.py

lock-upgrade: $(VENV)/.installed  ## recompile the lock files at the newest versions the .in files allow
	$(BIN)/python scripts/lock.py --upgrade

run: setup  ## the five pipelines locally on the bundled samples (python -m localrun), printing what each loaded
	$(BIN)/python -m localrun

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy components pipelines localrun ingestion glue_scripts batch_image/render_summary batch_image/lake_ingest job_runtime __main__.py policy/guardrails.py scripts bench smoke

test: lint docs-check  ## everything CI runs
	$(BIN)/pytest

bench: setup  ## every benchmark at full size (render-summary, the Glue jobs, the estate); rewrites bench/RESULTS.md
	$(BIN)/python -m bench

pulumi-yaml: setup  ## write Pulumi.yaml's config block and docs/configuration.md from the settings the code declares
	$(BIN)/python scripts/pulumi_yaml.py
	$(BIN)/python scripts/config_reference.py

docs-check: setup  ## every file, make target, module, config key and link the README and docs/ name exists
	$(BIN)/python scripts/docs_check.py

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .ruff_cache
