# MicroPython freeze manifest of the rp2 base image with the project frozen in:
# the port's own modules, then every module of the rp2 device image that
# frozen.txt lists (path from the repository root, sha256 of the source).
# A source that differs from its listed sha256 stops the build: the base
# holds exactly the sources frozen.txt names. rebuild.sh --frozen runs it.
import hashlib
import os

include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 - defined by MicroPython's manifest reader

_root = os.path.abspath("../../../..")  # the manifest runs from its own folder
with open("frozen.txt") as _f:
    for _line in _f:
        if not _line.strip() or _line.startswith("#"):
            continue
        _path, _sha = _line.split()
        with open(os.path.join(_root, _path), "rb") as _src:
            if hashlib.sha256(_src.read()).hexdigest() != _sha:
                raise ValueError("%s differs from frozen.txt: run uf2image.py --freeze-list" % _path)
        module(os.path.basename(_path), base_path=os.path.join(_root, os.path.dirname(_path)))  # noqa: F821
