#!/usr/bin/env bash
# Rebuild a MicroPython base image from MicroPython's public sources. A
# developer step: CI never runs it.
#
#   boards/rp2/image/base/rebuild.sh SRC [OUT]            the stock image, firmware-RPI_PICO-v1.28.0.uf2
#   boards/rp2/image/base/rebuild.sh --frozen SRC [OUT]   the rp2 device's base, firmware-RPI_PICO-v1.28.0-rp2-frozen.uf2:
#       the stock build plus the modules frozen.txt lists (manifest.py), frozen
#       from this repository's tree. Run `uf2image.py --freeze-list` first when
#       the rp2 modules changed; the build stops on a source frozen.txt does not match.
#
# SRC must hold (plain source trees, no git history needed):
#   SRC/micropython                     micropython/micropython at tag v1.28.0, with
#     lib/pico-sdk                      raspberrypi/pico-sdk a1438dff1d38bd9c65dbd693f0e5db4b9ae91779 (2.2.0)
#     lib/tinyusb                       hathach/tinyusb aa0fc2e08f1c2dd6f026a431e8989357fbb4c5bf
#     lib/micropython-lib               micropython/micropython-lib 8380c7bb8f9e5e5260e9539156742925e00366b2
#     lib/mbedtls                       Mbed-TLS/mbedtls 107ea89daaefb9867ea9121002fbbdf926780e98
#   SRC/picotool                        raspberrypi/picotool at tag 2.2.0
# (the submodule commits are the ones MicroPython v1.28.0 pins). Tool chain (Debian 12):
#   apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi build-essential cmake
# The result and its sha256 land in OUT (default: SRC/out); compare the sha256 with
# PROVENANCE.md before replacing the committed image.
set -euo pipefail
FROZEN=
if [ "${1:-}" = --frozen ]; then FROZEN=1; shift; fi
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "${1:?usage: rebuild.sh [--frozen] SRC [OUT]}" && pwd)
OUT=${2:-$SRC/out}
MP=$SRC/micropython
JOBS=${JOBS:-2}
for d in "$MP/ports/rp2" "$MP/lib/pico-sdk/src" "$MP/lib/tinyusb/src" "$MP/lib/micropython-lib/micropython" "$MP/lib/mbedtls/library" "$SRC/picotool"; do
    [ -d "$d" ] || { echo "rebuild.sh: missing source directory $d" >&2; exit 2; }
done
mkdir -p "$OUT"

# Reproducible version header: the tag's version and commit date, not today's.
export MICROPY_GIT_TAG=v1.28.0 MICROPY_GIT_HASH=e0e9fbb17
export SOURCE_DATE_EPOCH=1775481169

# pico-sdk 2.x needs picotool to write the UF2 and would download it otherwise.
cmake -S "$SRC/picotool" -B "$SRC/build-picotool" -DPICO_SDK_PATH="$MP/lib/pico-sdk" \
    -DPICOTOOL_NO_LIBUSB=1 -DPICOTOOL_FLAT_INSTALL=1 -DCMAKE_INSTALL_PREFIX="$SRC/picotool-install"
make -C "$SRC/build-picotool" -j"$JOBS" install
PICOTOOL_DIR=$(dirname "$(find "$SRC/picotool-install" -name picotoolConfig.cmake | head -1)")

make -C "$MP/mpy-cross" -j"$JOBS"
# CMAKE_ARGS goes through the environment: on the make command line it would
# replace the port Makefile's own `CMAKE_ARGS +=` lines.
if [ -n "$FROZEN" ]; then
    NAME=firmware-RPI_PICO-v1.28.0-rp2-frozen.uf2
    # A fresh build directory: the port configures CMake once per directory,
    # so a kept one would freeze from the manifest (and tree) it first saw.
    rm -rf "$MP/ports/rp2/build-RPI_PICO-frozen"
    CMAKE_ARGS="-Dpicotool_DIR=$PICOTOOL_DIR" make -C "$MP/ports/rp2" BOARD=RPI_PICO BUILD=build-RPI_PICO-frozen \
        FROZEN_MANIFEST="$HERE/manifest.py" -j"$JOBS"
    cp "$MP/ports/rp2/build-RPI_PICO-frozen/firmware.uf2" "$OUT/$NAME"
else
    NAME=firmware-RPI_PICO-v1.28.0.uf2
    CMAKE_ARGS="-Dpicotool_DIR=$PICOTOOL_DIR" make -C "$MP/ports/rp2" BOARD=RPI_PICO -j"$JOBS"
    cp "$MP/ports/rp2/build-RPI_PICO/firmware.uf2" "$OUT/$NAME"
fi
(cd "$OUT" && sha256sum "$NAME" | tee "$NAME.sha256")
