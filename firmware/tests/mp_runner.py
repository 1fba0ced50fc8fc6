# Runs one test function of a firmware test module inside the MicroPython Unix
# port: `micropython mp_runner.py <file> <function>`. Prints PASS or the error.
import sys

here = sys.argv[1].rsplit("/", 1)[0]
sys.path.append(here)
sys.path.append(here + "/../../firmware")
mod_name = sys.argv[1].rsplit("/", 1)[1][:-3]
mod = __import__(mod_name)
try:
    getattr(mod, sys.argv[2])()
except Exception as e:  # noqa: BLE001 - report any failure to the pytest item
    sys.print_exception(e)
    sys.exit(1)
print("PASS")
