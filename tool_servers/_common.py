"""Shared start-up for the sub-servers: logs to stderr (stdout is the MCP wire), then serve over stdio."""

from __future__ import annotations

import gc
import logging
import os
import sys

from mcp.server.mcpserver import MCPServer

from server.mcp.stdio_wire import serve_stdio


def run_stdio(server: MCPServer) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("TOOL_SERVER_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    gc.freeze()  # start-up objects live as long as the process: keep them out of full collections
    serve_stdio(server)
