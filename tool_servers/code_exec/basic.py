"""The basic sandbox, for machines without unprivileged user namespaces (macOS, locked-down kernels).

It owns what needs no namespace of the code's own: a fresh `python -I -S -B` in its own session, rlimits,
and the whole process group killed at the end of the run. When the server runs as root it adds what
root alone can do: a network namespace, a private /tmp (a mount namespace with tmpfs over the
world-writable dirs) and the unprivileged user `nobody`. Code that leaves the process group (setsid) is
not caught here; `sandbox.Sandbox.not_kept()` says so rather than pretending.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
NOBODY = 65534
# With a private /tmp the run directories must live elsewhere (root-owned, traversable, not listable).
ROOT_WORKDIR_BASE = "/var/lib/model-router/code-exec"


def _unshare_net() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(CLONE_NEWNET) == 0)


def _private_tmp() -> bool:
    """A new mount namespace with fresh, private tmpfs over the world-writable directories.

    The run's own directory stays reachable because it is already the cwd (the script is run by a
    relative path); whatever the code writes to /tmp vanishes with the namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    for path in PRIVATE_DIRS:
        if os.path.isdir(path) and libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                                               b"size=16m,mode=1777") != 0:  # fmt: skip
            return False
    return True


def _child_succeeds(action: Callable[[], bool]) -> bool:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os._exit(0 if action() else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def nobody_can_run(path: str) -> bool:
    def check() -> bool:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return os.access(path, os.X_OK)

    return _child_succeeds(check)


def probe(pythons: list[str]) -> tuple[str, tuple[str, ...], str | None]:
    """The interpreter, the extra protections that work here, and where run directories go."""
    found = ["process_group_kill"]
    if _child_succeeds(_unshare_net):
        found.append("network_namespace")
    if _child_succeeds(_private_tmp):
        found.append("private_tmp")
    python = pythons[0]
    if os.geteuid() == 0:
        usable = [c for c in pythons if c and os.path.exists(c) and nobody_can_run(c)]
        if usable:
            python = usable[0]
            found.append("unprivileged_user")
    base = None
    if "private_tmp" in found:
        try:
            os.makedirs(ROOT_WORKDIR_BASE, mode=0o711, exist_ok=True)
            os.chmod(ROOT_WORKDIR_BASE, 0o711)
            base = ROOT_WORKDIR_BASE
        except OSError:
            found.remove("private_tmp")
    return python, tuple(found), base


def _set_limits(cpu_seconds: int, limits: dict[str, int]) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))


def _child_setup(cpu_seconds: int, protections: tuple[str, ...], limits: dict[str, int]) -> None:  # pragma: no cover
    """After fork, before exec: isolate, then drop privileges last (unshare needs them)."""
    if "network_namespace" in protections and not _unshare_net():
        os._exit(126)
    if "private_tmp" in protections and not _private_tmp():
        os._exit(126)
    if "unprivileged_user" in protections:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _set_limits(cpu_seconds, limits)


def start(
    python: str, workdir: str, cpu_seconds: int, protections: tuple[str, ...], limits: dict[str, int]
) -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [python, "-I", "-S", "-B", "main.py"],  # relative: cwd survives the private /tmp
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, close_fds=True,
        preexec_fn=lambda: _child_setup(cpu_seconds, protections, limits),
    )  # fmt: skip


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole session (it may have forked), whether or not it already exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
