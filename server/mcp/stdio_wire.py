"""Serve an `MCPServer` over stdin/stdout with event-loop pipe I/O instead of worker threads.

The SDK's `stdio_server()` reads each line and writes each reply through a worker thread (three thread
hops per request, ~0.7 ms of a ping here). This module hands the SDK's own transport loop explicit
streams backed by non-blocking pipes on the event loop, and keeps the SDK's guarantee that stray writes
cannot corrupt the wire: while serving, fd 0 reads the null device and fd 1 points at stderr (for our
code, libraries and child processes alike); both are restored on exit.

When stdin or stdout is not a pipe or socket (a terminal or a regular file, say) the SDK's transport is used:
non-blocking mode is set on the shared file description, which a terminal must never be left in.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from server.mcp.pipes import LineReader, PipeWriter


def serve_stdio(server: MCPServer) -> None:
    """Run `server` until stdin closes (what `server.run("stdio")` does, with the faster transport).

    On uvloop when it is installed (a dependency except on Windows): the SDK's per-request task and stream
    machinery runs on the event loop, and uvloop's loop cuts a `route_task` round trip by about a quarter.
    """
    uvloop = importlib.util.find_spec("uvloop") is not None
    anyio.run(_serve, server, backend_options={"use_uvloop": uvloop})


async def _serve(server: MCPServer) -> None:
    if not (_is_stream(0) and _is_stream(1)):
        await server.run_stdio_async()
        return
    # The SDK's own in-memory client reaches the low-level server the same way (it has no public name yet).
    lowlevel = server._lowlevel_server
    async with _claimed_stdio() as (lines, out), stdio_server(stdin=lines, stdout=out) as (read, write):  # type: ignore[arg-type]
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def _is_stream(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def _claimed_stdio() -> AsyncIterator[tuple[LineReader, PipeWriter]]:
    wire_in = os.dup(0)
    wire_out = os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    writer = PipeWriter(wire_out)
    try:
        reader = await LineReader.open(wire_in)
        try:
            yield reader, writer
        finally:
            reader.close()
    finally:
        writer.close()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
