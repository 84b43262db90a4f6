# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export CVAULT_DATA_DIR ?= .cvault

.PHONY: run test lint typecheck pytest bench clean install dev catalogs screenshots schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

## make run: install, initialise ./.cvault (SQLite + keyring), load demo data once, serve.
run: install
	$(BIN)/cvault init
	$(BIN)/cvault demo --customers 200 --if-empty
	@echo "console sign-in link (5 minutes, once):"
	@$(BIN)/cvault console link --role compliance_officer --sub officer-1
	$(BIN)/cvault serve

## make test: dev extras, lint, types, layer contracts, the whole suite.
test: dev lint typecheck pytest

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: dev
	$(BIN)/mypy

pytest: dev
	$(BIN)/python -m pytest -n auto  # one worker per core (pytest-xdist)

## make catalogs: add new page messages to the four catalogs (api/pages/locale), to translate.
## The catalogs are compiled in memory when the server starts: no compile step.
catalogs: dev
	$(BIN)/python -m api.pages.catalogs update
	$(BIN)/python -m api.pages.catalogs check

## make screenshots: the pages in English and Persian, into docs/screenshots (needs /usr/bin/chromium).
screenshots: dev
	PYTHONPATH=. $(BIN)/python docs/screenshots/make.py

## make schema: regenerate the committed schema.graphql from the code (after a schema change).
schema: install
	$(BIN)/cvault schema print > schema.graphql

bench: dev
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
