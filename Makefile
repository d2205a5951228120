# Switchyard — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit test-e2e test-fleet test-reliability test-deploy bench bench-fleet bench-envoy-costs install lint typecheck check golden screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## install, then run Switchyard on the bundled demo config with built-in mock providers
	$(BIN)/switchyard demo

test: $(STAMP)  ## install, then run every test (all the tiers below)
	$(BIN)/pytest tests $(PYTEST_ARGS)

# One tier at a time, while working on it; `make test` runs them all.
test-unit: $(STAMP)  ## pure code, Lua under LuaJIT, a real Envoy only to validate config (about a minute)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(STAMP)  ## real Envoy, control plane and ext_procs as processes, mock providers, official SDKs
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

test-fleet: $(STAMP)  ## control-plane replicas and nodes on loopback, and hosts in network namespaces (as root)
	$(BIN)/pytest tests/fleet $(PYTEST_ARGS)

test-reliability: $(STAMP)  ## one fault under steady load per scenario, every request counted
	$(BIN)/pytest tests/reliability $(PYTEST_ARGS)

test-deploy: $(STAMP)  ## Kubernetes manifests, the compose file, Grafana, and the containers where an engine runs
	$(BIN)/pytest tests/deploy tests/containers $(PYTEST_ARGS)

bench: $(STAMP)  ## measure Switchyard against a direct call, plain Envoy and LiteLLM (a few minutes; loopback only)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-fleet: $(STAMP)  ## many nodes' telemetry into one control plane: fleet requests/s per replica core (issue 21)
	$(BIN)/python -m bench.fleet $(BENCH_ARGS)

bench-envoy-costs: $(STAMP)  ## Switchyard's Envoy CPU per request, the full config against it minus one element at a time
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.envoy_costs $(BENCH_ARGS)

golden: $(STAMP)  ## rewrite the golden Envoy config after an intended translation change
	$(BIN)/python -m tests.support.golden --write

screenshot: $(STAMP)  ## rewrite docs/status-page.png (the README's) from the browser test, after a minute of traffic
	SWITCHYARD_DOCS_SCREENSHOT=docs/status-page.png $(BIN)/pytest tests/e2e/test_status_page.py -k ejected

lint: $(STAMP)  ## ruff, and the import direction between layers (import-linter; contracts in pyproject.toml)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
