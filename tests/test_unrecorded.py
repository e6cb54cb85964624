"""One write path for money: an answer goes out only after its rows are committed; a store that cannot
write fails the call, says so, and no further paid request follows.

The router runs in-process behind the SDK's `Client(server)`, against the fake provider APIs on loopback,
with its real SQLite database made to refuse writes mid-session: the whole store (`set_writable`: SQLite
refuses every write as it does for a read-only file or a full disk, also for root, who ignores file modes)
or one table (`refuse_inserts`: a trigger, as a full disk refuses one page while other writes land).
"""

from __future__ import annotations

import os

import anyio
import pytest
from mcp.client import Client

from server.execution.runtime import Runtime
from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import allow_inserts, attempt_rows, host_server, refuse_inserts, set_writable

pytestmark = pytest.mark.anyio
CODING = "Write a Python function that merges overlapping intervals, with a docstring."
NOT_RECORDED = "could not be recorded in the ledger"


def _server(tmp_path, fake: f.FakeProviders, extra: str = ""):
    opened: list[Runtime] = []
    env = {**os.environ, **ALL_KEYS}
    server, config = host_server(f.write_config(tmp_path, fake, extra=extra), env, toolbox=NoTools(), opened=opened)
    return server, config, opened


def _text(result) -> str:
    return result.content[0].text


async def test_an_unwritable_store_fails_every_complete_before_anything_is_paid(tmp_path, fake) -> None:
    fake.default = f.text("done", prompt=30, completion=3)
    server, config, opened = _server(tmp_path, fake)
    answered: list[str] = []
    errors: list[str] = []
    async with Client(server) as client:

        async def one(i: int) -> None:
            arguments = {"task": f"Say hello #{i}", "force_model": "openai/gpt-4.1", "enable_tools": False}
            result = await client.call_tool("complete", arguments)
            if result.is_error:
                errors.append(_text(result))
            else:
                answered.append(result.structured_content["task_id"])

        await one(0)
        set_writable(opened[0].store, False)  # the disk turns read-only (or fills) while the server runs
        requests_before = len(fake.requests)
        async with anyio.create_task_group() as tg:
            for i in range(1, 6):
                tg.start_soon(one, i)
    assert len(answered) == 1 and len(errors) == 5
    assert all("cannot write to the database" in e and str(config.data_dir) in e for e in errors)
    assert "internal error" not in errors[0]
    # The decision row is written before the first paid request: nothing was sent for the failed calls.
    assert len(fake.requests) == requests_before
    assert [(r["task_id"], r["outcome"]) for r in attempt_rows(config)] == [(answered[0], "ok")]


async def test_an_answer_whose_attempt_row_cannot_be_written_is_not_returned(tmp_path, fake) -> None:
    server, config, opened = _server(tmp_path, fake)
    answered: list[str] = []
    async with Client(server) as client:
        for i, writable in enumerate([True, False, True, False, False, True]):
            store = opened[0].store if opened else None
            if store is not None:
                (allow_inserts if writable else refuse_inserts)(store, "attempts")
            sent_before = len(fake.requests)
            result = await client.call_tool(
                "complete", {"task": f"What is {i} + {i}?", "force_model": "openai/gpt-4.1", "enable_tools": False}
            )
            assert len(fake.requests) - sent_before == 1  # one paid request per call, never a fallback
            if writable:
                assert not result.is_error, result.content
                answered.append(result.structured_content["task_id"])
                continue
            assert result.is_error
            text = _text(result)
            assert NOT_RECORDED in text and "openai/gpt-4.1" in text and "disk full" in text
            assert "MODEL_ROUTER_HOME" in text and "internal error" not in text
    rows = attempt_rows(config)
    assert [(r["task_id"], r["outcome"]) for r in rows] == [(task_id, "ok") for task_id in answered]


async def test_a_failed_attempt_that_cannot_be_recorded_stops_the_chain(tmp_path, fake) -> None:
    server, config, opened = _server(tmp_path, fake)
    fake.script("claude-sonnet-5-5", f.server_error())  # the primary fails: normally retried, then fallback
    async with Client(server) as client:
        route = (await client.call_tool("route_task", {"task": CODING})).structured_content
        refuse_inserts(opened[0].store, "attempts")
        result = await client.call_tool("complete", {"task": CODING, "enable_tools": False})
    assert route["primary_model"] == "anthropic/claude-sonnet-5-5" and route["fallback_models"]
    assert result.is_error and "the error attempt from anthropic/claude-sonnet-5-5 " + NOT_RECORDED in _text(result)
    assert fake.models_called() == ["claude-sonnet-5-5"]  # no retry, no fallback: nothing more was paid for
    assert attempt_rows(config) == []


async def test_a_budget_hold_that_cannot_be_written_sends_nothing(tmp_path, fake) -> None:
    server, config, opened = _server(tmp_path, fake, extra="[budgets]\ndaily_usd = 5.0\n")
    async with Client(server) as client:
        await client.call_tool("route_task", {"task": "Say hi."})  # opens the runtime
        refuse_inserts(opened[0].store, "reservations")
        result = await client.call_tool("complete", {"task": "Say hi.", "force_model": "openai/gpt-4.1"})
    assert result.is_error
    assert "the budget reservation for openai/gpt-4.1 could not be written" in _text(result)
    assert fake.requests == []
    assert attempt_rows(config) == []


async def test_the_llm_analysers_unrecorded_verdict_is_not_used(tmp_path, fake) -> None:
    extra = '[routing]\nanalyzer = "llm:openai/gpt-4.1-nano"\n'
    server, config, opened = _server(tmp_path, fake, extra=extra)
    fake.script("gpt-4.1-nano", f.text('{"category": "long_document", "complexity": 4, "strong_score": 0.9}'))
    async with Client(server) as client:
        await client.call_tool("cost_report", {})  # opens the runtime
        refuse_inserts(opened[0].store, "attempts")
        result = await client.call_tool("route_task", {"task": CODING})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["analyzer"] == "local" and NOT_RECORDED in data["reasons"][0]  # the rules answered instead
    assert fake.models_called() == ["gpt-4.1-nano"]
    assert attempt_rows(config) == []
