"""Print, as JSON, what a board module provides: `micropython hal_contract.py BOARD`.

For the unix board only the module tables are read (making it needs a pty).
"""
import json
import sys

import mpcheck

board_name = sys.argv[1]
mpcheck.use(board_name)
import contract  # noqa: E402
import board  # noqa: E402
import reference  # noqa: E402

out = {"limits": sorted(board.LIMITS), "settings": sorted(board.SETTINGS),
       "limit_values": board.LIMITS, "setting_values": board.SETTINGS,
       "reference_limits": reference.LIMITS, "reference_settings": reference.SETTINGS,
       "own_tables": board.LIMITS is not reference.LIMITS and board.SETTINGS is not reference.SETTINGS}
if board_name != "unix":
    b = board.make()
    out["missing"] = contract.missing(b)
    out["name"] = b.name
    out["same_tables"] = b.limits is board.LIMITS and b.settings is board.SETTINGS
    out["link_write"] = b.link.write(b"\n")  # non-blocking: the count taken (a blank line on stdout)
print(json.dumps(out))
