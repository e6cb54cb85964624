"""The host MCP server in-process through the SDK's Client: tools, schema, resource, bad input."""

from __future__ import annotations

import json

import pytest
from mcp.client import Client

from server.domain.registry import Registry
from server.mcp.app import build_server
from server.routing.router import Router

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(registry_all_keys: Registry):
    return build_server(Router(registry_all_keys))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_route_task_is_listed_read_only_with_bounded_inputs(server, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["route_task"]
    assert tool.annotations is not None and tool.annotations.read_only_hint is True
    props = tool.input_schema["properties"]
    assert props["task"]["maxLength"] == 1_000_000
    assert "description" in props["task"]
    assert set(props["cost_preference"]["enum"]) == {"cheapest", "balanced", "best_quality"}
    assert tool.output_schema is not None
    for field in ["category", "primary_model", "fallback_models", "estimated_cost_usd", "reasons"]:
        assert field in tool.output_schema["properties"]


async def test_route_task_returns_structured_route(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("route_task", {"task": "What is the capital of France?"})
    assert not result.is_error
    data = result.structured_content
    assert data["category"] == "qa_retrieval"
    assert data["complexity"] == 1
    assert isinstance(data["fallback_models"], list)
    assert data["estimated_cost_usd"] < 0.0001
    assert data["reasons"]


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"task": ""}, "task"),
        ({"task": "   \n"}, "task is empty"),
        ({"task": "x" * 2_000_000}, "1000000"),
        ({"task": "hi", "cost_preference": "free"}, "cost_preference"),
        ({"task": 42}, "task"),
        ({"task": ["a"]}, "task"),
        ({"task": "hi", "self_hosted_only": "maybe"}, "self_hosted_only"),
        ({"task": "hi", "force_model": "openai/gpt5-ultra"}, "not in the registry"),
        ({}, "task"),
    ],
)
async def test_bad_input_is_a_clear_tool_error_and_the_server_keeps_serving(server, arguments, needle) -> None:
    async with Client(server) as client:
        bad = await client.call_tool("route_task", arguments)
        assert bad.is_error
        text = " ".join(c.text for c in bad.content if hasattr(c, "text"))
        assert needle in text, text
        assert "Traceback" not in text
        good = await client.call_tool("route_task", {"task": "Translate 'cat' to French"})
        assert not good.is_error


async def test_models_resource_lists_the_registry(server) -> None:
    async with Client(server) as client:
        result = await client.read_resource("router://models")
    rows = json.loads(result.contents[0].text)
    ids = {row["id"] for row in rows}
    assert {"openai/o3", "local/gemma-3-270m", "moonshot/kimi-k2"} <= ids
    assert all({"tier", "available", "input_price_per_million"} <= row.keys() for row in rows)


def _text(result) -> str:
    return " ".join(c.text for c in result.content if hasattr(c, "text"))


@pytest.mark.parametrize("since", ["99999999d", "last tuesday"])
async def test_an_unreadable_report_window_says_how_to_write_one(server, since: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("cost_report", {"since": since})
    text = _text(result)
    assert result.is_error
    assert since in text and "ISO date" in text and "span" in text, text  # the value, and the forms that work
    assert text.strip() != "Error executing tool cost_report" and "Traceback" not in text


async def test_a_whitespace_only_task_is_a_readable_tool_error(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("route_task", {"task": " \t\n  "})
    text = _text(result)
    assert result.is_error and "task is empty" in text, text
    assert text.strip() != "Error executing tool route_task" and "Traceback" not in text
