# segstream: two commands on a fresh Debian/Ubuntu machine, `make run` and `make test`.
# Kafka and Redis come from KAFKA_BOOTSTRAP / REDIS_URL when set; otherwise a local
# Tansu broker and redis-server are started (and left running: `make down` stops them).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.segstream-installed
PYTEST_ARGS ?= tests

.DEFAULT_GOAL := help
.PHONY: help system-packages venv install services run test status down clean

help:
	@echo "make run       install, start local Kafka/Redis if none configured, run collector + worker + API"
	@echo "make test      install, start local Kafka/Redis, run the test suite (PYTEST_ARGS=... to narrow it)"
	@echo "make install   create $(VENV) and install segstream with its dev extras"
	@echo "make services  start local Kafka (Tansu) and redis-server unless they already answer"
	@echo "make status    show whether Kafka and Redis answer and who started them"
	@echo "make down      stop the local services segstream started (never others)"
	@echo "make clean     make down, then remove $(VENV) and .segstream"

system-packages:
	@bash scripts/system-packages.sh $(PYTHON)

$(BIN)/pip: | system-packages
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes; the editable install picks up code changes itself.
$(STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

install: system-packages $(STAMP)

services: install
	$(BIN)/segstream services up

run: install
	$(BIN)/segstream run

test: services
	$(BIN)/pytest -q $(PYTEST_ARGS)

status:
	@if [ -x $(BIN)/segstream ]; then $(BIN)/segstream services status; else echo "not installed: run make install"; exit 1; fi

down:
	@if [ -x $(BIN)/segstream ]; then $(BIN)/segstream services down; \
	elif ls .segstream/run/*.pid >/dev/null 2>&1; then \
	  echo "error: $(VENV) is missing, so the services named in .segstream/run/ cannot be stopped: run make install, then make down" >&2; exit 1; \
	fi

clean: down
	rm -rf $(VENV) .segstream *.egg-info
