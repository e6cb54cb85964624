"""Budgets enforced end to end through `complete` against fake providers on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client

from server.domain.config import Config
from server.domain.messages import ToolSpec
from server.domain.registry import Registry
from server.store import AttemptRecord, open_store
from server.tools.toolbox import NoTools, ToolBox, ToolOutcome
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import attempt_rows, host_server

pytestmark = pytest.mark.anyio
CODING = "Write a Python function that merges overlapping intervals, with a docstring."


class Arithmetic:
    """Stands in for the code sub-server (one small tool) where the test is about the model's rounds."""

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        spec = ToolSpec("execute_python", "Run Python code", {"type": "object", "properties": {"code": {}}})
        return [spec] if "execute_python" in names else []

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome("42")


def _server(
    tmp_path: Path, fake: f.FakeProviders, budgets: str, *, ollama: bool = False, toolbox: ToolBox | None = None
) -> tuple[Any, Config]:
    extra = f"[budgets]\n{budgets}\n"
    path = f.write_config(tmp_path, fake, extra=extra)
    if ollama:  # the self-hosted Ollama endpoint answers too (through the fake's OpenAI-compatible API)
        dead = 'base_url = "http://127.0.0.1:9/v1"'
        path.write_text(path.read_text().replace(dead, f'base_url = "{fake.openai_url}"'))
    return host_server(path, {**os.environ, **ALL_KEYS}, toolbox=toolbox or NoTools())


async def _spend_today(config: Config, usd: str) -> None:
    store = await open_store(config.data_dir)
    try:
        await store.ledger.record(AttemptRecord(
            task_id="earlier", session_id=None, attempt_no=1, started_at=time.time(), latency_ms=1.0,
            model="openai/gpt-4.1", provider="openai", category="qa_retrieval", outcome="ok",
            price_table_version=config.price_table_version, input_tokens=1, output_tokens=1, cost_usd=Decimal(usd),
        ))  # fmt: skip
    finally:
        await store.aclose()


async def test_a_per_task_budget_below_the_primarys_estimate_downgrades(tmp_path: Path, fake) -> None:
    server, config = _server(tmp_path, fake, "per_task_usd = 0.01")
    async with Client(server) as client:
        unbounded = (await client.call_tool("route_task", {"task": CODING})).structured_content
        result = await client.call_tool("complete", {"task": CODING, "max_tokens": 4096, "enable_tools": False})
    assert not result.is_error, result.content
    data = result.structured_content
    primary = Registry(config, {**os.environ, **ALL_KEYS}).resolve(unbounded["primary_model"])
    assert primary is not None and 4096 * primary.output_price / 1e6 > 0.01  # the primary could cost too much
    assert data["model_used"] != unbounded["primary_model"]
    assert any("the per_task budget of $0.0100 has $0.010000 left" in r for r in data["route"]["reasons"])
    chosen = Registry(config, {**os.environ, **ALL_KEYS}).resolve(data["model_used"])
    assert chosen is not None
    worst = (data["route"]["estimated_input_tokens"] * chosen.input_price + 4096 * chosen.output_price) / 1e6
    assert worst <= 0.01
    [line] = data["budgets"]
    assert (line["name"], line["limit_usd"]) == ("per_task", 0.01)
    assert line["spent_usd"] == pytest.approx(data["cost_usd"]) and line["reserved_usd"] == 0


async def test_an_exhausted_daily_budget_refuses_cloud_calls_but_serves_self_hosted(tmp_path: Path, fake) -> None:
    server, config = _server(tmp_path, fake, "daily_usd = 1.0", ollama=True)
    await _spend_today(config, "1.0")
    fake.script("qwen3:1.7b", f.text("Paris.", prompt=30, completion=3))
    async with Client(server) as client:
        served = await client.call_tool("complete", {"task": "What is the capital of France?"})
        refused = await client.call_tool("complete", {"task": "What is the capital of Spain?",
                                                      "force_model": "openai/gpt-4.1"})  # fmt: skip
    assert not served.is_error, served.content
    assert served.structured_content["model_used"] == "ollama/qwen3:1.7b"
    assert served.structured_content["cost_usd"] == 0
    assert refused.is_error
    message = refused.content[0].text
    assert "the daily budget of $1.0000 has $0.000000 left (spent or held $1.000000)" in message
    assert "force_model openai/gpt-4.1 could cost up to $" in message and "budgets.daily_usd" in message
    assert fake.models_called() == ["qwen3:1.7b"]  # no request reached a cloud model


async def test_concurrent_calls_never_spend_more_than_the_budget(tmp_path: Path, fake) -> None:
    # Each gpt-4.1 call reserves its maximum (its request, ~70 tokens counted conservatively, x $2 + 1000
    # output x $8 per 1M, about $0.0081) and really costs $0.00802; the budget holds ten of them. Calls that
    # find the budget taken fall back to cheaper models while those fit, then are refused.
    fake.default = f.text("done", prompt=10, completion=1000)
    server, config = _server(tmp_path, fake, "daily_usd = 0.0825")
    errors: list[str] = []
    async with Client(server) as client:

        async def one(i: int) -> None:
            arguments = {"task": f"Say done ({i}).", "max_tokens": 1000, "force_model": "openai/gpt-4.1",
                         "enable_tools": False}  # fmt: skip
            result = await client.call_tool("complete", arguments)
            if result.is_error:
                errors.append(result.content[0].text)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(one, i)
        report = (await client.call_tool("cost_report", {})).structured_content
    rows = attempt_rows(config)
    spent = sum(Decimal(row["cost_pusd"]) for row in rows if row["cost_pusd"]) / 10**12
    assert spent <= Decimal("0.0825")
    assert sum(row["model"] == "openai/gpt-4.1" for row in rows) <= 10
    assert errors and all("budget" in e for e in errors)
    assert len(rows) + len(errors) == 100 and all(row["outcome"] == "ok" for row in rows)
    assert len(fake.requests) == len(rows)  # refused calls never reached a provider
    assert report["totals"]["cost_usd"] == pytest.approx(float(spent))
    [daily] = report["budgets"]
    assert daily["spent_usd"] == pytest.approx(float(spent)) and daily["reserved_usd"] == 0


async def test_a_round_billed_beyond_its_hold_is_counted_before_the_next_round_is_sent(tmp_path: Path, fake) -> None:
    # The first round reserves about $0.002 (its request and 100 output tokens on gpt-4.1), but the provider
    # reports 5,000 input tokens ($0.01): the next round must see that before anything more is sent.
    fake.script("gpt-4.1", f.tool_calls(("execute_python", {"code": "6 * 7"}), prompt=5000, completion=10))
    server, config = _server(tmp_path, fake, "per_task_usd = 0.01", toolbox=Arithmetic())
    async with Client(server) as client:
        result = await client.call_tool("complete", {"task": "Use your tools: run 6 * 7 in Python and report it.",
                                                     "force_model": "openai/gpt-4.1", "max_tokens": 100})  # fmt: skip
    assert result.is_error
    message = result.content[0].text
    assert "the per_task budget of $0.0100 has $0.000000 left (spent $0.010080" in message, message
    assert len(fake.requests) == 1  # the second round, and every other model, was refused before sending
    [row] = attempt_rows(config)
    assert (row["model"], row["input_tokens"], row["tool_rounds"]) == ("openai/gpt-4.1", 5000, 1)


async def test_a_budget_refusal_names_the_budget_not_a_missing_key(tmp_path: Path, fake) -> None:
    # Only OpenAI has a key and no $0 model is on: models that would fit what is left (Together's, Gemini's)
    # cannot be called here, but the daily budget is what refused.
    extra = "".join(f'[[models]]\nid = "{m}"\nenabled = false\n' for m in ("ollama/qwen3:1.7b", "local/gemma-3-270m"))
    path = f.write_config(tmp_path, fake, extra=f"[budgets]\ndaily_usd = 1.0\n{extra}")
    server, config = host_server(path, {**os.environ, "OPENAI_API_KEY": "test-openai-key-0000"}, toolbox=NoTools())
    await _spend_today(config, "0.99965")  # $0.00035 left: Together's Llama 4 Scout would fit, gpt-4.1-nano not
    async with Client(server) as client:
        refused = await client.call_tool("complete", {"task": "What is the capital of Spain?", "max_tokens": 1000})
    assert refused.is_error
    message = refused.content[0].text
    assert "the daily budget of $1.0000 has $0.000350 left (spent or held $0.999650)" in message, message
    assert "raise budgets.daily_usd, lower max_tokens" in message
    assert "to enable" not in message and "API_KEY" not in message
    assert fake.requests == []
