"""A fork server for the sub-servers: imports their code once, then forks one ready process per request.

Each sub-server spends ~1.3 s of CPU importing the MCP SDK before it can answer; three of them beside the
host take longer than the host itself on a small machine. The host starts this process first thing
(`server/forked_children.py`), with an environment of nothing but PATH/HOME-style basics (no keys: a
forked child's `/proc/<pid>/environ` shows the environment this process was started with), so its import
overlaps the host's. A request names one of the entries given on the command line and carries the child's
environment and its stdin/stdout pipe ends; the reply carries the child's pid and a pidfd, so the host can
wait for and signal that exact process. This process ends when the host closes its end of the socket.

Usage (by the host): python -m tool_servers.forkserver FD NAME=MODULE:FUNCTION ...
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Mapping

from tool_servers._priority import NICE_ENV

MAX_REQUEST_BYTES = 1 << 20


def main(argv: list[str]) -> None:
    control = socket.socket(fileno=int(argv[0]))
    # Only the host stops this process (by closing the socket): a terminal's Ctrl-C is the host's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Children are reaped by the kernel; the host watches each through its pidfd.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    base_priority = os.getpriority(os.PRIO_PROCESS, 0)
    entries = {name: _load(target) for name, target in (arg.split("=", 1) for arg in argv[1:])}
    gc.freeze()  # what every child shares, kept out of their collections (and their pages unwritten)
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, MAX_REQUEST_BYTES, 2)
        except InterruptedError:
            continue
        if not message:
            return  # the host is gone or done; children end on their own when their stdin closes
        _serve_request(control, message, fds, entries, base_priority)


def _load(target: str) -> Callable[[], object]:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function or "main")  # type: ignore[no-any-return]


def _serve_request(
    control: socket.socket,
    message: bytes,
    fds: list[int],
    entries: Mapping[str, Callable[[], object]],
    base_priority: int,
) -> None:
    try:
        request = json.loads(message)
        entry = entries[request["name"]]
        env = {str(k): str(v) for k, v in request["env"].items()}
        if len(fds) != 2:
            raise ValueError(f"expected the child's stdin and stdout, got {len(fds)} descriptors")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"error": f"bad request: {type(exc).__name__}: {exc}"}).encode())
        return
    pid = os.fork()
    if pid == 0:
        control.close()
        _become_child(entry, env, fds[0], fds[1], base_priority)
    for fd in fds:
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:  # it died at once and was reaped: nothing left to hand over
        control.send(json.dumps({"error": f"the child exited at once ({exc.strerror})"}).encode())
        return
    try:
        socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [pidfd])
    finally:
        os.close(pidfd)


def _become_child(entry: Callable[[], object], env: dict[str, str], stdin: int, stdout: int, base: int) -> None:
    """Run `entry` as a fresh sub-server process would, then exit without returning to the fork loop."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the code sandbox waits for its own children
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.close(stdin)
        os.close(stdout)
        os.environ.clear()
        os.environ.update(env)
        _lower_priority(env, base)
        entry()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _lower_priority(env: Mapping[str, str], base: int) -> None:
    """What `TOOL_SERVER_NICE` does for a spawned sub-server: that much below the host's priority."""
    try:
        wanted = base + int(env.get(NICE_ENV, "0"))
    except ValueError:
        return
    step = min(wanted, 19) - os.getpriority(os.PRIO_PROCESS, 0)
    if step > 0:
        with contextlib.suppress(OSError):  # not allowed here: normal priority
            os.nice(step)


if __name__ == "__main__":
    main(sys.argv[1:])
