# Two entry points a newcomer needs: `make run` and `make test`. Both build .venv from python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group test --group lint
	touch $(STAMP)

install: $(STAMP)

# The example app end to end on the embedded SQLite default: run to the approval wait,
# answer it with `graphrun runs resume`, show the finished run.
run: $(STAMP)
	@bash examples/run_orders.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_primitives.py
	$(BIN)/python bench/bench_postgres.py
	$(BIN)/python bench/bench_retention.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache graphrun.db*
