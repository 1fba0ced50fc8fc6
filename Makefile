# Handpiece controller: set-up, tests, the main job on the simulated board,
# benchmarks, and builds for the real boards.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOARD ?= rp2
PORT ?=

.PHONY: setup test test-emu run bench clean

setup: $(STAMP)

$(STAMP): requirements.txt boards/requirements-boards.txt pyproject.toml boards/rp2/emu/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -r boards/requirements-boards.txt
	$(PY) -m pip install -q --no-deps -e .
	npm ci --prefix boards/rp2/emu --no-audit --no-fund --silent
	touch $@

# pytest exits 5 when it collects nothing: that is a failure, not a pass.
test: $(STAMP)
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# The protocol tests on the flashable rp2 image in the emulated RP2040.
test-emu: $(STAMP)
	$(MAKE) --no-print-directory image BOARD=rp2
	$(PY) -m pytest -q hil_tests/test_protocol.py --target rp2-emu:$$(ls build/image/*.uf2)

run: $(STAMP)
	$(VENV)/bin/handpiece run programs/knee-oa-reference.toml --out runs/latest

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build runs test-logs

# Real boards: make build|flash|hil|typecheck BOARD=rp2|stm32|esp32|rig_pico [PORT=...]
include boards/boards.mk
