"""Crash points: named places where a test kills the run as a scheduler's `kill -9` would.

`SAFETYNET_CRASH_AT=<point>` (read when this module is imported; a test's child process, forked
with the modules imported, sets it and reloads this module) makes the process SIGKILL itself
the first time it reaches that point: no handler, no `finally`, no flush, exactly what a killed
run leaves. `tests/test_faults.py` kills a quarter at each point and checks that the last good
outputs stay readable and that a re-run gives the clean run's outputs byte for byte. Unset, a
crash point is one comparison.

The points, in the order a quarter reaches them:
- `gate`: an extract's staging table moved into place, its quarantine table not yet;
- `expectations`: an extract's first batch validated by Great Expectations, nothing stored;
- `policy`: the raised warnings moved into place, the rule runs not yet;
- `publishing`: the first file of the publication moved into place, the others not yet;
- `routed_swap`: the quarter's old routed folder moved aside, the new one not yet in;
- `warehouse_swap`: the warehouse's copy loaded with the quarter, not yet swapped in.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "SAFETYNET_CRASH_AT"
POINTS = ("gate", "expectations", "policy", "publishing", "routed_swap", "warehouse_swap")
_ARMED = os.environ.get(CRASH_ENV, "").strip() or None
if _ARMED is not None and _ARMED not in POINTS:
    raise ValueError(
        f"{CRASH_ENV}={_ARMED!r} is not a crash point; the points: {', '.join(POINTS)}"
    )


def crash_point(name: str) -> None:
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
