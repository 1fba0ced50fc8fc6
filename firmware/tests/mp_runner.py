# Runs firmware tests inside the MicroPython Unix port.
#   micropython mp_runner.py <file> <function>  runs one test: prints PASS or the error
#   micropython mp_runner.py <file>             lists the module's test functions, one a line
# Listing imports the module in MicroPython, so what is collected is what the
# module really defines, and a module that does not import fails its collection.
import sys

here = sys.argv[1].rsplit("/", 1)[0]
sys.path.append(here)
sys.path.append(here + "/../../firmware")
mod_name = sys.argv[1].rsplit("/", 1)[1][:-3]
try:
    mod = __import__(mod_name)
    if len(sys.argv) < 3:
        for name in sorted(dir(mod)):
            if name.startswith("test_") and callable(getattr(mod, name)):
                print(name)
        sys.exit(0)
    getattr(mod, sys.argv[2])()
except Exception as e:  # noqa: BLE001 - report any failure to pytest
    sys.print_exception(e)
    sys.exit(1)
print("PASS")
