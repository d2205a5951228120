# Switchyard — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench install lint typecheck check golden screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## install, then run Switchyard on the bundled demo config with built-in mock providers
	$(BIN)/switchyard demo

test: $(STAMP)  ## install, then run every test (unit + end-to-end with real Envoy)
	$(BIN)/pytest tests $(PYTEST_ARGS)

bench: $(STAMP)  ## measure Switchyard against a direct call, plain Envoy and LiteLLM (a few minutes; loopback only)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

golden: $(STAMP)  ## rewrite the golden Envoy config after an intended translation change
	$(BIN)/python -m controlplane.golden --write

screenshot: $(STAMP)  ## rewrite docs/status-page.png (the README's) from the browser test, after a minute of traffic
	SWITCHYARD_DOCS_SCREENSHOT=docs/status-page.png $(BIN)/pytest tests/e2e/test_status_page.py -k ejected

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
