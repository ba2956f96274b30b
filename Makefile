# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs the three packages editable with their extras
# (llama-cpp-python is built from source once; pip caches the wheel), then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-long install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml integrations/langchain/pyproject.toml integrations/llamaindex/pyproject.toml integrations/mlflow/pyproject.toml
	$(PY) -m pip install --quiet -e ".[local,server,dev]" \
		-e integrations/langchain -e integrations/llamaindex -e integrations/mlflow \
		-r requirements-test.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Soaks (marker `long`): more kill points, threads and examples than `make test` can afford.
test-long: $(STAMP)
	$(PY) -m pytest -q -m long $(PYTEST_ARGS)

# The measurements behind BENCHMARKS.md (step_cost.py creates its own TextGrad venv).
bench: $(STAMP)
	$(PY) benchmarks/step_cost.py --quick
	$(PY) benchmarks/capture_overhead.py
	$(PY) benchmarks/reconstruct_throughput.py

clean:
	rm -rf $(VENV)
