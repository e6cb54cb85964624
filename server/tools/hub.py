"""The host's MCP client side: the tool sub-servers, each a stdio child kept connected by its own task.

One supervisor task per sub-server owns its `Client` (an MCP client must be entered and exited in one
task): it starts the child, lists its tools, and restarts it when a call finds it dead. Calls run in
the caller's task on the live session, with a per-call timeout; a dead child is restarted and the call
retried once. Every failure becomes a `ToolOutcome(is_error=True)` the model can read; nothing a
sub-server does can raise into the host. Children get only the environment they need.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp import StdioServerParameters
from mcp.client import Client, Transport
from mcp.shared.exceptions import MCPError

from server.domain.config import ToolServerConfig
from server.domain.messages import ToolSpec
from server.tools.forked_children import ForkServer, ForkServerGone
from server.tools.forked_transport import forked_transport
from server.tools.launch import child_environment, forkable_entry, full_environment
from server.tools.toolbox import ToolOutcome

log = logging.getLogger("model_router.tools")
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001
_CONNECT_TIMEOUT_S = 20.0
_RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
_MAX_RESULT_CHARS = 50_000
# Eager start also waits this long before spawning, so that three imports of the SDK do not delay the
# host's first answers (the lifespan that starts them runs just before the host answers `initialize`); a
# task that needs a tool sooner starts them at once. Forked children come ready-imported: no wait.
LAUNCH_DELAY_S = 0.3


@dataclass
class SubServer:
    """One child process and the live client session to it.

    With a fork server that has its entry (`entry`, the `-m` module), the child is forked ready-imported;
    otherwise, or once the fork server has failed, it is spawned from `params`.
    """

    name: str
    params: StdioServerParameters
    timeout_s: float
    forkserver: ForkServer | None = None
    entry: str = ""
    client: Client | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    generation: int = 0
    last_error: str | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _restart: anyio.Event = field(default_factory=anyio.Event)

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def supervise(self) -> None:
        """Keep the child running until cancelled; restart it whenever a caller reports it dead."""
        failures = 0
        while True:
            self._restart = anyio.Event()
            try:
                async with Client(self._transport(), mode="legacy", read_timeout_seconds=_CONNECT_TIMEOUT_S) as client:
                    listed = await client.list_tools()
                    self.tools = [ToolSpec(t.name, t.description or "", dict(t.input_schema)) for t in listed.tools]
                    self.client, self.last_error, failures = client, None, 0
                    self.generation += 1
                    log.info("tool server %s ready: %s", self.name, ", ".join(t.name for t in self.tools))
                    self._notify()
                    await self._restart.wait()
            except ForkServerGone:
                continue  # the fork server is marked failed: spawn the child at once instead
            except Exception as exc:  # a child that cannot start must not take the host down
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("tool server %s failed: %s", self.name, self.last_error)
            finally:
                self.client = None
                self._notify()
            if failures:
                await anyio.sleep(_RESTART_BACKOFF_S[min(failures, len(_RESTART_BACKOFF_S)) - 1])

    def _transport(self) -> Transport | StdioServerParameters:
        if self.forkserver is not None and self.forkserver.can_run(self.entry):
            env = full_environment(self.params.env or {})  # what a spawned child would get
            return forked_transport(self.forkserver, self.entry, env, _CONNECT_TIMEOUT_S)
        return self.params

    async def wait_ready(self, timeout_s: float, newer_than: int = 0) -> bool:
        """Wait until a session newer than `newer_than` is live (bounded)."""
        with anyio.move_on_after(timeout_s):
            while self.client is None or self.generation <= newer_than:
                await self._changed.wait()
        return self.client is not None and self.generation > newer_than

    async def wait_settled(self, timeout_s: float) -> None:
        """Wait (bounded) until the first start has either succeeded or failed."""
        with anyio.move_on_after(timeout_s):
            while self.client is None and self.last_error is None:
                await self._changed.wait()

    def report_dead(self, generation: int) -> None:
        """A caller saw the session of `generation` die: drop it and restart (once per generation)."""
        if self.generation == generation and self.client is not None:
            self.client = None
            self._restart.set()

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one tool; a dead child is restarted and the call retried once."""
        seen = 0
        for attempt in (1, 2):
            patience = _CONNECT_TIMEOUT_S if self.last_error is None else 2.0  # a failing child: do not stall
            if not await self.wait_ready(patience, newer_than=seen):
                detail = f" ({self.last_error})" if self.last_error else ""
                return ToolOutcome(
                    f"tool {name} is unavailable: its server ({self.name}) is not running{detail}; "
                    "try again later or answer without it",
                    is_error=True,
                )
            client, seen = self.client, self.generation
            assert client is not None
            try:
                result = await client.call_tool(name, arguments, read_timeout_seconds=self.timeout_s)
            except MCPError as exc:
                if exc.code == _REQUEST_TIMEOUT:
                    return ToolOutcome(
                        f"tool {name} timed out after {self.timeout_s:.0f}s; try a smaller request", is_error=True
                    )
                if exc.code != _CONNECTION_CLOSED:
                    return ToolOutcome(f"tool {name} failed: {exc.message}", is_error=True)
                if attempt == 2:
                    self.report_dead(seen)  # restart now, not when the next call finds it dead
                    return ToolOutcome(f"tool {name} failed: {exc.message}", is_error=True)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                if attempt == 2:
                    self.report_dead(seen)
                    return ToolOutcome(f"tool {name} failed: its server stopped", is_error=True)
            else:
                return _outcome(result)
            log.warning("tool server %s died during %s; restarting it and retrying once", self.name, name)
            self.report_dead(seen)
        return ToolOutcome(f"tool {name} failed", is_error=True)


def _outcome(result: Any) -> ToolOutcome:
    texts = [getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text"]
    text = "\n".join(t for t in texts if t)
    if not text and result.structured_content is not None:
        import json

        text = json.dumps(result.structured_content)
    if len(text) > _MAX_RESULT_CHARS:
        text = text[:_MAX_RESULT_CHARS] + "\n[output truncated by the host]"
    return ToolOutcome(text or "(no output)", is_error=bool(result.is_error))


class ToolHub:
    """The `ToolBox` backed by the sub-servers; starts them on first use unless started eagerly."""

    def __init__(self, servers: list[SubServer], task_group: TaskGroup, ready_timeout_s: float = 15.0) -> None:
        self.servers = servers
        self._tg = task_group
        self._ready_timeout = ready_timeout_s
        self._started = False

    def launch(self) -> None:
        """Start every sub-server in parallel, without waiting for them (the host answers meanwhile)."""
        if self._started:
            return
        self._started = True
        for server in self.servers:
            self._tg.start_soon(server.supervise, name=f"tool-server-{server.name}")

    async def start(self) -> None:
        """Launch (if needed) and wait, bounded, until each sub-server is up or has failed."""
        self.launch()
        with anyio.move_on_after(self._ready_timeout):
            for server in self.servers:
                await server.wait_settled(self._ready_timeout)
        for server in self.servers:
            if server.client is None and server.last_error is None:
                server.last_error = "did not start in time"
                log.error("tool server %s did not start within %.0fs", server.name, self._ready_timeout)

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        await self.start()
        wanted = set(names)
        return [t for s in self.servers if s.client is not None for t in s.tools if t.name in wanted]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        await self.start()
        for server in self.servers:
            if any(t.name == name for t in server.tools):
                return await server.call(name, arguments)
        return ToolOutcome(f"unknown tool {name!r}", is_error=True)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            s.name: {"running": s.client is not None, "tools": [t.name for t in s.tools], "error": s.last_error}
            for s in self.servers
        }


def build_servers(
    specs: Mapping[str, ToolServerConfig],
    env: Mapping[str, str],
    data_dir: Path,
    forkserver: ForkServer | None = None,
) -> list[SubServer]:
    servers = []
    for name, spec in specs.items():
        if not spec.enabled:
            continue
        params = StdioServerParameters(
            command=spec.command or sys.executable,
            args=list(spec.args),
            env=child_environment(spec, env, data_dir),
        )
        entry = forkable_entry(spec)
        usable = forkserver if forkserver is not None and forkserver.can_run(entry) else None
        servers.append(SubServer(name=name, params=params, timeout_s=spec.timeout_s, forkserver=usable, entry=entry))
    return servers


@asynccontextmanager
async def open_tool_hub(
    specs: Mapping[str, ToolServerConfig],
    env: Mapping[str, str],
    data_dir: Path,
    *,
    eager: bool = True,
    forkserver: ForkServer | None = None,
) -> AsyncIterator[ToolHub]:
    """A hub whose sub-servers live inside this context; all are stopped on exit.

    `eager` launches them now, in the background; otherwise they start when a task first needs a tool.
    `forkserver` (started early by `serve`) forks the servers it has imported instead of spawning them;
    when none of them can use it, it is stopped at once.
    """
    servers = build_servers(specs, env, data_dir, forkserver)
    if forkserver is not None and not any(s.forkserver is forkserver for s in servers):
        forkserver.close()
    async with anyio.create_task_group() as tg:
        hub = ToolHub(servers, tg)
        if eager:
            forked = any(s.forkserver is not None for s in servers)
            tg.start_soon(_launch_later, hub, 0.0 if forked else LAUNCH_DELAY_S)
        try:
            yield hub
        finally:
            tg.cancel_scope.cancel()


async def _launch_later(hub: ToolHub, delay_s: float) -> None:
    await anyio.sleep(delay_s)
    hub.launch()
