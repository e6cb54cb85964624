"""The host's MCP client side: the tool sub-servers, each a stdio child kept connected by its own task.

`open_tool_hub` spawns every enabled sub-server at once, in the background: nothing the host answers
(`initialize`, `tools/list`, `route_task`) waits for them. A task that needs tools waits, bounded, only
until the sub-servers that provide them are up; one that cannot start is named, with its reason, in the
tool error the model reads.

One supervisor task per sub-server owns its `Client` (an MCP client must be entered and exited in one
task): it starts the child, lists its tools, and restarts it when a call finds it dead. Calls run in
the caller's task on the live session, with a per-call timeout. When the child dies during a call, it is
restarted for later calls, and the call itself is retried once only if the tool is safe to repeat: its
`tools/list` annotations say it is read-only or idempotent. Any other tool (`execute_python`, or one that
declares nothing) may already have done its work, so it is never sent twice: the caller gets a tool error
saying it may or may not have run. Before such a call the session is checked (`tools/list`), so a child that died while
idle is restarted and the call sent once to the new one. Every failure becomes a
`ToolOutcome(is_error=True)`; nothing a sub-server does can raise into the host. Children get only the
environment they need (`server/tools/launch.py`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ToolAnnotations

from server.domain.config import ToolServerConfig
from server.domain.messages import ToolSpec
from server.errors import ToolUnavailable
from server.tools.launch import launch_parameters
from server.tools.toolbox import ToolOutcome

log = logging.getLogger("model_router.tools")
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001
_CONNECT_TIMEOUT_S = 20.0
_RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
_MAX_RESULT_CHARS = 50_000
_PING_TIMEOUT_S = 5.0


@dataclass
class SubServer:
    """One child process, spawned from `params`, and the live client session to it."""

    name: str
    params: StdioServerParameters
    timeout_s: float
    client: Client | None = None
    tools: list[ToolSpec] = field(default_factory=list)  # kept while a dead child restarts
    repeatable: set[str] = field(default_factory=set)  # tools annotated read-only or idempotent
    generation: int = 0
    last_error: str | None = None
    on_change: Callable[[], None] = lambda: None
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _restart: anyio.Event = field(default_factory=anyio.Event)

    @property
    def settled(self) -> bool:
        """Up, or known to have failed: nobody needs to wait for it any longer."""
        return self.client is not None or self.last_error is not None

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        self.on_change()

    async def supervise(self) -> None:
        """Keep the child running until cancelled; restart it whenever a caller reports it dead."""
        failures = 0
        while True:
            self._restart = anyio.Event()
            try:
                async with Client(self.params, mode="legacy", read_timeout_seconds=_CONNECT_TIMEOUT_S) as client:
                    listed = await client.list_tools()
                    self.tools = [ToolSpec(t.name, t.description or "", dict(t.input_schema)) for t in listed.tools]
                    self.repeatable = {t.name for t in listed.tools if _repeatable(t.annotations)}
                    self.client, self.last_error, failures = client, None, 0
                    self.generation += 1
                    log.info("tool server %s ready: %s", self.name, ", ".join(t.name for t in self.tools))
                    self._notify()
                    await self._restart.wait()
            except Exception as exc:  # a child that cannot start must not take the host down
                failures += 1
                self.last_error = _reason(exc)
                log.error("tool server %s failed: %s", self.name, self.last_error)
            finally:
                self.client = None
                self._notify()
            if failures:
                await anyio.sleep(_RESTART_BACKOFF_S[min(failures, len(_RESTART_BACKOFF_S)) - 1])

    async def wait_ready(self, timeout_s: float, newer_than: int = 0) -> bool:
        """Wait until a session newer than `newer_than` is live (bounded)."""
        with anyio.move_on_after(timeout_s):
            while self.client is None or self.generation <= newer_than:
                await self._changed.wait()
        return self.client is not None and self.generation > newer_than

    def report_dead(self, generation: int) -> None:
        """A caller saw the session of `generation` die: drop it and restart (once per generation)."""
        if self.generation == generation and self.client is not None:
            self.client = None
            self._restart.set()

    async def _session(self, newer_than: int) -> tuple[Client, int]:
        """A live session newer than `newer_than`; ToolUnavailable, naming this server and why, if none comes."""
        patience = _CONNECT_TIMEOUT_S if self.last_error is None else 2.0  # a failing child: do not stall
        if not await self.wait_ready(patience, newer_than=newer_than) or self.client is None:
            why = self.last_error or f"it did not start within {patience:.0f}s"
            raise ToolUnavailable(f"its server ({self.name}) is not running ({why})")
        return self.client, self.generation

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one tool; if the child dies during it, restart the child and retry once a tool safe to repeat."""
        repeatable = name in self.repeatable
        seen = 0
        for attempt in (1, 2):
            try:
                client, seen = await self._session(newer_than=seen)
                if not repeatable:
                    client, seen = await self._checked(client, seen)
            except ToolUnavailable as exc:
                advice = "try again later or answer without it"
                return ToolOutcome(f"tool {name} is unavailable: {exc}; {advice}", is_error=True)
            try:
                result = await client.call_tool(name, arguments, read_timeout_seconds=self.timeout_s)
            except MCPError as exc:
                if exc.code == _REQUEST_TIMEOUT:
                    return ToolOutcome(
                        f"tool {name} timed out after {self.timeout_s:.0f}s; try a smaller request", is_error=True
                    )
                if exc.code != _CONNECTION_CLOSED:
                    return ToolOutcome(f"tool {name} failed: {exc.message}", is_error=True)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                pass
            else:
                return _outcome(result)
            self.report_dead(seen)  # restart now, not when the next call finds it dead
            if not repeatable:
                log.warning("tool server %s died during %s; restarting it, not repeating the call", self.name, name)
                return ToolOutcome(_not_repeated(name, self.name), is_error=True)
            if attempt == 2:
                return ToolOutcome(f"tool {name} failed: its server ({self.name}) stopped twice", is_error=True)
            log.warning("tool server %s died during %s; restarting it and retrying once", self.name, name)
        return ToolOutcome(f"tool {name} failed", is_error=True)

    async def _checked(self, client: Client, generation: int) -> tuple[Client, int]:
        """The session, checked with a `tools/list` first: a child found dead before the call is restarted and
        its successor used (the call was never sent, so sending it there is not a repeat). Raises
        `ToolUnavailable`."""
        try:
            with anyio.move_on_after(_PING_TIMEOUT_S):  # busy but alive: the call goes to it
                await client.list_tools()  # the cheapest request every server answers
            return client, generation
        except MCPError as exc:
            if exc.code != _CONNECTION_CLOSED:
                return client, generation  # it answered: alive
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        log.warning("tool server %s was found dead before a call; restarting it", self.name)
        self.report_dead(generation)
        return await self._session(newer_than=generation)


def _repeatable(annotations: ToolAnnotations | None) -> bool:
    """Whether a second run of a call does nothing the first did not (MCP's hints; undeclared: no)."""
    return annotations is not None and bool(annotations.read_only_hint or annotations.idempotent_hint)


def _not_repeated(tool: str, server: str) -> str:
    return (
        f"tool {tool} failed: its server ({server}) stopped while running this call, so the call may or may not "
        f"have taken effect. It was not repeated, because {tool} is not marked idempotent and running it twice "
        "could do its work twice. Its server is being restarted: check whether the call had its effect before "
        "calling it again, or answer without it"
    )


def _reason(exc: BaseException) -> str:
    """The first real cause inside the task groups' exception groups, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _outcome(result: Any) -> ToolOutcome:
    texts = [getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text"]
    text = "\n".join(t for t in texts if t)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content)
    if len(text) > _MAX_RESULT_CHARS:
        text = text[:_MAX_RESULT_CHARS] + "\n[output truncated by the host]"
    return ToolOutcome(text or "(no output)", is_error=bool(result.is_error))


class ToolHub:
    """The `ToolBox` backed by the sub-servers; starts them all at once, on `launch` or on first use."""

    def __init__(self, servers: list[SubServer], task_group: TaskGroup, ready_timeout_s: float = 15.0) -> None:
        self.servers = servers
        self._tg = task_group
        self._ready_timeout = ready_timeout_s
        self._started = False
        self._changed = anyio.Event()
        for server in servers:
            server.on_change = self._notify

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def launch(self) -> None:
        """Spawn every sub-server in parallel, without waiting for them (the host answers meanwhile)."""
        if self._started:
            return
        self._started = True
        for server in self.servers:
            self._tg.start_soon(server.supervise, name=f"tool-server-{server.name}")

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        """Launch, then wait (bounded) until `done()` or every sub-server has settled."""
        self.launch()
        with anyio.move_on_after(self._ready_timeout):
            while not done() and not all(s.settled for s in self.servers):
                await self._changed.wait()
        for server in self.servers:
            if not server.settled and not done():
                server.last_error = f"did not start within {self._ready_timeout:.0f}s"
                log.error("tool server %s did not start within %.0fs", server.name, self._ready_timeout)

    async def start(self) -> None:
        """Launch (if needed) and wait, bounded, until each sub-server is up or has failed."""
        await self._wait_until(lambda: False)

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        """The named tools of the running sub-servers, once all are found or every sub-server has settled."""
        wanted = set(names)

        def found() -> bool:
            return wanted <= {t.name for s in self.servers if s.client is not None for t in s.tools}

        await self._wait_until(found)
        return [t for s in self.servers if s.client is not None for t in s.tools if t.name in wanted]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run `name` on the sub-server that has it, waiting only for that one (or for all, if none lists it)."""
        await self._wait_until(lambda: self._owner(name) is not None)
        server = self._owner(name)
        if server is not None:
            return await server.call(name, arguments)
        failed = [f"{s.name} could not start ({s.last_error})" for s in self.servers if not s.tools and s.last_error]
        if failed:
            why = "; ".join(failed)
            return ToolOutcome(f"tool {name!r} is unavailable: tool sub-server {why}; answer without it", is_error=True)
        return ToolOutcome(f"unknown tool {name!r}", is_error=True)

    def _owner(self, name: str) -> SubServer | None:
        return next((s for s in self.servers if any(t.name == name for t in s.tools)), None)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            s.name: {"running": s.client is not None, "tools": [t.name for t in s.tools], "error": s.last_error}
            for s in self.servers
        }


def build_servers(specs: Mapping[str, ToolServerConfig], env: Mapping[str, str], data_dir: Path) -> list[SubServer]:
    return [
        SubServer(name=name, params=launch_parameters(spec, env, data_dir), timeout_s=spec.timeout_s)
        for name, spec in specs.items()
        if spec.enabled
    ]


@asynccontextmanager
async def open_tool_hub(
    specs: Mapping[str, ToolServerConfig], env: Mapping[str, str], data_dir: Path, *, eager: bool = True
) -> AsyncIterator[ToolHub]:
    """A hub whose sub-servers live inside this context; all are stopped on exit.

    `eager` spawns them now, in the background; otherwise they start when a task first needs a tool.
    """
    async with anyio.create_task_group() as tg:
        hub = ToolHub(build_servers(specs, env, data_dir), tg)
        if eager:
            hub.launch()
        try:
            yield hub
        finally:
            tg.cancel_scope.cancel()
