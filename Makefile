# galaxy-argo developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup test test-fast lint demo bench golden templates readme clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v bwrap >/dev/null && command -v busybox >/dev/null || { \
	  echo "installing Debian packages: bubblewrap busybox"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap busybox >/dev/null; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,local,galaxy]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install the package, its test tools and Debian packages

test: setup ## run the whole test suite (real Galaxy and the embedded stack included)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup ## the tests that need neither Galaxy nor the engine (under a minute)
	$(PY) -m pytest -m "not galaxy and not engine and not slow" $(PYTEST_ARGS)

lint: setup ## ruff and mypy
	$(VENV)/bin/ruff check galaxy_argo tests benchmarks
	$(VENV)/bin/mypy

demo: setup ## start S3 + engine + a real Galaxy, run three tools through Argo, check their outputs
	$(PY) -m galaxy_argo.dev.demo

bench: setup ## run the benchmarks, printing `name: value` lines
	@for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

golden: setup ## regenerate tests/golden/*.yaml (on request only, never under CI)
	GALAXY_ARGO_REGENERATE_GOLDEN=1 $(PY) -m pytest tests/test_golden.py -q

templates: setup ## regenerate workflow_templates/ and their copy in manifests/base
	$(VENV)/bin/galaxy-argo templates render workflow_templates/ --bundle manifests/base/workflowtemplates.yaml

readme: setup ## regenerate README's layout table from the packages' docstrings
	GALAXY_ARGO_REGENERATE_README=1 $(PY) -m pytest tests/test_layers.py -q

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
