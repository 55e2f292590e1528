# reward-kit developer commands. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch comes from a local CPU wheel: pin it in the same pip command, or pip pulls CUDA builds.
TORCH  := torch==2.13.0
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test lint typecheck pytest bench clean local-model package-check docs release-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	@touch $@

# openrlhf: its reward code for tests/sdk/test_openrlhf_peer.py, without its declared GPU
# stack (deepspeed, flash-attn, vllm, ray); what its imported modules need comes with dev.
# verl: its reward managers and loader for tests/sdk/test_verl_peer.py, likewise; VERL_DEPS are
# what those modules import (tensordict needs torch: it goes in the pip command pinning it).
VERL_DEPS := 'ray>=2.41,<3' 'tensordict>=0.8,!=0.9.0,<=0.10.0' 'omegaconf>=2.3,<3' 'codetiming>=1.4'
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '$(TORCH)' -e '.[dev,trl]' $(VERL_DEPS)
	$(BIN)/pip install --quiet --no-deps 'openrlhf==0.11.2' 'verl==0.9.1'
	@touch $@ $(VENV)/.server-installed

# rk run's local model (reward-kit[local-model]). llama-cpp-python is an sdist only, and
# llama.cpp's default native build can use instructions a VM advertises but cannot run (SIGILL
# on the first decode). Built once with portable flags into a wheel cache outside the clone,
# named by the flags, that later installs (fresh clones too) reuse: seconds instead of minutes.
# --only-binary: a pin that differs from the cached wheel fails, never builds natively.
LLAMA_VERSION    := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	-DLLAVA_BUILD=OFF
LLAMA_WHEELS ?= $(HOME)/.cache/reward-kit/wheels/llama-$(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

local-model: $(VENV)/.local-model-installed

$(VENV)/.local-model-installed: pyproject.toml | $(BIN)/python
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_VERSION) once, portably (4-7 min on 2 cores)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" nice -n 10 $(BIN)/pip wheel --quiet --no-deps \
			-w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_VERSION)'; }
	$(BIN)/pip install --quiet --only-binary llama-cpp-python --find-links $(LLAMA_WHEELS) \
		-e '.[local-model]'
	@touch $@

serve: $(VENV)/.server-installed
	$(BIN)/rk-serve examples/quickstart/rewards.py --host $(HOST) --port $(PORT)

# Python 3.10 (requires-python's floor; CI's interpreter is 3.11, and no 3.10 can be installed
# from its package registries): vermin checks syntax and stdlib use, mypy's python_version =
# "3.10" the types. tomllib is imported only on 3.11+ (tomli on 3.10), and str.decode in the
# tests is a false positive on bytes.
VERMIN_FLAGS := -q --violations --target=3.10- --eval-annotations --no-parse-comments \
	--backport typing_extensions --exclude tomllib --exclude str.decode \
	--exclude-regex 'broken_syntax\.py$$'

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/vermin $(VERMIN_FLAGS) reward_kit tests tools examples bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy --strict reward_kit

# Coverage floor: [tool.coverage.report] fail_under in pyproject.toml.
pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest --cov --cov-report=term

# The built sdist and wheel: checked, then the wheel installed in a fresh venv and run.
package-check: $(VENV)/.dev-installed
	$(BIN)/python tools/package_check.py

# The documentation site, into build/site (`$(BIN)/mkdocs serve` to browse it while editing).
# Not --quiet: it hides the warnings that --strict turns into a failure.
docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint typecheck pytest package-check docs

# Everything a release needs (CONTRIBUTING.md): what CI runs, on a tree with nothing uncommitted
# (package-check also needs a CHANGELOG.md section for the version being released).
release-check: test
	@git diff --quiet HEAD && test -z "$$(git ls-files --others --exclude-standard)" \
		|| { echo "release-check: commit or remove local changes first (git status)"; exit 1; }
	@echo "release-check: reward-kit $$($(BIN)/rk --version | awk '{print $$NF}') is ready to tag"

# The HTTP benchmark drives the server with wrk (Debian package), installed here when possible.
# bench_run.py also measures rk run's local model (local-model above).
bench: $(VENV)/.dev-installed $(VENV)/.local-model-installed
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq wrk >/dev/null; } || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist .coverage htmlcov
