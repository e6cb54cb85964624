"""An MCP client transport to a sub-server forked by the fork server: JSON-RPC lines over its two pipes.

What the SDK's `stdio_client` does for a process it spawned, for a process it did not: lines read from the
child's stdout on the event loop become messages, messages are written to its stdin, and leaving the
context stops the child (stdin closed, then SIGTERM, then SIGKILL, each after a grace period).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client import Transport
from mcp.shared.message import SessionMessage
from mcp.types import jsonrpc_message_adapter

from server.mcp.pipes import LineReader, PipeWriter
from server.tools.forked_children import ForkServer


def forked_transport(forkserver: ForkServer, name: str, env: Mapping[str, str], timeout_s: float) -> Transport:
    """A transport that, when entered, forks entry `name` with `env` (ForkServerGone if it cannot)."""
    return _connect(forkserver, name, env, timeout_s)  # type: ignore[return-value]


Streams = tuple[ObjectReceiveStream[SessionMessage | Exception], ObjectSendStream[SessionMessage]]


@asynccontextmanager
async def _connect(
    forkserver: ForkServer, name: str, env: Mapping[str, str], timeout_s: float
) -> AsyncIterator[Streams]:
    child = await forkserver.launch(name, env, timeout_s)
    writer = PipeWriter(child.stdin)
    reader = await LineReader.open(child.stdout, source=f"the {name} server's stdout")
    child.stdin = child.stdout = -1  # owned by the writer and reader now
    to_session, from_child = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_child, from_session = anyio.create_memory_object_stream[SessionMessage](0)

    async def pump_in() -> None:
        async with to_session:
            async for line in reader:
                try:
                    item: SessionMessage | Exception = SessionMessage(
                        jsonrpc_message_adapter.validate_json(line, by_name=False)
                    )
                except ValueError as exc:  # the session reports it; the connection stays up
                    item = exc
                try:
                    await to_session.send(item)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def pump_out() -> None:
        async with from_session:
            async for message in from_session:
                await writer.write(message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n")
                try:
                    await writer.flush()
                except anyio.ClosedResourceError:  # the child is gone: the session sees its stdout end
                    return

    try:
        async with anyio.create_task_group() as pumps:
            pumps.start_soon(pump_in)
            pumps.start_soon(pump_out)
            try:
                yield from_child, to_child
            finally:
                pumps.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            writer.close()  # the child reads end-of-file and exits on its own
            await child.stop()
            reader.close()
            for stream in (from_child, to_child):
                await stream.aclose()
