"""Run untrusted Python in a child process with every protection this machine allows.

Per run: a fresh temporary directory (removed afterwards) as cwd and HOME; `python -I -S -B` (isolated
mode: no user site, no PYTHON* variables, no implicit imports); an environment of just PATH, HOME and
LANG (never the server's: no keys); resource limits (CPU seconds, address space, processes, file size,
open files, no core dumps); its own session, killed as a whole process group at the wall timeout; a new
network namespace (no interfaces but a downed loopback) when the kernel lets us create one; and an
unprivileged user when the server runs as root. `probe_protections()` says which of these work here,
and every result lists the ones that were in force.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
NOBODY = 65534
MAX_OUTPUT_BYTES = 64 * 1024
MEMORY_BYTES = 512 * 1024 * 1024
MAX_PROCESSES = 64
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_OPEN_FILES = 64


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool
    killed_signal: str | None
    duration_ms: float
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    protections: list[str] = field(default_factory=list)


def _unshare_net() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(CLONE_NEWNET) == 0


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


@dataclass(frozen=True)
class Sandbox:
    """What this machine allows: the interpreter, the protections in force, where run dirs go."""

    python: str
    protections: tuple[str, ...]
    workdir_base: str | None = None


# With a private /tmp the run directories must live elsewhere (root-owned, traversable, not listable).
_ROOT_WORKDIR_BASE = "/var/lib/model-router/code-exec"


def _nobody_can_run(path: str) -> bool:
    def check() -> bool:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return os.access(path, os.X_OK)

    return _child_succeeds(check)


def probe_sandbox(env: dict[str, str] | None = None) -> Sandbox:
    """Which isolation features work here (checked once, in throwaway children), and which interpreter.

    As root the code runs as `nobody`, so the interpreter must be executable by it: a virtualenv under
    /root usually is not, so a system Python is used instead (the code needs no project packages).
    """
    env = dict(os.environ) if env is None else env
    found = ["empty_env", "isolated_interpreter", "temp_dir", "rlimits", "process_group_kill"]
    if _child_succeeds(_unshare_net):
        found.append("network_namespace")
    if _child_succeeds(_private_tmp):
        found.append("private_tmp")
    candidates = [env.get("CODE_EXEC_PYTHON") or sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    python = candidates[0]
    if os.geteuid() == 0:
        usable = [c for c in candidates if c and os.path.exists(c) and _nobody_can_run(c)]
        if usable:
            python = usable[0]
            found.append("unprivileged_user")
    base = None
    if "private_tmp" in found:
        try:
            os.makedirs(_ROOT_WORKDIR_BASE, mode=0o711, exist_ok=True)
            os.chmod(_ROOT_WORKDIR_BASE, 0o711)
            base = _ROOT_WORKDIR_BASE
        except OSError:
            found.remove("private_tmp")
    return Sandbox(python=python, protections=tuple(found), workdir_base=base)


def _child_succeeds(action: object) -> bool:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os._exit(0 if action() else 1)  # type: ignore[operator]
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _limits(cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))


def _child_setup(cpu_seconds: int, protections: list[str]) -> None:  # pragma: no cover - runs in the child
    """After fork, before exec: isolate, then drop privileges last (unshare needs them)."""
    if "network_namespace" in protections and not _unshare_net():
        os._exit(126)
    if "private_tmp" in protections and not _private_tmp():
        os._exit(126)
    if "unprivileged_user" in protections:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _limits(cpu_seconds)


def run_python(code: str, timeout_s: float, sandbox: Sandbox) -> RunResult:
    """Execute `code`; blocking (call it from a worker thread)."""
    protections = list(sandbox.protections)
    workdir = tempfile.mkdtemp(prefix="run-", dir=sandbox.workdir_base)
    try:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(code)
        if "unprivileged_user" in protections:
            os.chown(workdir, NOBODY, NOBODY)
            os.chown(script, NOBODY, NOBODY)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"}
        started = time.monotonic()
        proc = subprocess.Popen(
            [sandbox.python, "-I", "-S", "-B", "main.py"],  # relative: cwd survives the private /tmp
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
            preexec_fn=lambda: _child_setup(int(timeout_s) + 1, protections),
        )  # fmt: skip
        out, err, timed_out = _collect(proc, started + timeout_s)
        code_ = proc.wait()
        return _result(code_, timed_out, started, out, err, protections)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _collect(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytearray, bytearray, bool]:
    """Read both pipes until EOF or the deadline, keeping at most MAX_OUTPUT_BYTES (+1 to detect more)."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    buffers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    selector = selectors.DefaultSelector()
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    timed_out = False
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in selector.select(timeout=min(remaining, 0.5)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            buffer = buffers[key.fd]
            if len(buffer) <= MAX_OUTPUT_BYTES:
                buffer.extend(chunk[: MAX_OUTPUT_BYTES + 1 - len(buffer)])
    _kill_group(proc)
    selector.close()
    return out, err, timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole session (it may have forked), whether or not it already exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _result(
    code: int, timed_out: bool, started: float, out: bytearray, err: bytearray, protections: list[str]
) -> RunResult:
    signal_name = None
    if code < 0:
        with contextlib.suppress(ValueError):
            signal_name = signal.Signals(-code).name
    return RunResult(
        exit_code=code,
        timed_out=timed_out,
        killed_signal=signal_name,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        stdout=out[:MAX_OUTPUT_BYTES].decode("utf-8", "replace"),
        stderr=err[:MAX_OUTPUT_BYTES].decode("utf-8", "replace"),
        stdout_truncated=len(out) > MAX_OUTPUT_BYTES,
        stderr_truncated=len(err) > MAX_OUTPUT_BYTES,
        protections=list(protections),
    )
