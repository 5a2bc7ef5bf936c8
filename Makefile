# batchtrace: `make demo` and `make test` set up everything they need (a venv, pip installs).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12; the venv and `sam build` use the same version. On machines
# with pyenv, expose it next to the default Python so both `python3.12` and `python3` resolve.
PYENV_312 := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | tail -1)
ifneq ($(PYENV_312),)
export PYENV_VERSION := $(PYENV_312):$(shell pyenv global 2>/dev/null | head -1)
endif
PYTHON ?= python3.12
# No telemetry from sam (and no network beyond the package index on these machines).
export SAM_CLI_TELEMETRY := 0
# The function directory is Lambda's task root: the handler imports its siblings from there.
FUNCTION_DIR := functions/log_batch_results
PYTEST := PYTHONPATH=$(FUNCTION_DIR) $(BIN)/pytest -p no:cacheprovider

.PHONY: help venv phoenix-venv demo test lint complexity test-unit test-functional test-slow build validate bench clean

help:
	@echo "make demo     run the sample batch through the handler against local S3 and OTLP servers"
	@echo "make test     lint, then every test tier (unit, functional, template/SAM, end to end)"
	@echo "make test-unit | test-functional | test-slow | lint | validate | build | bench | clean"

$(BIN)/.installed: pyproject.toml layers/batchtrace/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

# Arize Phoenix for tests/e2e/test_phoenix.py, in a venv of its own so that its large dependency
# tree (pinned in tests/e2e/phoenix-requirements.txt) never constrains ours. About 40 s, 820 MB.
.venv-phoenix/.installed: tests/e2e/phoenix-requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.12"; exit 1; }
	$(PYTHON) -m venv .venv-phoenix
	.venv-phoenix/bin/python -m pip install --quiet --upgrade pip
	.venv-phoenix/bin/python -m pip install --quiet -r tests/e2e/phoenix-requirements.txt
	@touch $@

phoenix-venv: .venv-phoenix/.installed

demo: venv
	@PYTHONPATH=$(FUNCTION_DIR) $(BIN)/python -m tests.demo

# Cyclomatic complexity, as radon counts it (boolean operators and comprehensions included):
# no block above 10, and an average of at most 3.5 over the product code.
MAX_AVERAGE_COMPLEXITY := 3.5

complexity: venv
	$(BIN)/xenon --max-absolute B layers functions
	@$(BIN)/radon cc -a -s layers functions | tail -1 | tee /dev/stderr | \
		awk -F'[()]' '{ if ($$2 + 0 > $(MAX_AVERAGE_COMPLEXITY)) { print "average complexity " $$2 " is above $(MAX_AVERAGE_COMPLEXITY)"; exit 1 } }'

lint: venv complexity
	$(BIN)/ruff check layers functions tests
	$(BIN)/ruff format --check layers functions tests
	$(BIN)/mypy layers/batchtrace/batchtrace
	@# each function directory is its own Lambda task root: checked alone, so a module of the other one cannot resolve
	@for dir in functions/*/; do echo "$(BIN)/mypy $$dir"; $(BIN)/mypy $$dir || exit 1; done

test-unit: venv
	$(PYTEST) tests/unit -q

test-functional: venv
	$(PYTEST) tests/functional -q

test-slow: venv phoenix-venv
	$(PYTEST) -m slow -q

test: lint phoenix-venv
	$(PYTEST) -q

validate: venv
	AWS_DEFAULT_REGION=us-east-1 $(BIN)/sam validate --lint -t template.yaml

build: venv
	$(BIN)/sam build -t template.yaml

# The seed (respan-ai 4.2.4) in its own venv, as the benchmark's baseline; if it cannot be
# installed the benchmark says so and measures a naive in-memory baseline instead.
.venv-seed/.installed:
	$(PYTHON) -m venv .venv-seed
	.venv-seed/bin/python -m pip install --quiet respan-ai==4.2.4 || echo "respan-ai not installable: naive baseline"
	@touch $@

# Our package is installed editable, so its bytecode is compiled on each run where
# PYTHONDONTWRITEBYTECODE is set; the seed's, installed from a wheel, is compiled once. Compile
# ours too, as an installed package would be, so the timings compare the same thing.
bench: venv .venv-seed/.installed
	$(BIN)/python -m compileall -q layers/batchtrace/batchtrace functions
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

clean:
	rm -rf .aws-sam build .pytest_cache .ruff_cache .mypy_cache .venv-seed
