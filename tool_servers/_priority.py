"""Run below the host's CPU priority when the host asks (`TOOL_SERVER_NICE`), before anything heavy loads.

The host starts its sub-servers while it is still answering its own client's first requests; on a small
machine three Python processes importing the MCP SDK would take CPU from it. Kept free of imports beyond
`os`, so the call lands before the SDK's import begins. A process cannot raise its priority back, so the
lower priority lasts for the sub-server's life (and its sandboxed children's): it only matters when the
CPU is contended, and then the host should win.
"""

from __future__ import annotations

import contextlib
import os

NICE_ENV = "TOOL_SERVER_NICE"


def lower_priority_if_asked() -> None:
    try:
        increment = int(os.environ.get(NICE_ENV, "0"))
    except ValueError:
        return
    if 0 < increment <= 19:
        with contextlib.suppress(OSError):  # not allowed here (a hardened container): normal priority
            os.nice(increment)
