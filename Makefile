# Every target works from a fresh clone with nothing but Python 3.10+ installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test

# tiktoken downloads its encodings on first use. Offline, point TIKTOKEN_CACHE_DIR at
# a folder that holds them; a sibling ../shared/tiktoken-cache is used when present.
ifeq ($(origin TIKTOKEN_CACHE_DIR), undefined)
  ifneq ($(wildcard ../shared/tiktoken-cache),)
    export TIKTOKEN_CACHE_DIR := $(abspath ../shared/tiktoken-cache)
  endif
endif

.PHONY: help install demo test unit lint format typecheck integration_tests bench-accuracy bench-speed bench-agents bench-soak docs-check docs notebooks clean

help:  ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the package with its test extra.

# tiktoken's encodings without a download: the user's TIKTOKEN_CACHE_DIR, else
# CI's shared cache, else files written from quicktok (tests/offline_encodings.py).
ENCODINGS = TIKTOKEN_CACHE_DIR="$${TIKTOKEN_CACHE_DIR:-$$($(BIN)/python -m tests.offline_encodings)}"

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench-accuracy: $(BENCH_STAMP)  ## Accuracy against hidden real tokenizers and chat templates (QUICK=1 for a smoke run).
	$(ENCODINGS) $(BIN)/python -m benchmarks.accuracy $(if $(QUICK),--quick)

bench-speed: $(BENCH_STAMP)  ## Speed ratios against tiktoken, langchain-core and langchain-openai (QUICK=1 for a smoke run).
	$(ENCODINGS) $(BIN)/python -m benchmarks.speed $(if $(QUICK),--quick)

bench-agents: $(BENCH_STAMP)  ## When agent summarization and context editing fire, by counter (QUICK=1 for a smoke run).
	$(ENCODINGS) $(BIN)/python -m benchmarks.agents $(if $(QUICK),--quick)

bench-soak: $(BENCH_STAMP)  ## Stores at 1M reports, memory over 1,000 models, count latency under 16 busy threads (QUICK=1 for a smoke run).
	$(ENCODINGS) $(BIN)/python -m benchmarks.soak $(if $(QUICK),--quick)

docs-check: $(STAMP)  ## Run every README example and compare its output with the README.
	$(ENCODINGS) $(BIN)/python -m tests.docs_check

docs: $(STAMP)  ## Run every README example and write its fresh output into the README.
	$(ENCODINGS) $(BIN)/python -m tests.docs_check --write

notebooks: $(STAMP)  ## Execute the notebooks and write their outputs back (the tests check they are current).
	$(ENCODINGS) $(BIN)/python -m tests.run_notebooks

# The demo needs the runtime only (and quicktok for offline encodings), not
# the test extra's partner clients, notebook and type-checking tools.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)  ## Run the main job: a simulated session, calibrated live.
	$(ENCODINGS) $(BIN)/python -m langchain_tokencal demo

test: lint typecheck unit integration_tests  ## Lint, type check and run every test (offline).

unit: $(STAMP)  ## Run the unit tests (sockets disabled).
	$(BIN)/python -m pytest tests/unit_tests --disable-socket --allow-unix-socket -q

# The partner clients (langchain-openai, -anthropic, -ollama, -mistralai) talk
# HTTP to provider-shaped servers the tests start on 127.0.0.1: no other host
# is reachable, and no key or network is needed.
integration_tests: $(STAMP)  ## Run the real partner clients against loopback APIs (offline).
	$(BIN)/python -m pytest tests/integration_tests --allow-hosts=127.0.0.1 --allow-unix-socket -q

lint: $(STAMP)  ## ruff check and format check.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## Apply ruff's fixes and formatting.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)  ## mypy --strict on the package.
	$(BIN)/mypy

clean:  ## Remove the virtual environment and caches.
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
