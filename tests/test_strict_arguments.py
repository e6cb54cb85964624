"""Strict tool arguments over real stdio, on the host and each sub-server: no string or boolean coerced into an
integer, nothing coerced into a boolean, unknown arguments named; the tool does not run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tests.helpers import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

# server → [(tool, arguments, what the error must say)]
REFUSED: dict[str, list[tuple[str, dict[str, Any], list[str]]]] = {
    "host": [
        ("route_task", {"task": "What is 2+2?", "self_hosted_only": "yes"}, ["self_hosted_only must be true or false"]),
        ("route_task", {"task": "What is 2+2?", "self_hosted_only": 1}, ["self_hosted_only must be true or false"]),
        ("route_task", {"task": "What is 2+2?", "budget": 5, "model": "x"}, ["unknown arguments budget, model"]),
        ("complete", {"task": "What is 2+2?", "max_tokens": "100"}, ['max_tokens must be an integer, not "100"']),
        ("complete", {"task": "What is 2+2?", "max_tokens": True}, ["max_tokens must be an integer, not true"]),
    ],
    "memory": [
        ("memory_search", {"query": "milk", "top_k": "3"}, ["top_k must be an integer"]),
        ("memory_list", {"limit": True}, ["limit must be an integer, not true"]),
        ("memory_store", {"key": "k", "content": "c", "tags": ["x"]}, ["unknown argument tags", "accepted:"]),
    ],
    "web_search": [
        ("fetch_url", {"url": "http://example.org", "max_length": "100"}, ["max_length must be an integer"]),
        ("fetch_url", {"url": "http://example.org", "follow": True}, ["unknown argument follow"]),
    ],
    "code_exec": [
        ("execute_python", {"code": "print(1)", "timeout_s": "5"}, ['timeout_s must be an integer, not "5"']),
        ("execute_python", {"code": "print(1)", "timeout_s": True}, ["timeout_s must be an integer, not true"]),
        ("validate_python_syntax", {"code": "x = 1", "strict": "yes"}, ["unknown argument strict"]),
    ],
}
ACCEPTED = {
    "host": ("route_task", {"task": "What is 2+2?", "self_hosted_only": False}),
    "memory": ("memory_list", {"limit": 5}),
    "web_search": ("web_search", {"query": "x"}),  # not configured: a tool error, but not about arguments
    "code_exec": ("validate_python_syntax", {"code": "x = 1"}),
}


def _params(name: str, tmp: Path) -> StdioServerParameters:
    if name == "host":
        env = cli_env(tmp, ANTHROPIC_API_KEY="test-key-123456")
        return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)
    env = {"MEMORY_DB": str(tmp / "memory.db"), "PYTHONPATH": str(Path.cwd())}
    return StdioServerParameters(command=sys.executable, args=["-m", f"tool_servers.{name}"], env=env)


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.parametrize("name", list(REFUSED))
async def test_wrong_types_and_unknown_arguments_are_refused_by_name(tmp_path: Path, name: str) -> None:
    async with Client(_params(name, tmp_path), mode="legacy") as client:
        outcomes = [(await client.call_tool(tool, arguments), says) for tool, arguments, says in REFUSED[name]]
        tool, arguments = ACCEPTED[name]
        accepted = await client.call_tool(tool, arguments)
    for result, says in outcomes:
        assert result.is_error, _text(result)
        assert "was not run" in _text(result) and all(part in _text(result) for part in says), _text(result)
    assert "was not run" not in _text(accepted), _text(accepted)
