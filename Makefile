# README's two commands: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DATA ?= demo-data
DEMO_N ?= 1200
WORKSPACE ?= modescope-workspace
DEMO_RUN ?= demo
DEMO_CURATED ?= demo-curated
DEMO_EPOCHS ?= 64
# the demo keeps its images at the size it trains at, so its samples are measured against the
# images the generator learned from; its generator was chosen with bench/modes_bench.py
# (docs/training.md, "The demo's settings"): ~2,000 steps of a half-width resize-conv DCGAN
DEMO_SIZE ?= 32
DEMO_TRAIN ?= --batch 16 --filters 32 --upsample resize --checkpoint-every 32
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

# -- the demo: synthetic data -> ingest -> index -> a 32-px DCGAN run -> its samples generated,
# indexed and inspected -> the demo's off-topic files flagged and a retrain on the curated set
# queued (the server runs it, then compares it with the first run) -> serve. Every step is
# idempotent: `make demo` again resumes or skips what is done.
demo: $(VENV)/.installed
	@if [ ! -f $(DEMO_DATA)/off-topic.txt ]; then \
		rm -rf $(DEMO_DATA) && $(BIN)/modescope demo-data $(DEMO_DATA) --n $(DEMO_N) --seed 0; \
	fi
	$(BIN)/modescope ingest $(DEMO_DATA) --workspace $(WORKSPACE) --size $(DEMO_SIZE)
	@# ImageNet weights when Keras can download (or has cached) them; exit 3 means it cannot:
	@# then untrained weights, with the warning that the CLI and the pages show
	$(BIN)/modescope index --workspace $(WORKSPACE) || { rc=$$?; [ $$rc = 3 ] || exit $$rc; \
		echo "ImageNet weights unavailable: indexing with untrained (random) VGG16 weights"; \
		$(BIN)/modescope index --workspace $(WORKSPACE) --weights random --seed 0; }
	@# the first run, on every ingested image (CPU: a few minutes), scored per checkpoint
	@state=$$($(BIN)/python -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status"))' \
		$(WORKSPACE)/runs/$(DEMO_RUN)/progress.json 2>/dev/null || echo none); \
	if [ "$$state" = finished ]; then echo "run $(DEMO_RUN) is trained"; \
	elif [ -f $(WORKSPACE)/runs/$(DEMO_RUN)/checkpoints/latest/state.json ]; then \
		$(BIN)/modescope train --workspace $(WORKSPACE) --resume $(DEMO_RUN); \
	else rm -rf $(WORKSPACE)/runs/$(DEMO_RUN); \
		$(BIN)/modescope train --workspace $(WORKSPACE) --run $(DEMO_RUN) \
			--epochs $(DEMO_EPOCHS) $(DEMO_TRAIN); fi
	@# its samples: generated, indexed, and every analysis written
	$(BIN)/python -m modescope.app.pipeline --workspace $(WORKSPACE) --run $(DEMO_RUN) --n 500
	@# curation as a user would do it on the dataset page: the demo's off-topic files are
	@# flagged; then a retrain on the curated set with the first run's options is queued as a
	@# job: the server runs it (progress on /jobs) and compares it with the first run
	@if [ -d $(WORKSPACE)/runs/$(DEMO_CURATED) ]; then \
		echo "run $(DEMO_CURATED) was started before: see /jobs and /runs/$(DEMO_CURATED)"; \
	else $(BIN)/modescope flag --workspace $(WORKSPACE) --paths $(DEMO_DATA)/off-topic.txt \
			--reason off-topic && \
		$(BIN)/modescope retrain --workspace $(WORKSPACE) --run $(DEMO_CURATED) \
			--parent $(DEMO_RUN) --queue; fi
	$(BIN)/modescope serve --workspace $(WORKSPACE) --host $(HOST) --port $(PORT)

# -- tests: lint, types, then pytest (unit, CLI subprocess, HTTP, headless Chromium, the installed
# wheel): all of it, slow tests included; `$(BIN)/pytest -m "not slow"` is the quick loop --------
test: $(VENV)/.dev-installed browser lint typecheck pytest

# ruff, then the layers contract in pyproject.toml (cli > app > indexer | trainer > core)
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

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

# Each benchmark prints one table (README "Benchmarks"); together they take about 2.5 hours on 2
# CPU cores (the keras.io anchor's 2,000 steps per seed, 100k real descriptors and 1M int8 ones
# are most of it; .bench-index keeps the 1M descriptors for a rerun of their searches).
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/index_bench.py
	$(BIN)/python bench/index_bench.py --part real --real 1M --engine int8 --cache .bench-index
	$(BIN)/python bench/inspect_bench.py
	$(BIN)/python bench/train_bench.py
	$(BIN)/python bench/modes_bench.py --modes 8 --n 2000 --steps 2000 --batch 16 \
		--configs dcgan,resize-32,keras-io --seeds 0,1 --samples 2000
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/dataset_bench.py
	$(BIN)/python bench/load.py --build .bench-load --rounds 3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
