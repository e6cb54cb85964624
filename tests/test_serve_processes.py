"""`serve`'s process tree: three spawned sub-servers, keyless, niced, and all gone when the host's client
hangs up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.procfs import alive

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")]

SECRET = "sk-secret-serve-tree-000000"
SUB_SERVERS = {"tool_servers.web_search", "tool_servers.code_exec", "tool_servers.memory"}


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _sub_server_of(pid: int) -> str:
    """Which sub-server a process runs: the `-m` module it was spawned with."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return argv[argv.index(b"-m") + 1].decode() if b"-m" in argv else ""


def test_serve_runs_three_keyless_lower_priority_sub_servers_and_leaves_none_behind(tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_ROUTER_HOME": str(tmp_path), "OPENAI_API_KEY": SECRET}
    host = subprocess.Popen(
        [sys.executable, "-m", "server", "--log-level", "INFO", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert host.stdin and host.stdout and host.stderr
    ready = threading.Event()
    log: list[str] = []

    def watch() -> None:
        assert host.stderr
        for line in iter(host.stderr.readline, b""):
            log.append(line.decode(errors="replace"))
            if sum("tool server" in entry and " ready: " in entry for entry in log) == 3:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
             "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}  # fmt: skip
    host.stdin.write((json.dumps(hello) + "\n").encode())
    host.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    host.stdin.flush()
    tree: list[int] = []
    try:
        assert json.loads(host.stdout.readline())["id"] == 1
        assert ready.wait(60), "".join(log)
        direct = _children(host.pid)
        tree = direct + [grandchild for pid in direct for grandchild in _children(pid)]
        servers = [pid for pid in direct if _sub_server_of(pid) in SUB_SERVERS]
        assert sorted(map(_sub_server_of, servers)) == sorted(SUB_SERVERS), tree
        base = os.getpriority(os.PRIO_PROCESS, host.pid)
        for pid in tree:
            assert SECRET.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        for pid in servers:
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(base + 10, 19)
    finally:
        host.stdin.close()  # the client hangs up
        code = host.wait(timeout=30)
    assert code == 0, "".join(log)
    wait_until(lambda: not any(alive(pid) for pid in tree), within=10, what="every process of the host's tree exiting")
