"""The host's handle on the sub-servers' fork server (`tool_servers/forkserver.py`).

`ForkServer.start` is cheap and import-light on purpose: `serve` calls it before loading anything else, so
the fork server's one import of the MCP SDK runs beside the host's own. `launch` asks it for a child with
a given environment, hands over fresh pipes for the child's stdin and stdout, and gets back its pid and a
pidfd: the host waits for and signals that exact process (never a recycled pid), although the fork server
is its parent. Linux only (pidfds); elsewhere `start` returns None and the sub-servers are spawned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import anyio

log = logging.getLogger("model_router.tools")

# The sub-servers this package ships: `python -m NAME` runs the function after the colon.
BUILT_IN_ENTRIES = {
    "tool_servers.web_search": "tool_servers.web_search.server:main",
    "tool_servers.code_exec": "tool_servers.code_exec.server:main",
    "tool_servers.memory": "tool_servers.memory.server:main",
}
# All the fork server itself may see: what the SDK passes every spawned server, and never a key.
_BASIC_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "SYSTEMROOT")
_STOP_GRACE_S = 2.0


class ForkServerGone(RuntimeError):
    """The fork server has exited or refused a request; spawn the sub-server instead."""


@dataclass
class ForkedChild:
    """A running child: its pid, a pidfd for it, and the host's ends of its stdin and stdout pipes."""

    pid: int
    pidfd: int
    stdin: int
    stdout: int

    def exited(self) -> bool:
        return bool(_poll_readable(self.pidfd))

    async def wait(self, timeout_s: float) -> bool:
        """Wait (bounded) for the process to end; True when it has."""
        with anyio.move_on_after(timeout_s):
            await anyio.wait_readable(self.pidfd)
        return self.exited()

    async def stop(self) -> None:
        """End the child as the SDK ends a spawned server: close its stdin, then SIGTERM, then SIGKILL."""
        _close(self.stdin)
        self.stdin = -1
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self.pidfd, sig)
            if await self.wait(_STOP_GRACE_S):
                break
        else:
            log.warning("tool server process %d survived SIGKILL; abandoning it", self.pid)
        self.close()

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.pidfd):
            _close(fd)
        self.stdin = self.stdout = self.pidfd = -1


@dataclass
class _Ticket:
    """A request sent to the fork server: the host's pipe ends, then its reply (a child or an error)."""

    name: str
    env: dict[str, str]
    stdin: int
    stdout: int
    child: ForkedChild | None = None
    error: str | None = None
    abandoned: bool = False

    @property
    def answered(self) -> bool:
        return self.child is not None or self.error is not None

    def discard(self) -> None:
        """Let go of the child: with its stdin closed, it reads end-of-file and exits."""
        if self.child is not None:
            self.child.close()
        for fd in (self.stdin, self.stdout):
            _close(fd)
        self.stdin = self.stdout = -1


class ForkServer:
    """A running fork server; `launch` children from it, `close` it when the host stops.

    Requests are sent at once and answered in order (the fork server serves them one by one), so
    `prelaunch` can ask for the sub-servers before the event loop exists; `launch` then takes the matching
    child. Replies carry no id: the pending queue matches them to their requests.
    """

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket, entries: Mapping[str, str]):
        self._process = process
        self._control = control
        self.entries = dict(entries)
        self._pending: deque[_Ticket] = deque()  # sent, not yet answered, in the order sent
        self._spares: list[_Ticket] = []  # prelaunched, not yet taken
        self._lock: anyio.Lock | None = None
        self.failed: str | None = None

    @classmethod
    def start(cls, entries: Mapping[str, str] = BUILT_IN_ENTRIES) -> ForkServer | None:
        """Start one for `entries` (name → module:function), or None where the platform cannot."""
        if not (sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")):
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {name: os.environ[name] for name in _BASIC_ENV if os.environ.get(name)}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "tool_servers.forkserver", str(theirs.fileno()),
                 *(f"{name}={target}" for name, target in entries.items())],
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),  # never the host's stdout: that is its MCP wire
                env=env,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log.warning("could not start the tool servers' fork server (%s); they will be spawned", exc)
            ours.close()
            return None
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(process, ours, entries)

    @property
    def unclaimed(self) -> int:
        """Children asked for by `prelaunch` that no `launch` has taken (yet)."""
        return len(self._spares)

    def can_run(self, name: str) -> bool:
        return self.failed is None and name in self.entries

    def prelaunch(self, name: str, env: Mapping[str, str]) -> None:
        """Ask now (no event loop needed) for a child that a later `launch` with the same arguments takes."""
        if self.can_run(name):
            ticket = self._send(name, env)
            if ticket is not None:
                self._spares.append(ticket)

    async def launch(self, name: str, env: Mapping[str, str], timeout_s: float) -> ForkedChild:
        """A new child running entry `name` with exactly `env`; ForkServerGone when that cannot be."""
        wanted = dict(env)
        ticket = next((t for t in self._spares if t.name == name and t.env == wanted), None)
        if ticket is not None:
            self._spares.remove(ticket)
            log.debug("tool server %s: taking the child asked for at start-up", name)
        elif self.can_run(name):
            ticket = self._send(name, wanted)
        if ticket is None:
            raise ForkServerGone(self.failed or f"it has no entry {name!r}")
        try:
            await self._receive(ticket, timeout_s)
        except BaseException:
            ticket.abandoned = True  # cancelled: its reply, if it comes, is discarded
            if ticket.answered:
                ticket.discard()
            raise
        if ticket.child is None:
            ticket.discard()
            raise ForkServerGone(ticket.error or "no reply")
        child, ticket.child = ticket.child, None
        child.stdin, child.stdout = ticket.stdin, ticket.stdout
        ticket.stdin = ticket.stdout = -1
        return child

    def _send(self, name: str, env: Mapping[str, str]) -> _Ticket | None:
        child_in, host_in = os.pipe()
        host_out, child_out = os.pipe()
        ticket = _Ticket(name, dict(env), stdin=host_in, stdout=host_out)
        request = json.dumps({"name": name, "env": ticket.env}).encode()
        try:
            socket.send_fds(self._control, [request], [child_in, child_out])
        except OSError as exc:  # gone, or its queue is full (it is stuck): either way, spawn instead
            self._fail(f"{type(exc).__name__}: {exc}")
            ticket.discard()
            return None
        finally:
            _close(child_in)
            _close(child_out)
        self._pending.append(ticket)
        return ticket

    async def _receive(self, ticket: _Ticket, timeout_s: float) -> None:
        """Read replies, in order, until `ticket` has its own."""
        if self._lock is None:
            self._lock = anyio.Lock()
        try:
            with anyio.fail_after(timeout_s):
                async with self._lock:  # one reader: each reply goes to the oldest pending request
                    while not ticket.answered:
                        await anyio.wait_readable(self._control)
                        try:
                            message, fds, _flags, _addr = socket.recv_fds(self._control, 65536, 1)
                        except BlockingIOError:
                            continue
                        if not message:
                            raise EOFError("it exited")
                        self._answer(self._pending.popleft(), message, fds)
        except (OSError, EOFError, TimeoutError, ValueError, IndexError) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            raise ForkServerGone(self.failed) from exc

    def _answer(self, ticket: _Ticket, message: bytes, fds: list[int]) -> None:
        reply = json.loads(message)
        if "pid" in reply and len(fds) == 1:
            ticket.child = ForkedChild(pid=int(reply["pid"]), pidfd=fds[0], stdin=-1, stdout=-1)
        else:
            for fd in fds:
                _close(fd)
            ticket.error = str(reply.get("error", "unexpected reply"))
            self._fail(ticket.error)  # it refused a request it should serve: stop asking it
        if ticket.abandoned:
            ticket.discard()

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            log.warning("the tool servers' fork server failed (%s); spawning them instead", reason)

    def close(self) -> None:
        """Stop the fork server and any child it made that nobody took (they exit on end-of-file).

        Children handed out live on until their own handles stop them. Idempotent.
        """
        for ticket in (*self._spares, *self._pending):
            ticket.discard()
        self._spares.clear()
        self._control.close()
        if self._process.poll() is None:
            self._process.kill()  # it holds no state; mid-import or idle, nothing is lost
        self._process.wait()


def _poll_readable(fd: int) -> bool:
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _close(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
