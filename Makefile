# Alliance: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format migrate demo screenshots bench bench-growth bench-scaleout bench-restart clean

# The compiled catalogues (.mo) are not in git: each is made from its .po, again when it changes.
PO_FILES := $(wildcard locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)

install: $(VENV)/.installed $(MO_FILES)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(VENV)/.installed
	$(PY) -m alliance_app.lib.translations $<

# The embedded SQLite database in debug mode: for trying Alliance on one machine.
run: export DEBUG ?= true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Alliance is starting on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	$(PY) manage.py runserver $(HOST):$(PORT)

migrate: install
	$(PY) manage.py migrate --noinput

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The README's pictures, made by the browser tests (needs Debian's chromium).
screenshots: install
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/browser/test_screenshots.py

# The benchmark on PostgreSQL with the scaled data (bench/README.md); BENCH_ARGS=--reseed seeds anew.
bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

# Each page's p95 at 1x (make bench's data) and 5x the data (alliance_bench_5x, seeded once).
bench-growth: install
	$(PY) -m bench.growth $(BENCH_ARGS)

# The dashboards on a streaming replica of the bench's server (pg_basebackup into a temporary
# folder, a second postgres on another port, removed at the end): p95 with and without it.
bench-scaleout: install
	$(PY) -m bench.scaleout $(BENCH_ARGS)

# A no-loss run on a temporary PostgreSQL of the bench's own, restarted half-way.
bench-restart: install
	$(PY) -m bench.restart $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
