# Handpiece controller: set-up, tests, the main job on the simulated board,
# benchmarks, and builds for the real boards.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOARD ?= rp2
PORT ?=

.PHONY: setup lint test mutate run bench clean

setup: $(STAMP)

$(STAMP): requirements.txt boards/requirements-boards.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -r boards/requirements-boards.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# ruff's rules are in pyproject.toml. `ruff format` is not used: the code
# keeps its own layout (aligned continuation lines, 120 columns).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pytest exits 5 when it collects nothing: that is a failure, not a pass.
test: $(STAMP) lint
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# One-line mutants of safety lines (tools/mutants.toml), each run against the
# tests of its SR: fails if a mutant survives or a mutant's line has moved.
mutate: $(STAMP)
	$(PY) tools/mutate.py

run: $(STAMP)
	$(VENV)/bin/handpiece run programs/knee-oa-reference.toml --out runs

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build runs test-logs

# Real boards: make build|flash|hil|typecheck BOARD=rp2|stm32|esp32|rig_pico [PORT=...]
include boards/boards.mk
