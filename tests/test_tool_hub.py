"""The host's tool hub against real stdio child processes (a probe MCP server)."""

from __future__ import annotations

import sys

import anyio
import pytest

from server.domain.config import ToolServerConfig
from server.tools.hub import open_tool_hub
from server.tools.launch import child_environment

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
        crashed = await hub.call_tool("crash", {})  # dies again on the retry: reported, not raised
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
