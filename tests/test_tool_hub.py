"""The host's tool hub against real stdio child processes (a probe MCP server)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from server.domain.config import ToolServerConfig
from server.tools.hub import open_tool_hub
from server.tools.launch import child_environment
from tests.helpers import wait_until_async
from tests.procfs import processes_with

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROBE = ToolServerConfig(args=("-m", "tests.fixtures.probe_server"), timeout_s=2.0, pass_env=("VISIBLE_VAR",))
BROKEN = ToolServerConfig(command=sys.executable, args=("-c", "import sys; sys.exit(2)"), timeout_s=2.0)
ENV = {"VISIBLE_VAR": "yes", "ANTHROPIC_API_KEY": "sk-ant-secret-000000", "OPENAI_API_KEY": "sk-secret-0000000"}


async def test_tools_are_listed_and_called(tmp_path) -> None:
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        names = {t.name for t in await hub.list_tools({"echo", "hang", "nothing"})}
        assert names == {"echo", "hang"}
        outcome = await hub.call_tool("echo", {"text": "hello"})
        assert (outcome.text, outcome.is_error) == ("hello", False)


async def test_child_sees_only_what_it_needs(tmp_path) -> None:
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        seen = (await hub.call_tool("environment", {})).text.split(",")
    assert "VISIBLE_VAR" in seen
    assert "ANTHROPIC_API_KEY" not in seen and "OPENAI_API_KEY" not in seen


def test_child_environment_is_explicit(tmp_path) -> None:
    spec = ToolServerConfig(pass_env=("BRAVE_API_KEY", "MODEL_ROUTER_HOME"), env={"EXTRA": "1"})
    env = {"BRAVE_API_KEY": "b", "OPENAI_API_KEY": "o"}
    assert child_environment(spec, env, tmp_path) == {"BRAVE_API_KEY": "b", "MODEL_ROUTER_HOME": str(tmp_path),
                                                       "TOOL_SERVER_NICE": "10", "EXTRA": "1"}  # fmt: skip


async def test_a_crashed_child_fails_the_call_cleanly_and_the_next_call_works(tmp_path) -> None:
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        before = (await hub.call_tool("pid", {})).text
        crashed = await hub.call_tool("crash", {})  # not marked idempotent, so not retried: reported, not raised
        assert crashed.is_error and "crash" in crashed.text
        after = await hub.call_tool("pid", {})
        assert not after.is_error and after.text != before


async def test_a_hung_child_times_out_and_the_hub_stays_responsive(tmp_path) -> None:
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        with anyio.fail_after(10):
            hung = await hub.call_tool("hang", {"seconds": 30})
        assert hung.is_error and "timed out" in hung.text
        assert (await hub.call_tool("echo", {"text": "still here"})).text == "still here"


async def test_a_broken_command_does_not_take_the_host_down(tmp_path) -> None:
    async with open_tool_hub({"broken": BROKEN, "probe": PROBE}, ENV, tmp_path) as hub:
        await hub.start()  # wait until each has started or failed
        assert hub.status()["broken"]["running"] is False
        assert hub.status()["broken"]["error"]
        assert (await hub.call_tool("echo", {"text": "ok"})).text == "ok"
        assert (await hub.call_tool("no_such_tool", {})).is_error


async def test_all_sub_servers_start_in_the_background_without_anyone_asking(tmp_path) -> None:
    specs = {"first": PROBE, "second": PROBE}
    async with open_tool_hub(specs, ENV, tmp_path) as hub:
        for server in hub.servers:  # waiting starts nothing: only `open_tool_hub` launched them
            assert await server.wait_ready(30), hub.status()


async def test_a_call_waits_for_its_own_sub_server_only(tmp_path) -> None:
    # The other child never answers `initialize`: the call must not wait for it to settle.
    silent = ToolServerConfig(command=sys.executable, args=("-c", "import time; time.sleep(600)"), timeout_s=2.0)
    async with open_tool_hub({"silent": silent, "probe": PROBE}, ENV, tmp_path) as hub:
        outcome = await hub.call_tool("echo", {"text": "mine"})
        assert (outcome.text, outcome.is_error) == ("mine", False)
        assert hub.status()["silent"] == {"running": False, "tools": [], "error": None}  # still starting
        assert {t.name for t in await hub.list_tools({"echo"})} == {"echo"}


async def test_a_tool_whose_sub_server_cannot_start_gets_an_error_naming_it_and_why(tmp_path) -> None:
    async with open_tool_hub({"broken": BROKEN}, ENV, tmp_path) as hub:
        assert await hub.list_tools({"execute_python"}) == []
        outcome = await hub.call_tool("execute_python", {"code": "1"})
    assert outcome.is_error
    assert "broken" in outcome.text and "could not start" in outcome.text
    assert "Connection closed" in outcome.text  # why, as the SDK saw it: the child exited


def _runs(path: Path) -> list[int]:
    """The pids that started a run of a `mark_and_wait` tool, one per run."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


async def _kill_once_running(path: Path) -> None:
    """SIGKILL the child once it has started the run (the call was delivered)."""
    await wait_until_async(lambda: _runs(path), within=30, what="the tool call reaching the child")
    [child] = _runs(path)
    os.kill(child, signal.SIGKILL)


async def test_a_call_not_marked_idempotent_is_not_repeated_when_its_child_dies_mid_call(tmp_path) -> None:
    runs = tmp_path / "runs"
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_kill_once_running, runs)
            outcome = await hub.call_tool("mark_and_wait", {"path": str(runs)})
        assert outcome.is_error
        assert "may or may not have taken effect" in outcome.text and "not repeated" in outcome.text
        assert "not marked idempotent" in outcome.text
        assert len(_runs(runs)) == 1  # it ran once: the hub did not send it to the restarted child
        after = await hub.call_tool("pid", {})  # the child was restarted for later calls
        assert not after.is_error and int(after.text) != _runs(runs)[0]


async def test_an_idempotent_call_is_retried_once_on_a_restarted_child(tmp_path) -> None:
    runs = tmp_path / "runs"
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub, anyio.create_task_group() as tg:
        tg.start_soon(_kill_once_running, runs)
        outcome = await hub.call_tool("mark_and_wait_idempotent", {"path": str(runs)})
    assert (outcome.text, outcome.is_error) == ("ran 2 times", False)
    first, second = _runs(runs)
    assert first != second  # the retry ran on a new child


async def test_a_call_not_marked_idempotent_goes_to_a_fresh_child_when_the_old_one_died_idle(tmp_path) -> None:
    runs = tmp_path / "runs"
    async with open_tool_hub({"probe": PROBE}, ENV, tmp_path) as hub:
        idle = int((await hub.call_tool("pid", {})).text)
        os.kill(idle, signal.SIGKILL)  # dies between calls: the next call was never delivered to it
        runs.write_text("0\n")  # so the run does not block
        outcome = await hub.call_tool("mark_and_wait", {"path": str(runs)})
    assert (outcome.text, outcome.is_error) == ("ran 2 times", False)
    assert _runs(runs)[1] != idle


def _children_running(module: str) -> list[int]:
    """This process's children spawned as `python -m module`."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if module.encode() in argv:
                found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
async def test_execute_python_is_not_run_twice_when_code_exec_dies_mid_call(tmp_path) -> None:
    marker = f"hub-mid-call-{os.getpid()}-{tmp_path.name}"
    code = (f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', "
            f"{marker!r}])\ntime.sleep(60)\n")  # fmt: skip
    spec = ToolServerConfig(args=("-m", "tool_servers.code_exec"), timeout_s=75.0)
    async with open_tool_hub({"code_exec": spec}, ENV, tmp_path) as hub:
        [server] = hub.servers
        assert await server.wait_ready(30), hub.status()
        assert "execute_python" not in server.repeatable  # read from its tools/list annotations
        assert "validate_python_syntax" in server.repeatable

        async def kill_once_running() -> None:
            await wait_until_async(lambda: processes_with(marker), within=30, what="the code starting its process")
            [child] = _children_running("tool_servers.code_exec")
            os.kill(child, signal.SIGKILL)

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_once_running)
            outcome = await hub.call_tool("execute_python", {"code": code, "timeout_s": 60})
        assert outcome.is_error and "may or may not have taken effect" in outcome.text, outcome.text
        assert "not repeated" in outcome.text
        again = await hub.call_tool("execute_python", {"code": "print(6 * 7)"})  # on a restarted code_exec
        assert not again.is_error and '"stdout":"42\\n"' in again.text.replace(" ", ""), again.text
