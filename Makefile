# The two commands of the README:
#   make run    set up, migrate, load the demo data and run web + worker + ticker (Ctrl-C stops all three)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint check-migrations bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	DEBUG=$${DEBUG:-true} $(PY) manage.py runplatform --port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Every benchmark on PostgreSQL (BENCH_DATABASE_URL), then one table; BENCH_ARGS=--quick for a short smoke run.
bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

check-migrations: $(VENV)/.installed
	DEBUG=$${DEBUG:-true} $(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
