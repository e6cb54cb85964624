"""Run untrusted Python with the strongest isolation this machine allows, and say exactly what holds.

Two mechanisms, chosen once at start by `probe_sandbox` (which really runs `print(1)` in the first):

- **namespaces** (Linux with unprivileged user namespaces, any server uid): `jail.py` puts each run in
  its own user, PID, mount, network, IPC and UTS namespace, on a new root holding only the system
  directories (read-only), a fresh /proc, private tmpfs scratch dirs and the run's directory. See
  `jail.py` for the invariants. Chosen by measurement (bench/bench_sandbox.py, 2 cores): `print(1)` p50
  36.5 ms against 14.0 ms for the process-group sandbox it replaces on an idle machine (45-92 vs 20-33 ms
  at load 4.5-5); the 22 ms are the jail's own interpreter start (7 ms), its ctypes import (6 ms) and
  the namespaces and new root (4 ms). A 1 s CPU loop costs the same (p50 1045 vs 1027 ms).
  The alternative that would also hold on macOS, Pyodide 314.0.8 under Node.js 20, spent 4.5-9.8 s
  loading its WebAssembly interpreter per fresh run (what keeps runs apart; measured at load 4.5-5) and
  ran a CPU-bound loop 2-4x slower than CPython. bubblewrap would give the same kernel isolation,
  but as a system package many machines lack; these few syscalls need nothing installed.
- **basic** (macOS, kernels without user namespaces): a fresh interpreter, an empty environment,
  rlimits, a process group killed at the timeout; when the server runs as root also user `nobody`, a
  network namespace and a private /tmp. Some promises cannot be kept there; `Sandbox.not_kept()` names
  them, the tool description and `doctor` repeat them, and strict mode (`CODE_EXEC_STRICT=1`) refuses
  to run code at all.

Invariants, both mechanisms: the code never gets this server's environment (no keys); output is capped;
every run gets a fresh directory, removed afterwards; each result lists the protections in force.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from tool_servers.code_exec import basic
from tool_servers.code_exec.basic import NOBODY

JAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")
MAX_OUTPUT_BYTES = 64 * 1024
MEMORY_BYTES = 512 * 1024 * 1024
MAX_PROCESSES = 64
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_OPEN_FILES = 64
SCRATCH_BYTES = 16 * 1024 * 1024  # each private tmpfs (/tmp, /var/tmp, /dev/shm, /run/lock)
WORKDIR_BYTES = 64 * 1024 * 1024  # the run's own directory (/sandbox), a tmpfs in the namespace sandbox
STOP_GRACE_S = 5.0
# Bound read-only into the run's root; everything else on the host is absent.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
ALWAYS = ("empty_env", "isolated_interpreter", "temp_dir", "rlimits")
NAMESPACE_PROTECTIONS = ("user_namespace", "pid_namespace", "mount_namespace", "network_namespace",
                         "ipc_namespace", "uts_namespace", "private_tmp")  # fmt: skip
# What the tool promises, and the sets of protections (any one set suffices) that keep each promise.
PROMISES: tuple[tuple[str, tuple[frozenset[str], ...]], ...] = (
    ("no environment variable of the host or of this server is visible, not even via /proc",
     (frozenset({"empty_env", "pid_namespace"}), frozenset({"empty_env", "unprivileged_user"}))),
    ("no network connection, not even to loopback", (frozenset({"network_namespace"}),)),
    ("no other process can be seen or signalled", (frozenset({"pid_namespace"}),)),
    ("the host's files (other than the system directories) are invisible and nothing outside the run's "
     "directory is writable", (frozenset({"mount_namespace"}),)),
    ("every process the code starts ends with the call, also if this server dies",
     (frozenset({"pid_namespace"}),)),
)  # fmt: skip


class SandboxError(RuntimeError):
    """The sandbox could not be set up for a run; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """How code runs here: the mechanism, the interpreter, the protections in force, and strictness."""

    python: str
    protections: tuple[str, ...]
    mechanism: str = "basic"  # or "namespaces"
    read_only: tuple[str, ...] = ()
    workdir_base: str | None = None
    strict: bool = False
    why_not_namespaces: str | None = None

    def kept(self) -> list[str]:
        have = set(self.protections)
        return [text for text, ways in PROMISES if any(way <= have for way in ways)]

    def not_kept(self) -> list[str]:
        kept = self.kept()
        return [text for text, _ in PROMISES if text not in kept]

    def refusal(self) -> str | None:
        """Why a run must be refused (strict mode and a promise this machine cannot keep), else None."""
        if not self.strict or not self.not_kept():
            return None
        return (f"refused: strict mode (CODE_EXEC_STRICT=1) is on and this machine cannot guarantee: "
                f"{'; '.join(self.not_kept())} ({self.why_not_namespaces})")  # fmt: skip

    def describe(self) -> str:
        """One paragraph for the tool description and `doctor`: what holds here, and what does not."""
        text = f"Isolation here ({self.mechanism}): {'; '.join(self.kept()) or 'only the basics'}."
        missing = self.not_kept()
        if missing:
            text += f" NOT guaranteed on this machine ({self.why_not_namespaces}): {'; '.join(missing)}."
            if self.strict:
                text += " Strict mode is on, so code is refused."
        return text


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


def probe_sandbox(env: dict[str, str] | None = None) -> Sandbox:
    """Pick the mechanism: namespaces if a real test run succeeds in them (unless `CODE_EXEC_SANDBOX=basic`
    asks otherwise), else the basic one. `CODE_EXEC_STRICT=1` makes a sandbox that cannot keep every
    promise refuse to run code; `CODE_EXEC_PYTHON` names the interpreter for the code."""
    env = dict(os.environ) if env is None else env
    strict = env.get("CODE_EXEC_STRICT", "").lower() in ("1", "true", "yes")
    own = getattr(sys, "_base_executable", sys.executable)  # the real interpreter behind a virtualenv
    pythons = [env.get("CODE_EXEC_PYTHON") or own, "/usr/bin/python3", "/usr/local/bin/python3"]
    reason = f"{sys.platform} has no Linux namespaces"
    if env.get("CODE_EXEC_SANDBOX") == "basic":
        reason = "CODE_EXEC_SANDBOX=basic asked for the basic sandbox"
    elif sys.platform.startswith("linux"):
        found = _namespaces(pythons, strict)
        if isinstance(found, Sandbox):
            return found
        reason = found
    python, protections, base = basic.probe(pythons)
    return Sandbox(python, (*ALWAYS, *protections), "basic", (), base, strict, reason)


def _namespaces(pythons: list[str], strict: bool) -> Sandbox | str:
    """A namespace sandbox that ran `print(1)`, or why none could."""
    usable = [p for p in pythons if p and os.path.exists(p) and (os.geteuid() != 0 or basic.nobody_can_run(p))]
    if not usable:
        return "no Python interpreter the sandbox user can run"
    python = os.path.realpath(usable[0])
    extra = _interpreter_dirs(python)
    protections = (*ALWAYS, *NAMESPACE_PROTECTIONS) + (("unprivileged_user",) if os.geteuid() == 0 else ())
    sandbox = Sandbox(python, protections, "namespaces", SYSTEM_DIRS + extra, None, strict)
    try:
        trial = run_python("print(1)", 10.0, sandbox)
    except (SandboxError, OSError) as exc:
        return f"namespaces unavailable: {exc}"
    if trial.stdout != "1\n":
        return f"namespaces unavailable: a test run printed {trial.stdout!r}, stderr {trial.stderr[-300:]!r}"
    return sandbox


def _interpreter_dirs(python: str) -> tuple[str, ...]:
    """The interpreter's own installation, when it lives outside the system directories (e.g. pyenv)."""
    question = "import sys; print(sys.base_prefix); print(sys.base_exec_prefix)"
    asked = subprocess.run([python, "-I", "-S", "-c", question], capture_output=True, text=True, timeout=30, env={})
    dirs = {os.path.dirname(os.path.dirname(python)), *asked.stdout.split()}
    inside = lambda d: any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS)  # noqa: E731
    return tuple(sorted(d for d in dirs if d and not inside(d)))


def run_python(code: str, timeout_s: float, sandbox: Sandbox) -> RunResult:
    """Execute `code`; blocking (call it from a worker thread). Raises SandboxError if setup fails."""
    if sandbox.mechanism == "namespaces":
        return _run_in_namespaces(code, timeout_s, sandbox)
    run_dir = tempfile.mkdtemp(prefix="run-", dir=sandbox.workdir_base)
    try:
        script = os.path.join(run_dir, "main.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(code)
        if os.geteuid() == 0:  # the code runs as nobody: its directory must be its own
            for path in (run_dir, script):
                os.chown(path, NOBODY, NOBODY)
        started = time.monotonic()
        proc = basic.start(sandbox.python, run_dir, int(timeout_s) + 1, sandbox.protections, _limits())
        out, err, timed_out = _collect(proc, started + timeout_s)
        basic.kill_group(proc)
        return _result(proc.wait(), timed_out, started, out, err, sandbox.protections)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _limits() -> dict[str, int]:
    return {"memory_bytes": MEMORY_BYTES, "file_bytes": MAX_FILE_BYTES, "open_files": MAX_OPEN_FILES,
            "processes": MAX_PROCESSES}  # fmt: skip


def _run_in_namespaces(code: str, timeout_s: float, sandbox: Sandbox) -> RunResult:
    """The code goes to the jail as an unnamed file (no path on the host, nothing left if we are killed)."""
    spec = {"python": sandbox.python, "server_pid": os.getpid(), "cpu_seconds": int(timeout_s) + 1,
            "scratch_bytes": SCRATCH_BYTES, "workdir_bytes": WORKDIR_BYTES, **_limits()}  # fmt: skip
    status_r, status_w = os.pipe()
    started = time.monotonic()
    try:
        with tempfile.TemporaryFile() as source:
            source.write(code.encode("utf-8", "surrogatepass"))  # a lone surrogate: the interpreter says so
            source.seek(0)
            fds = {"status_fd": status_w, "code_fd": source.fileno()}
            args = [f"{key}={value}" for key, value in {**spec, **fds}.items()]
            proc = subprocess.Popen(
                [sandbox.python, "-I", "-S", "-B", JAIL, *args, *(f"read_only={p}" for p in sandbox.read_only)],
                cwd="/", env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=tuple(fds.values()), start_new_session=True,
            )  # fmt: skip
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    with os.fdopen(status_r, "rb") as status:
        out, err, timed_out = _collect(proc, started + timeout_s)
        _stop(proc)
        exit_code = proc.wait()
        problem = status.read().decode(errors="replace").strip()
    if problem:
        raise SandboxError(problem)
    return _result(exit_code, timed_out, started, out, err, sandbox.protections)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask the keeper to end the run (it returns once every process of the run is gone); force it if it hangs."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()  # the init's death signal still ends the run


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
    selector.close()
    return out, err, timed_out


def _result(
    code: int, timed_out: bool, started: float, out: bytearray, err: bytearray, protections: tuple[str, ...]
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
