# Handpiece controller: set-up, tests, the main job on the simulated board,
# benchmarks, and builds for the real boards.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOARD ?= rp2
PORT ?=
# `make test`: JOBS pytest-xdist workers (0: one test at a time in one process), ARGS more pytest options
JOBS ?= auto
ARGS ?=

.PHONY: setup test mutate run bench clean lab-setup lab-test

setup: $(STAMP)

$(STAMP): requirements.txt boards/requirements-boards.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -r boards/requirements-boards.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# pytest exits 5 when it collects nothing: that is a failure, not a pass.
test: $(STAMP)
	@$(PY) -m pytest -q -n $(JOBS) --dist worksteal $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# One-line mutants of safety lines (tools/mutants.toml), each run against the
# tests of its SR: fails if a mutant survives or a mutant's line has moved.
mutate: $(STAMP)
	$(PY) tools/mutate.py

# labgrid in its own venv (it needs its own pyserial); lab-test runs a HIL subset
# through a labgrid place on this machine (coordinator, exporter, ser2net): docs/labgrid.md
LAB_VENV ?= .venv-lab
lab-setup: $(LAB_VENV)/.installed

$(LAB_VENV)/.installed: requirements-lab.txt pyproject.toml
	$(PYTHON) -m venv $(LAB_VENV)
	$(LAB_VENV)/bin/python -m pip install -q -r requirements-lab.txt
	$(LAB_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

lab-test: $(STAMP) lab-setup
	$(LAB_VENV)/bin/python .ci/lab.py

run: $(STAMP)
	$(VENV)/bin/handpiece run programs/knee-oa-reference.toml --out runs

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(LAB_VENV) build runs test-logs

# Real boards: make build|flash|hil|typecheck BOARD=rp2|stm32|esp32|rig_pico [PORT=...]
include boards/boards.mk
