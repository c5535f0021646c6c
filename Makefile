# GridGov: `make run` starts the platform, `make test` runs the tests; both set up what is missing.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt 2>/dev/null | md5sum | cut -c1-12)
ENV := set -a; eval "$$(scripts/services.sh env)"; DJANGO_DEBUG=$${DJANGO_DEBUG:-1}; set +a;

.PHONY: run test bench stop setup deps services migrate democity lint

run: setup democity
	@scripts/run.sh

test: setup
	@$(ENV) $(BIN)/pytest $(PYTEST_ARGS)

bench: setup
	@$(ENV) $(BIN)/python -m tests.bench $(BENCH_ARGS)

stop:
	@scripts/services.sh stop

# ruff (lint and format), import-linter (the floors in .importlinter), mypy (mypy.ini; django-stubs
# sets Django up, hence GeoDjango's GDAL from deps and the environment, but connects to nothing).
lint: deps $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache && $(ENV) $(BIN)/mypy

setup: deps $(STAMP) services migrate

deps:
	@scripts/install_deps.sh

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

services:
	@scripts/services.sh start

migrate:
	@$(ENV) $(BIN)/python manage.py migrate --noinput -v 0 && $(BIN)/python manage.py collectstatic --noinput -v 0

democity:
	@$(ENV) $(BIN)/python manage.py load_demo_city --if-empty && $(BIN)/python manage.py load_demo_history --if-empty
