# Real-board targets, included by the main Makefile (`include boards/boards.mk`).
# `make hil` takes RIG=/dev/ttyACM1 when the bench rig (boards/rig_pico) is wired.
# Uses PYTHON, PY, BOARD, PORT and STAMP (the venv's install stamp) from the main
# Makefile; include it after they are defined. Defaults here if they are unset.
BOARD ?= rp2
PORT ?=
PYTHON ?= python3
PY ?= .venv/bin/python
# The board names, from the board table (plain Python: no venv needed).
BOARDS := $(shell $(PYTHON) boards/table.py)
ifeq ($(strip $(BOARDS)),)
$(error boards/table.py gave no board names (is $(PYTHON) there?))
endif

.PHONY: build flash hil typecheck image check-board check-port boards-setup

check-board:
	@case " $(BOARDS) " in *" $(BOARD) "*) ;; \
	*) echo "unknown BOARD '$(BOARD)': choose one of $(BOARDS)" >&2; exit 2;; esac

check-port:
	@if [ -z "$(PORT)" ]; then echo "set PORT, e.g. make $(MAKECMDGOALS) PORT=/dev/ttyACM0 BOARD=$(BOARD)" >&2; exit 2; fi

# The ports' official stubs (pinned in boards/table.py), for
# typecheck and the fakes check, installed into build/stubs/ by `make setup`
# so that no test downloads anything.
STUBS_STAMP := build/stubs/.installed

$(STUBS_STAMP): boards/table.py $(STAMP)
	$(PY) boards/typecheck.py --install
	touch $@

setup test: $(STUBS_STAMP)

boards-setup: $(STUBS_STAMP)

build: check-board $(STAMP)
	$(PY) boards/build.py $(BOARD)

# The flashable UF2 (boards on the rp2 port: the device and the bench rig): the
# committed stock MicroPython base plus a littlefs filesystem of this tree's
# compiled modules for BOARD (boards/rp2/image/), in build/image/BOARD/.
UF2_BOARDS := $(shell $(PYTHON) boards/table.py --port rp2)
IMAGE_DIR = build/image/$(BOARD)
image: check-board $(STAMP)
	@case " $(UF2_BOARDS) " in *" $(BOARD) "*) ;; \
	*) echo "make image: only $(UF2_BOARDS) have a UF2 image; flash $(BOARD) with make flash PORT=..." >&2; exit 2;; esac
	$(PY) boards/build.py $(BOARD)
	$(PY) boards/rp2/image/uf2image.py build/$(BOARD) $(IMAGE_DIR)

# DRIVE=/media/$$USER/RPI-RP2 (a Pico held in BOOTSEL): copy the UF2 there.
# Otherwise PORT=...: mpremote copies the modules onto a running MicroPython.
ifneq ($(DRIVE),)
flash: image
	$(PY) boards/rp2/image/uf2image.py --copy $(IMAGE_DIR) $(DRIVE)
else
flash: check-board check-port build
	$(PY) boards/build.py --flash $(BOARD) $(PORT)
endif

hil: check-board check-port $(STAMP)
	$(PY) -m pytest hil_tests --target serial:$(PORT) $(if $(RIG),--rig serial:$(RIG))

typecheck: check-board $(STAMP) $(STUBS_STAMP)
	$(PY) boards/typecheck.py $(BOARD)
