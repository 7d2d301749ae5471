# Casebook's front door. `make run` starts the whole platform; `make test` installs and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= .data
SERVICES := gateway anonymiser moderation featuring achievements export
EDITABLE := -e libs/casebook-events -e libs/casebook-platform -e libs/casebook-web -e libs/casebook-client $(foreach s,$(SERVICES),-e services/$(s))
USER ?= alice
ROLES ?= contributor

.PHONY: help install install-dev run infra token test test-fast test-service lint fmt typecheck bench fuzz asyncapi event-schemas clean system-deps console

help:
	@echo "make run        install and start the whole platform (embedded: SeaweedFS + Tansu + PostgreSQL)"
	@echo "make test       install and run unit, integration and end-to-end tests on the embedded stack"
	@echo "make token USER=alice ROLES=contributor,supporter   print a bearer token"
	@echo "make console    build the browser console the gateway serves at / (Node 20 + npm)"
	@echo "make lint | fmt | typecheck | bench | fuzz | asyncapi | event-schemas"

$(VENV)/.installed: requirements.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps $(EDITABLE)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed console

# The browser console (services/gateway/console): Preact + htm bundled by esbuild into the gateway's
# console_dist/, which the gateway serves at `/`. npm fetches the pinned packages at build time only.
CONSOLE := services/gateway/console
CONSOLE_DIST := services/gateway/casebook_gateway/console_dist
VIEWER := libs/casebook-web/casebook_web/static

console: $(CONSOLE_DIST)/index.html

$(CONSOLE)/node_modules/.package-lock.json: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	@command -v npm >/dev/null || { echo "Node 20 and npm are needed to build the console ($(CONSOLE))"; exit 1; }
	cd $(CONSOLE) && npm ci --no-audit --no-fund --loglevel=error

$(CONSOLE_DIST)/index.html: $(CONSOLE)/node_modules/.package-lock.json $(CONSOLE)/build.mjs \
		$(shell find $(CONSOLE)/src -type f 2>/dev/null) $(wildcard $(VIEWER)/viewer.js $(VIEWER)/viewer.css)
	cd $(CONSOLE) && node build.mjs

install-dev: $(VENV)/.installed-dev system-deps console

# Headless Chromium renders the offline presentations in the export tests (Debian package, not a download).
system-deps:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the presentation tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium"; }

run: install
	$(PY) deploy/local/embedded.py run --data-dir $(DATA)

infra: install
	$(PY) deploy/local/embedded.py infra --data-dir $(DATA)

token: install
	@$(PY) deploy/local/embedded.py token $(USER) $(ROLES) --data-dir $(DATA)

test: install-dev
	$(PY) -m pytest -q

test-fast: install-dev
	$(PY) -m pytest -q -m "not slow and not e2e"

# The service tier alone: each service's handlers on the in-memory broker (a few seconds, no processes).
test-service: install-dev
	$(PY) -m pytest -q tests/service

lint: install-dev
	$(VENV)/bin/ruff check libs services tests benchmarks deploy

fmt: install-dev
	$(VENV)/bin/ruff check --fix libs services tests benchmarks deploy
	$(VENV)/bin/ruff format libs services tests benchmarks deploy

typecheck: install-dev
	$(VENV)/bin/mypy libs/casebook-events/casebook_events libs/casebook-platform/casebook_platform libs/casebook-web/casebook_web libs/casebook-client/casebook_client \
	  $(foreach s,$(SERVICES),services/$(s)/casebook_$(s))

bench: install-dev
	$(PY) benchmarks/run_all.py --readme

# The DICOM ingest under atheris, then Schemathesis against the running platform for longer than `make test` does.
fuzz: install-dev
	mkdir -p .data/fuzz-corpus && $(PY) tests/fuzz/seed_corpus.py .data/fuzz-corpus
	$(PY) tests/fuzz/fuzz_ingest.py .data/fuzz-corpus -max_total_time=$${FUZZ_SECONDS:-600} -max_len=262144 -timeout=30
	CASEBOOK_FUZZ_SECONDS=$${FUZZ_SECONDS:-600} $(PY) -m pytest -q tests/contract/test_fuzz_openapi.py

asyncapi: install
	$(PY) -m casebook_platform.asyncapi docs/asyncapi

# One JSON schema per (topic, version) under libs/casebook-events; refuses a breaking change to a version in use.
event-schemas: install
	$(PY) -m casebook_events.contract

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(CONSOLE)/node_modules $(CONSOLE_DIST)
