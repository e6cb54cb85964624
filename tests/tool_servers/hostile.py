"""Run the code runner as an unprivileged user, as a desktop MCP host would start it.

As root the runner is started under `setpriv` as `nobody` (65534), from a world-readable copy of the
sandbox modules (the checkout may sit under a 0700 /root); otherwise it runs as the test's own user. The
runner is `probe_sandbox` + `run_python` in a worker thread, exactly as the server calls it, and prints
one JSON line: the mechanism, the promises it claims and does not claim, and the run's result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import tool_servers

NOBODY = 65534
AS_ROOT = os.geteuid() == 0
RUNNER_UID = NOBODY if AS_ROOT else os.geteuid()
SERVER_SECRET = "sk-code-exec-server-secret-4711"
_MODULES = ("__init__.py", "code_exec/__init__.py", "code_exec/sandbox.py", "code_exec/basic.py", "code_exec/jail.py")
_DRIVER = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from tool_servers.code_exec.sandbox import probe_sandbox, run_python
request = json.loads(open(sys.argv[2]).read())
sandbox = probe_sandbox()
out = {"mechanism": sandbox.mechanism, "kept": sandbox.kept(), "not_kept": sandbox.not_kept()}
def call():
    try:
        out["result"] = run_python(request["code"], request["timeout_s"], sandbox).__dict__
    except Exception as exc:
        out["error"] = repr(exc)
worker = threading.Thread(target=call)  # as the server does: the run belongs to a worker thread
worker.start()
worker.join()
print(json.dumps(out), flush=True)
"""


def world_readable_copy() -> Path:
    """The sandbox modules (standard library only) and the runner, where `nobody` can read them."""
    base = Path(tempfile.mkdtemp(prefix="code-exec-runner-"))
    source = Path(tool_servers.__file__).parent
    for name in _MODULES:
        (base / "tool_servers" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, base / "tool_servers" / name)
    (base / "driver.py").write_text(_DRIVER)
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return base


def runner_python() -> str:
    """An interpreter the runner's user can execute (a virtualenv under /root is not one for nobody)."""
    for candidate in (shutil.which("python3") or "", "/usr/bin/python3", "/usr/local/bin/python3"):
        if candidate and subprocess.run(_as_runner([candidate, "-c", "pass"]), capture_output=True).returncode == 0:
            return candidate
    raise RuntimeError("no Python that the unprivileged user can run")


def _as_runner(command: list[str]) -> list[str]:
    if AS_ROOT:
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return command


class Runner:
    """Starts runs as the unprivileged user; `start` returns the process, `finish` its JSON answer."""

    def __init__(self) -> None:
        self.base = world_readable_copy()
        self.python = runner_python()

    def start(self, code: str, timeout_s: float = 10) -> subprocess.Popen[str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OPENAI_API_KEY": SERVER_SECRET}
        # The code goes in a file, not argv: the tests find the run's processes by markers in command lines.
        request = self.base / f"request-{uuid.uuid4().hex}.json"
        request.write_text(json.dumps({"code": code, "timeout_s": timeout_s}))
        request.chmod(0o644)
        return subprocess.Popen(
            _as_runner([self.python, "-I", str(self.base / "driver.py"), str(self.base), str(request)]), env=env,
            cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def finish(self, proc: subprocess.Popen[str]) -> dict:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        answer = json.loads(stdout)
        assert "error" not in answer, answer["error"]
        return answer

    def run(self, code: str, timeout_s: float = 10) -> dict:
        return self.finish(self.start(code, timeout_s))

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def wait_until(condition: Callable[[], bool], deadline_s: float = 20.0) -> bool:
    """Poll `condition` until it holds or the deadline passes; the answer is whether it held."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
