"""`model-router serve` as a real stdio subprocess, driven by the SDK client and by the MCP Inspector CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tests.helpers import console_script, inspector

pytestmark = pytest.mark.slow


@pytest.mark.anyio
async def test_console_script_serves_route_task_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=console_script(),
        args=["serve"],
        env={"MODEL_ROUTER_HOME": str(tmp_path), "ANTHROPIC_API_KEY": "test-key-123456"},
    )
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "route_task" in names
        result = await client.call_tool(
            "route_task",
            {
                "task": "Write a complete Python implementation of a distributed rate limiter using Redis, "
                "with sliding window algorithm and comprehensive unit tests."
            },
        )
        assert not result.is_error
        assert result.structured_content["primary_model"] == "anthropic/claude-sonnet-5-5"
        bad = await client.call_tool("route_task", {"task": "   "})
        assert bad.is_error
        again = await client.call_tool("route_task", {"task": "What is 2+2?"})
        assert not again.is_error


def _run_inspector(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return inspector(console_script(), "serve", *args, server_env={"MODEL_ROUTER_HOME": str(home)})


def _route_task(*tool_args: str, home: Path) -> subprocess.CompletedProcess[str]:
    arguments = [part for arg in tool_args for part in ("--tool-arg", arg)]
    return _run_inspector("--method", "tools/call", "--tool-name", "route_task", *arguments, home=home)


def test_inspector_cli_lists_tools_and_routes(tmp_path: Path) -> None:
    assert shutil.which("node"), "node is required for the MCP Inspector"
    listed = _run_inspector("--method", "tools/list", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert tools["route_task"]["annotations"]["readOnlyHint"] is True

    called = _route_task('task="What is the capital of France?"', home=tmp_path)
    assert called.returncode == 0, called.stderr
    payload = json.loads(called.stdout)
    assert payload["structuredContent"]["category"] == "qa_retrieval"
    assert (tmp_path / "router.sqlite3").exists()  # the decision went to the data dir given with -e

    refused = _route_task('task="hi"', 'cost_preference="free"', home=tmp_path)
    assert refused.returncode == 5, (refused.returncode, refused.stdout, refused.stderr)
