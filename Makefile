# The two commands: `make serve` and `make test`. Both set everything up by themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: setup serve test lint format bench lock system-deps clean

setup:
	@bash scripts/setup.sh

serve: setup
	$(BIN)/llmops serve

system-deps:
	@bash scripts/system-deps.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: setup system-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup
	@bash scripts/system-deps.sh --bench
	$(BIN)/python benchmarks/run_all.py

lock:
	$(BIN)/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
