"""One write path for money: an answer goes out only after its attempt row is committed.

The router runs in-process behind the SDK's `Client(server)`, against the fake provider APIs on loopback,
with its real SQLite database made unwritable mid-session (`tests.helpers.set_writable`: SQLite refuses
every write as it does for a read-only file). A call that cannot record its attempt fails with a readable
error after at most one paid request, and every call that was answered has its row.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from server.domain.config import Config, load_config
from server.domain.registry import Registry
from server.execution.runtime import Runtime, open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import committed_attempts, set_writable

pytestmark = pytest.mark.anyio
CODING = "Write a Python function that merges overlapping intervals, with a docstring."
NOT_RECORDED = "could not be recorded in the ledger (attempt to write a readonly database)"


@pytest.fixture
def fake() -> Iterator[f.FakeProviders]:
    with f.FakeProviders() as providers:
        yield providers


def _server(tmp_path: Path, fake: f.FakeProviders, extra: str = "") -> tuple[Any, Config, list[Runtime]]:
    """The MCP server, its config, and (once a client has connected) the runtime it opened."""
    env = {**os.environ, **ALL_KEYS}
    config = load_config(f.write_config(tmp_path, fake, extra=extra), env=env)
    opened: list[Runtime] = []

    @asynccontextmanager
    async def runtime(router: Router) -> AsyncIterator[Runtime]:
        async with open_runtime(router, env, toolbox=NoTools()) as rt:
            opened.append(rt)
            yield rt

    router = Router(Registry(config, env, local_runtime=lambda: False))
    return build_server(router, env=env, runtime_factory=runtime), config, opened


async def test_an_answer_is_returned_only_with_its_committed_ledger_row(tmp_path: Path, fake) -> None:
    server, config, opened = _server(tmp_path, fake)
    answered: list[str] = []
    async with Client(server) as client:
        for i, writable in enumerate([True, False, True, False, False, True]):
            set_writable(opened[0].store, writable)
            sent_before = len(fake.requests)
            result = await client.call_tool(
                "complete", {"task": f"What is {i} + {i}?", "force_model": "openai/gpt-4.1", "enable_tools": False}
            )
            assert len(fake.requests) - sent_before == 1  # at most one paid request per call, never a fallback
            if writable:
                assert not result.is_error, result.content
                answered.append(result.structured_content["task_id"])
                continue
            assert result.is_error
            text = result.content[0].text
            assert NOT_RECORDED in text and "openai/gpt-4.1" in text and "MODEL_ROUTER_HOME" in text
            assert "internal error" not in text  # the SDK's "Error executing tool complete: " prefix, then ours
    rows = committed_attempts(config.data_dir)
    assert [(r["task_id"], r["outcome"]) for r in rows] == [(task_id, "ok") for task_id in answered]


async def test_a_failed_attempt_that_cannot_be_recorded_stops_the_chain(tmp_path: Path, fake) -> None:
    server, config, opened = _server(tmp_path, fake)
    fake.script("claude-sonnet-4-20250514", f.server_error())  # the primary fails: normally retried, then fallback
    async with Client(server) as client:
        set_writable(opened[0].store, False)
        result = await client.call_tool("complete", {"task": CODING, "enable_tools": False})
    assert result.is_error and "the error attempt from anthropic/claude-sonnet-4 " + NOT_RECORDED in (
        result.content[0].text
    )
    assert fake.models_called() == ["claude-sonnet-4-20250514"]  # no retry, no fallback: nothing more was paid for
    assert committed_attempts(config.data_dir) == []


async def test_a_budget_hold_that_cannot_be_written_sends_nothing(tmp_path: Path, fake) -> None:
    server, config, opened = _server(tmp_path, fake, extra="[budgets]\ndaily_usd = 5.0\n")
    async with Client(server) as client:
        set_writable(opened[0].store, False)
        result = await client.call_tool("complete", {"task": "Say hi.", "force_model": "openai/gpt-4.1"})
    assert result.is_error
    assert "the budget reservation for openai/gpt-4.1 could not be written" in result.content[0].text
    assert fake.requests == []
    assert committed_attempts(config.data_dir) == []


async def test_the_llm_analysers_unrecorded_verdict_is_not_used(tmp_path: Path, fake) -> None:
    extra = '[routing]\nanalyzer = "llm:openai/gpt-4.1-nano"\n'
    server, config, opened = _server(tmp_path, fake, extra=extra)
    fake.script("gpt-4.1-nano", f.text('{"category": "long_document", "complexity": 4, "strong_score": 0.9}'))
    async with Client(server) as client:
        set_writable(opened[0].store, False)
        result = await client.call_tool("route_task", {"task": CODING})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["analyzer"] == "local" and NOT_RECORDED in data["reasons"][0]  # the rules answered instead
    assert fake.models_called() == ["gpt-4.1-nano"]
    assert committed_attempts(config.data_dir) == []
