"""The sub-servers' fork server: real forks of a probe MCP server, its protocol, and the hub's fallbacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from server.domain.config import ToolServerConfig, load_config
from server.tools.forked_children import ForkServer, ForkServerGone
from server.tools.hub import open_tool_hub
from server.tools.launch import child_environment, full_environment, prelaunch
from tests.procfs import alive
from tool_servers.code_exec.sandbox import probe_sandbox

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the fork server needs Linux pidfds"),
]

PROBE = ToolServerConfig(args=("-m", "tests.fixtures.probe_server"), timeout_s=2.0, pass_env=("VISIBLE_VAR",))
ENTRIES = {"tests.fixtures.probe_server": "tests.fixtures.probe_server:main"}
SECRET = "sk-secret-forkserver-000000"


@pytest.fixture
def forkserver(monkeypatch):
    # A key in the host's own environment: the fork server must not inherit it, nor hand it to children.
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    started = ForkServer.start(ENTRIES)
    assert started is not None
    yield started
    started.close()


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def _start_environment(pid: int) -> bytes:
    """What other processes can read of a process's environment: the one it was started (exec'd) with."""
    return Path(f"/proc/{pid}/environ").read_bytes()


async def test_a_forked_child_has_exactly_the_spawned_environment_and_no_key(tmp_path, forkserver) -> None:
    env = {"VISIBLE_VAR": "yes", "OPENAI_API_KEY": SECRET}
    async with open_tool_hub({"probe": PROBE}, env, tmp_path, forkserver=forkserver) as hub:
        seen = set((await hub.call_tool("environment", {})).text.split(","))
        pid = int((await hub.call_tool("pid", {})).text)
        assert seen == set(full_environment(child_environment(PROBE, env, tmp_path)))
        assert "VISIBLE_VAR" in seen and "OPENAI_API_KEY" not in seen
        assert SECRET.encode() not in _start_environment(pid)  # inherited from the fork server
        assert os.getpgid(pid) == pid  # its own session and process group, as a spawned server has
    assert not alive(pid)  # leaving the hub stopped it


async def test_a_prelaunched_child_is_taken_by_the_hub(tmp_path, forkserver) -> None:
    prelaunch(forkserver, {"probe": PROBE}, {"VISIBLE_VAR": "yes"}, tmp_path)
    assert forkserver.unclaimed == 1
    async with open_tool_hub({"probe": PROBE}, {"VISIBLE_VAR": "yes"}, tmp_path, forkserver=forkserver) as hub:
        assert (await hub.call_tool("echo", {"text": "hi"})).text == "hi"
        assert forkserver.unclaimed == 0


async def test_a_child_nobody_took_exits_when_the_fork_server_closes(tmp_path, forkserver) -> None:
    forkserver.prelaunch("tests.fixtures.probe_server", {"WANTED": "a"})
    other = await forkserver.launch("tests.fixtures.probe_server", {"WANTED": "b"}, 10)  # reads both replies
    spare = forkserver._spares[0].child
    assert spare is not None and alive(spare.pid)
    forkserver.close()
    assert _gone_within(spare.pid, 10)
    await other.stop()
    assert not alive(other.pid)


async def test_a_cancelled_launch_leaves_the_fork_server_usable(forkserver) -> None:
    with anyio.move_on_after(0):
        await forkserver.launch("tests.fixtures.probe_server", {}, 10)
    child = await forkserver.launch("tests.fixtures.probe_server", {}, 10)
    assert forkserver.failed is None and alive(child.pid)
    await child.stop()


async def test_an_unknown_entry_is_refused_without_failing_the_fork_server(forkserver) -> None:
    with pytest.raises(ForkServerGone, match="no entry"):
        await forkserver.launch("os", {}, 10)
    assert forkserver.can_run("tests.fixtures.probe_server")


async def test_when_the_fork_server_dies_the_hub_spawns_instead(tmp_path, forkserver) -> None:
    async with open_tool_hub({"probe": PROBE}, {}, tmp_path, forkserver=forkserver) as hub:
        first = (await hub.call_tool("pid", {})).text
        forkserver._process.kill()
        forkserver._process.wait()
        crashed = await hub.call_tool("crash", {})  # the restart after it cannot be forked
        assert crashed.is_error
        after = await hub.call_tool("pid", {})
        assert not after.is_error and after.text != first
        assert forkserver.failed is not None
        assert hub.status()["probe"]["running"] is True


def test_the_fork_server_answers_a_malformed_request_with_an_error_and_keeps_serving() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = subprocess.Popen(
        [sys.executable, "-m", "tool_servers.forkserver", str(theirs.fileno()), f"probe={ENTRIES[PROBE.args[1]]}"],
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    pipes = [os.pipe(), os.pipe()]
    try:
        ours.settimeout(30)
        socket.send_fds(ours, [b"{not json"], [pipes[0][0], pipes[1][1]])
        reply, fds, _, _ = socket.recv_fds(ours, 65536, 1)
        assert "error" in json.loads(reply) and fds == []
        socket.send_fds(ours, [json.dumps({"name": "probe", "env": {}}).encode()], [pipes[0][0]])  # one fd short
        reply, fds, _, _ = socket.recv_fds(ours, 65536, 1)
        assert "expected the child's stdin and stdout" in json.loads(reply)["error"]
        socket.send_fds(ours, [json.dumps({"name": "probe", "env": {}}).encode()], [pipes[0][0], pipes[1][1]])
        reply, fds, _, _ = socket.recv_fds(ours, 65536, 1)
        pid = json.loads(reply)["pid"]
        assert len(fds) == 1 and alive(pid)
        os.close(fds[0])
    finally:
        ours.close()  # the fork server exits on end-of-file
        assert process.wait(timeout=10) == 0
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)


async def test_the_code_sandbox_holds_in_a_forked_child(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    config = load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)})
    forkserver = ForkServer.start()
    assert forkserver is not None
    specs = {"code_exec": config.tool_servers["code_exec"]}
    try:
        async with open_tool_hub(specs, dict(os.environ), tmp_path, forkserver=forkserver) as hub:
            found = await hub.call_tool("execute_python", {"code": "import os\nprint(sorted(os.environ))"})
            ran = json.loads(found.text)
            assert ran["exit_code"] == 0 and "OPENAI_API_KEY" not in ran["stdout"]
            assert set(probe_sandbox().protections) <= set(ran["protections"])  # as strong as a spawned server's
            started = time.monotonic()
            looped = json.loads(
                (await hub.call_tool("execute_python", {"code": "while True: pass", "timeout_s": 2})).text
            )
            assert looped["timed_out"] and time.monotonic() - started < 6
            bomb = "import os\nwhile True:\n    os.fork()"
            forked = json.loads((await hub.call_tool("execute_python", {"code": bomb, "timeout_s": 3})).text)
            assert forked["exit_code"] != 0 or forked["timed_out"]
            assert forkserver.failed is None  # it really ran forked
    finally:
        forkserver.close()
