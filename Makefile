# README's two commands: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DATA ?= demo-data
DEMO_N ?= 2000
WORKSPACE ?= modescope-workspace
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest browser bench clean

# -- environments ------------------------------------------------------------------------------
$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "modescope needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	@touch $@ $(VENV)/.installed

# -- the demo: synthetic data -> ingest -> serve -----------------------------------------------
demo: $(VENV)/.installed
	@if [ ! -f $(DEMO_DATA)/truth.json ]; then \
		rm -rf $(DEMO_DATA) && $(BIN)/modescope demo-data $(DEMO_DATA) --n $(DEMO_N) --seed 0; \
	fi
	$(BIN)/modescope ingest $(DEMO_DATA) --workspace $(WORKSPACE) --size 64
	@# ImageNet weights when Keras can download (or has cached) them; exit 3 means it cannot:
	@# then untrained weights, with the warning that the CLI and the pages show
	$(BIN)/modescope index --workspace $(WORKSPACE) || { rc=$$?; [ $$rc = 3 ] || exit $$rc; \
		echo "ImageNet weights unavailable: indexing with untrained (random) VGG16 weights"; \
		$(BIN)/modescope index --workspace $(WORKSPACE) --weights random --seed 0; }
	$(BIN)/modescope serve --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

# -- tests: lint, types, then pytest (unit, CLI subprocess, HTTP, headless Chromium) ----------
test: $(VENV)/.dev-installed browser lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest

# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "browser tests need /usr/bin/chromium: install Debian's chromium package"; exit 0; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/index_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
