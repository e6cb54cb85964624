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

import asyncio
import contextlib
import importlib.util
import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024 * 1024  # a JSON-RPC message larger than this is refused, not buffered


class OversizedMessage(ValueError):
    """A line on stdin longer than MAX_LINE_BYTES; it is skipped and the next line is read."""


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
async def _claimed_stdio() -> AsyncIterator[tuple[_LineReader, _PipeWriter]]:
    wire_in = os.dup(0)
    wire_out = os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    writer = _PipeWriter(wire_out)
    try:
        reader = await _LineReader.open(wire_in)
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


class _LineReader:
    """Async iterator of decoded lines from a pipe, read by the event loop."""

    def __init__(self, fd: int, reader: asyncio.StreamReader, transport: asyncio.BaseTransport) -> None:
        self._fd = fd
        self._reader = reader
        self._transport = transport

    @classmethod
    async def open(cls, fd: int) -> _LineReader:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        return cls(fd, reader, transport)

    def __aiter__(self) -> _LineReader:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                if not end.partial:
                    raise StopAsyncIteration from None
                line = end.partial
            except asyncio.LimitOverrunError:
                await self._skip_oversized()
                continue
            return line.decode("utf-8", errors="replace")

    async def _skip_oversized(self) -> None:
        # The SDK's reader passes undecodable lines on as errors and keeps serving; an oversized one is
        # dropped in chunks (never held whole) and reported on stderr.
        dropped = 0
        while True:
            try:
                dropped += len(await self._reader.readuntil(b"\n"))
                break
            except asyncio.LimitOverrunError as over:
                dropped += len(await self._reader.readexactly(over.consumed))
            except asyncio.IncompleteReadError as end:
                dropped += len(end.partial)
                break
        log.error("dropped a %d-byte message on stdin (limit %d bytes)", dropped, MAX_LINE_BYTES)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the loop made the shared description non-blocking
            os.set_blocking(self._fd, True)
        self._transport.close()


class _PipeWriter:
    """`write` buffers text, `flush` writes it with non-blocking writes, waiting while the pipe is full."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._pending: list[bytes] = []

    async def write(self, text: str) -> None:
        self._pending.append(text.encode("utf-8"))

    async def flush(self) -> None:
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        while data:
            try:
                data = data[os.write(self._fd, data) :]
            except BlockingIOError:
                await anyio.wait_writable(self._fd)
            except (BrokenPipeError, ConnectionResetError) as exc:  # the client is gone: end the session
                raise anyio.ClosedResourceError from exc

    def close(self) -> None:
        os.set_blocking(self._fd, True)  # the description is shared with the restored fd 1
        os.close(self._fd)
