# AlpClusters: `make run` serves the demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := maps/static/node_modules/.package-lock.json

# The local data mirror (laid out as described in its PROVENANCE.md), when present.
MIRROR := $(abspath $(CURDIR)/../shared/data)
ifneq ($(wildcard $(MIRROR)/PROVENANCE.md),)
export ALPCLUSTERS_DATA_MIRROR ?= $(MIRROR)
endif

.PHONY: run test trust install assets lint bench browser postgres screenshots messages clean

run: install assets
	$(BIN)/alpclusters demo
	$(BIN)/alpclusters serve

test: install assets browser postgres
	$(BIN)/ruff check geo maps services tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Issue 7's four trust proofs in one run: fuzzing the API and the parsers, 60 s of load on
# 4 workers, SIGKILL and PostgreSQL restarts, access control. Minutes long; prints figures.
TRUST_STAMP := $(VENV)/.installed-trust
TRUST_TESTS := tests/test_fuzz_api.py tests/test_fuzz_parsers.py tests/test_trust_load.py \
	tests/test_trust_crash.py tests/test_access.py

$(TRUST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,trust]'
	touch $(TRUST_STAMP)

trust: install assets browser postgres $(TRUST_STAMP)
	$(BIN)/python -m pytest -m "" -p no:cacheprovider -s $(wildcard $(TRUST_TESTS))

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

assets: $(ASSETS)

$(ASSETS): maps/static/package.json maps/static/package-lock.json
	npm ci --prefix maps/static --no-audit --no-fund --loglevel=error
	touch $(ASSETS)

# Debian's Chromium for the browser tests (no browser download of its own).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL 15 and PostGIS 3 for the storage tests: the suite starts its own
# throwaway server from these binaries (tests/pgserver.py), never one already running.
PG_BIN := /usr/lib/postgresql/15/bin
POSTGIS_CONTROL := /usr/share/postgresql/15/extension/postgis.control

postgres:
	@test -x $(PG_BIN)/initdb && test -f $(POSTGIS_CONTROL) || { \
	  echo "installing Debian's postgresql-15 and postgresql-15-postgis-3 for the storage tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    postgresql-15 postgresql-15-postgis-3 >/dev/null; }

# The README's screenshots: the start page and a result map, taken by the browser test.
screenshots: install assets browser
	mkdir -p docs
	ATLAS_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -q tests/test_atlas_browser.py

# The interface's message catalogues (maps/locale) brought up to the code's text.
messages: install
	$(BIN)/python -m maps.messages

lint: install
	$(BIN)/ruff check geo maps services tests bench
	$(BIN)/ruff format --check geo maps services tests bench
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.installed-bench

# The benchmark's references: esda (test extra) and pygeoapi (bench extra).
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: install assets postgres $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) maps/static/node_modules data/nuts/cache var
