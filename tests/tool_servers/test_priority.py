"""Sub-servers started by the host lower their own CPU priority before importing the SDK, when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import wait_until

PROBE = (
    "from tool_servers._priority import lower_priority_if_asked as lower; import os; "
    "before = os.nice(0); lower(); print(os.nice(0) - before)"
)


@pytest.mark.parametrize(("value", "expected"), [("10", 10), ("", 0), ("fast", 0), ("99", 0), ("-5", 0)])
def test_the_priority_drops_only_by_a_valid_increment(value: str, expected: int) -> None:
    env = {**os.environ, "TOOL_SERVER_NICE": value}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == expected


@pytest.mark.parametrize("name", ["web_search", "code_exec", "memory"])
def test_a_sub_server_runs_at_the_priority_it_was_asked_for_while_it_starts(name: str, tmp_path: Path) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    env = {**os.environ, "TOOL_SERVER_NICE": "7", "MODEL_ROUTER_HOME": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-m", f"tool_servers.{name}"], stdin=subprocess.PIPE, env=env)
    try:
        # Lowered long before the SDK has finished importing; the bound only keeps a broken run from hanging.
        wait_until(lambda: os.getpriority(os.PRIO_PROCESS, child.pid) != base, within=10, what="the priority change")
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == base + 7
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
