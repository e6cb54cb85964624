"""Line-oriented pipe I/O on the event loop: the stdio wire of `serve` and of the forked sub-servers.

`LineReader` reads newline-ended lines from a pipe through the loop's own pipe transport (no worker
thread); a line longer than `MAX_LINE_BYTES` is dropped in chunks, never held whole. `PipeWriter` writes
with non-blocking writes and waits while the pipe is full. Both speak the text-stream interface the SDK's
stdio transport loop expects of its `stdin`/`stdout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import anyio

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024 * 1024  # a JSON-RPC message larger than this is refused, not buffered


class LineReader:
    """Async iterator of decoded lines from a pipe, read by the event loop."""

    def __init__(self, fd: int, reader: asyncio.StreamReader, transport: asyncio.BaseTransport, source: str) -> None:
        self._fd = fd
        self._source = source
        self._reader = reader
        self._transport = transport

    @classmethod
    async def open(cls, fd: int, source: str = "stdin") -> LineReader:
        """Read `fd` (which the reader now owns) on the running loop; `source` names it in logs."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        return cls(fd, reader, transport, source)

    def __aiter__(self) -> LineReader:
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
        log.error("dropped a %d-byte message on %s (limit %d bytes)", dropped, self._source, MAX_LINE_BYTES)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the loop made the shared description non-blocking
            os.set_blocking(self._fd, True)
        self._transport.close()


class PipeWriter:
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
