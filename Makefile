# reward-kit developer commands. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch comes from a local CPU wheel: pin it in the same pip command, or pip pulls CUDA builds.
TORCH  := torch==2.13.0
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '$(TORCH)' -e '.[dev,trl]'
	@touch $@ $(VENV)/.server-installed

serve: $(VENV)/.server-installed
	$(BIN)/rk-serve examples/quickstart/rewards.py --host $(HOST) --port $(PORT)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy --strict reward_kit

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The HTTP benchmark drives the server with wrk (Debian package), installed here when possible.
bench: $(VENV)/.dev-installed
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq wrk >/dev/null; } || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
