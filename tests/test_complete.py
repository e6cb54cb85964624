"""`complete` through the MCP server (in-process SDK client) against fake provider APIs on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client

from server.domain.config import load_config
from server.domain.messages import ToolSpec
from server.domain.registry import Registry
from server.mcp.app import build_server
from server.routing.router import Router
from server.tools.toolbox import ToolOutcome
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import attempt_rows, host_server, wait_until_async

pytestmark = pytest.mark.anyio
CODING = "Write a complete Python implementation of a thread-safe LRU cache with unit tests and run them."


class Calculator:
    """Stands in for the code sub-server: evaluates the arithmetic it is given."""

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        spec = ToolSpec("execute_python", "Run Python code", {"type": "object", "properties": {"code": {}}})
        return [spec] if "execute_python" in names else []

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(str(eval(arguments["code"], {"__builtins__": {}})))  # test-only arithmetic


def _config(tmp_path: Path, fake: f.FakeProviders, timeout_s: float = 3.0, extra: str = "") -> Path:
    return f.write_config(tmp_path, fake, timeout_s=timeout_s, extra=extra)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ALL_KEYS.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def _server(config_path: Path, env: dict[str, str], local: bool = False):
    return host_server(config_path, env, toolbox=Calculator(), local=local)


async def _complete(server, **arguments: Any):
    async with Client(server) as client:
        return await client.call_tool("complete", arguments)


async def test_complete_returns_answer_route_tokens_and_exact_cost(tmp_path, fake, keys) -> None:
    fake.script("gpt-4.1", f.text("Paris.", prompt=1200, completion=10, cached=1000))
    server, config = _server(_config(tmp_path, fake), keys)
    result = await _complete(server, task="What is the capital of France?", force_model="openai/gpt-4.1")
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["response"] == "Paris." and data["model_used"] == "openai/gpt-4.1"
    assert (data["input_tokens"], data["cached_input_tokens"], data["output_tokens"]) == (1200, 1000, 10)
    # 200 uncached x $2 + 1000 cached x $0.50 + 10 out x $8, per 1M
    assert data["cost_usd"] == pytest.approx(0.00098, abs=1e-12)
    assert data["route"]["category"] == "qa_retrieval"
    assert attempt_rows(config)[0]["cost_pusd"] == 980_000_000


@pytest.mark.parametrize("model", ["openai/gpt-4.1", "anthropic/claude-sonnet-4"])
async def test_multi_round_tool_loop_on_each_wire_format(tmp_path, fake, keys, model: str) -> None:
    api = {"openai/gpt-4.1": "gpt-4.1", "anthropic/claude-sonnet-4": "claude-sonnet-4-20250514"}[model]
    fake.script(api, f.tool_calls(("execute_python", {"code": "6*7"})), f.tool_calls(("execute_python",
                {"code": "42+1"})), f.text("The answer is 43."))  # fmt: skip
    server, _ = _server(_config(tmp_path, fake), keys)
    result = await _complete(server, task=CODING, force_model=model)
    data = result.structured_content
    assert data["response"] == "The answer is 43."
    assert data["tools_called"] == ["execute_python", "execute_python"]
    bodies = [body for _, m, body, _ in fake.requests if m == api]
    assert len(bodies) == 3
    last = json.dumps(bodies[-1]["messages"])
    assert '"42"' in last and '"43"' in last  # both tool results went back to the model


@pytest.mark.parametrize(
    ("failure", "retried"),
    [(f.rate_limited("0"), True), (f.server_error(), True), (f.overloaded(), True), (f.hang(), True)],
)
async def test_transient_failures_move_to_the_next_model(tmp_path, fake, keys, failure, retried) -> None:
    server, _ = _server(_config(tmp_path, fake, timeout_s=1.0), keys)
    fake.script("claude-sonnet-5-5", failure, failure)
    with anyio.fail_after(30):
        result = await _complete(server, task=CODING)
    data = result.structured_content
    assert data["route"]["primary_model"] == "anthropic/claude-sonnet-5-5"
    assert data["model_used"] == data["route"]["fallback_models"][0]
    failed = [a for a in data["attempts"] if a["outcome"] == "error"]
    assert len(failed) == (2 if retried else 1)
    assert all(a["model"] == "anthropic/claude-sonnet-5-5" for a in failed)


async def test_context_too_long_skips_to_a_larger_window(tmp_path, fake, keys) -> None:
    server, _ = _server(_config(tmp_path, fake), keys)
    fake.script("claude-sonnet-5-5", f.context_too_long())
    result = await _complete(server, task=CODING)
    data = result.structured_content
    used = load_config(_config(tmp_path, fake), env=keys)
    window = {m.id: m.context_window for m in used.models}
    assert window[data["model_used"]] > window["anthropic/claude-sonnet-5-5"]


async def test_auth_failure_stops_and_names_the_variable(tmp_path, fake, keys) -> None:
    server, config = _server(_config(tmp_path, fake), keys)
    fake.script("claude-sonnet-5-5", f.unauthorized())
    result = await _complete(server, task=CODING)
    assert result.is_error
    text = result.content[0].text
    assert "ANTHROPIC_API_KEY" in text and keys["ANTHROPIC_API_KEY"] not in text
    assert fake.models_called() == ["claude-sonnet-5-5"]  # no fallback after an auth failure
    assert [r["error_type"] for r in attempt_rows(config)] == ["AuthError"]


async def test_every_model_failing_ends_promptly_listing_each_attempt(tmp_path, fake, keys) -> None:
    server, _ = _server(_config(tmp_path, fake), keys)
    fake.default = f.server_error()
    with anyio.fail_after(30):
        result = await _complete(server, task=CODING)
    assert result.is_error
    text = result.content[0].text
    assert f"all {len(fake.requests)} attempts failed" in text  # one line per request the fakes saw
    assert text.count("HTTP 500") == len(fake.requests)
    assert "anthropic/claude-sonnet-5-5: ProviderUnavailable" in text


async def test_self_hosted_only_never_reaches_a_cloud_endpoint(tmp_path, fake, keys) -> None:
    server, _ = _server(_config(tmp_path, fake), keys, local=False)
    result = await _complete(server, task="Summarise: the meeting moved to Tuesday.", self_hosted_only=True)
    assert result.is_error  # only Ollama is self-hosted here, and it is not running
    assert fake.requests == []


async def test_session_follow_up_sees_earlier_turns(tmp_path, fake, keys) -> None:
    fake.script("gpt-4.1", f.text("Noted: your name is Ada."), f.text("Your name is Ada."))
    server, _ = _server(_config(tmp_path, fake), keys)
    async with Client(server) as client:
        await client.call_tool("complete", {"task": "My name is Ada.", "session_id": "s-1",
                                            "force_model": "openai/gpt-4.1"})  # fmt: skip
        second = await client.call_tool("complete", {"task": "What is my name?", "session_id": "s-1",
                                                     "force_model": "openai/gpt-4.1"})  # fmt: skip
    assert second.structured_content["session_id"] == "s-1"
    sent = [m["content"] for m in fake.requests[-1][2]["messages"]]
    assert "My name is Ada." in sent and "Noted: your name is Ada." in sent and sent[-1] == "What is my name?"


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"task": "x" * 1_000_001}, "1000000"),
        ({"task": "hi", "session_id": "bad id; DROP TABLE"}, "session_id"),
        ({"task": "hi", "max_tokens": -5}, "max_tokens"),
        ({"task": "hi", "force_model": "openai/gpt-9"}, "not in the registry"),
    ],
)
async def test_bad_input_is_a_clear_error(tmp_path, fake, keys, arguments, needle) -> None:
    server, _ = _server(_config(tmp_path, fake), keys)
    result = await _complete(server, **arguments)
    assert result.is_error and needle in result.content[0].text
    assert fake.requests == []


async def test_cancelling_mid_flight_leaves_one_cancelled_row(tmp_path, fake, keys) -> None:
    server, config = _server(_config(tmp_path, fake, timeout_s=30), keys)
    fake.script("gpt-4.1", f.hang())
    async with Client(server) as client:
        with anyio.move_on_after(1.0):
            await client.call_tool("complete", {"task": "hello", "force_model": "openai/gpt-4.1"})
        # The row is written by the server's cancelled task, in its own time.
        await wait_until_async(lambda: attempt_rows(config), within=10, what="the cancelled call's ledger row")
    rows = attempt_rows(config)
    assert [(r["model"], r["outcome"]) for r in rows] == [("openai/gpt-4.1", "cancelled")]


async def test_progress_is_reported_per_attempt(tmp_path, fake, keys) -> None:
    fake.script("gpt-4.1", f.tool_calls(("execute_python", {"code": "1+1"})), f.text("2"))
    server, _ = _server(_config(tmp_path, fake), keys)
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with Client(server) as client:
        await client.call_tool("complete", {"task": CODING, "force_model": "openai/gpt-4.1"},
                               progress_callback=on_progress)  # fmt: skip
    assert any("routed to openai/gpt-4.1" in m for m in messages)
    assert any("attempt 1" in m for m in messages) and any("tool round" in m for m in messages)


@pytest.mark.slow
async def test_tool_loop_through_the_real_sub_servers(tmp_path, fake, keys) -> None:
    config_path = _config(tmp_path, fake)
    config = load_config(config_path, env=keys)
    server = build_server(Router(Registry(config, keys, local_runtime=lambda: False)), env=keys)
    fake.script("gpt-4.1", f.tool_calls(("execute_python", {"code": "print(sum(i * i for i in range(10)))"})),
                f.text("The sum of squares below 10 is 285."))  # fmt: skip
    with anyio.fail_after(60):
        result = await _complete(server, task=CODING, force_model="openai/gpt-4.1")
    data = result.structured_content
    assert data["tools_called"] == ["execute_python"] and "285" in data["response"]
    tool_message = fake.requests[-1][2]["messages"][-1]
    assert tool_message["role"] == "tool" and "285" in tool_message["content"]
    offered = {t["function"]["name"] for t in fake.requests[0][2]["tools"]}
    assert offered == {"execute_python", "validate_python_syntax"}  # "run them": the code kind's tools
