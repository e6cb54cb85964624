"""Shared start-up for the sub-servers: logs to stderr, then serve over the MCP SDK's stdio transport behind
the JSON-RPC line guard (`_wire_guard`: an invalid request gets an error reply).

stdout is the MCP wire. The SDK's transport keeps it clean while serving: it writes the protocol through
a private duplicate of fd 1 and points fd 1 at stderr, so a stray `print` (ours, a library's, a child
process's) lands in the log, not on the wire.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

from mcp.server.mcpserver import MCPServer

from tool_servers._wire_guard import serve_guarded


def reason(exc: BaseException) -> str:
    """An exception's text for an error message, never empty: `str(exc)`, or its type name when that is blank
    (`httpx2.ReadError("")`, `TimeoutError()`, anyio's stream errors carry no text)."""
    return str(exc).strip() or type(exc).__name__


def run_stdio(server: MCPServer) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("TOOL_SERVER_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Start-up objects live as long as the process: out of the cyclic collector, whose full collections
    # (50-80 ms pauses, measured) would stall every call in flight.
    gc.freeze()
    serve_guarded(lambda: server.run("stdio"))  # an invalid request gets an error reply, not silence
