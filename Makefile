# familylink — the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(PYTHON) -m uv
DEMO_PEOPLE ?= 20000
PYTEST_ARGS ?=
# make test runs the test files on two worker processes (pytest-xdist; a file's tests stay together so its
# module fixtures are built once): much of the suite waits on servers, browsers and subprocesses
TEST_WORKERS ?= 2

.PHONY: install system-deps demo test test-fast serve serve-practitioner lock bench clean-data

## install: Python 3.11 venv from the committed lock (uv is installed with pip if missing)
install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

## system-deps: Debian packages the tests and reports need (headless Chromium, PostgreSQL, a Java runtime for Spark)
system-deps:
	@bash .ci/system-deps.sh

## demo: install, build the synthetic city, run the nightly flow, print where the outputs are
demo: install
	$(VENV)/bin/familylink demo --people $(DEMO_PEOPLE)

## test: the whole suite CI must pass (an empty selection is reported, not passed)
test: install system-deps
	@set +e; $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5) - treating as a failure"; exit 1; fi; \
	exit $$rc

## test-fast: everything but the slow and integration tests
test-fast: install
	$(PY) -m pytest -m "not slow and not integration and not spark" $(PYTEST_ARGS)

## serve: local Prefect server + process worker on 127.0.0.1, deployments from prefect.yaml registered (Ctrl-C stops)
serve: install
	$(PY) -m pipelines.local_prefect

## serve-practitioner: the practitioner index on http://127.0.0.1:8400 over the demo's published snapshot, with demo accounts
serve-practitioner: install
	$(VENV)/bin/familylink serve --demo-account

## lock: re-resolve requirements.lock (name==version lines, no download addresses)
lock:
	$(UV) pip compile pyproject.toml --no-header --no-annotate -o requirements.lock

## bench: accuracy, speed and memory benchmarks (figures go in the closing note / docs)
bench: install
	$(PY) benchmarks/run_all.py

clean-data:
	rm -rf data
