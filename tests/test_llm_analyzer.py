"""The LLM analyser (`analyzer = "llm:<id>"`) against a fake OpenAI API: verdicts, the cache, every fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import attempt_rows, host_server

pytestmark = pytest.mark.anyio
ANALYZER = "llm:openai/gpt-4.1-nano"
TASK = "Summarise the attached incident report for the on-call channel."
VERDICT = {"category": "long_document", "complexity": 4, "strong_score": 0.91, "requires_tools": False,
           "reasons": ["an incident report to condense"]}  # fmt: skip


def _server(tmp_path: Path, fake: f.FakeProviders, *, analyzer: str = ANALYZER, keys: bool = True) -> Any:
    extra = f'[routing]\nanalyzer = "{analyzer}"\nllm_analyzer_timeout_s = 1.0\n'
    env = {**os.environ, **(ALL_KEYS if keys else {})}
    return host_server(f.write_config(tmp_path, fake, extra=extra), env, toolbox=NoTools(), local=True)


async def _route(server: Any, task: str = TASK) -> dict[str, Any]:
    async with Client(server) as client:
        result = await client.call_tool("route_task", {"task": task})
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_valid_verdict_decides_the_route_and_is_cached_and_costed(tmp_path: Path, fake) -> None:
    fake.script("gpt-4.1-nano", f.text(json.dumps(VERDICT), prompt=400, completion=60))
    server, config = _server(tmp_path, fake)
    first = await _route(server)
    assert first["analyzer"] == ANALYZER
    assert (first["category"], first["complexity"], first["strong_score"]) == ("long_document", 4, 0.91)
    assert any("an incident report to condense" in r for r in first["reasons"])
    second = await _route(server)  # same prompt: answered from the cache, no second request
    assert second["category"] == "long_document" and any("(cached)" in r for r in second["reasons"])
    assert fake.models_called("openai") == ["gpt-4.1-nano"]
    # The analyser's own call is in the ledger, priced: 400 in x $0.10 + 60 out x $0.40 per 1M.
    [row] = attempt_rows(config)
    assert (row["category"], row["model"], row["outcome"]) == ("router_analysis", "openai/gpt-4.1-nano", "ok")
    assert row["cost_pusd"] == 64_000_000


async def test_a_fenced_json_answer_is_accepted(tmp_path: Path, fake) -> None:
    fake.script("gpt-4.1-nano", f.text("```json\n" + json.dumps(VERDICT) + "\n```"))
    server, _ = _server(tmp_path, fake)
    assert (await _route(server))["category"] == "long_document"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (f.text("It is probably a summarisation task."), "not a JSON object"),
        (f.text('{"category": "long_document", "complexity": 4,'), "not a JSON object"),
        (f.text(json.dumps({**VERDICT, "category": "poetry"})), "invalid verdict: category"),
        (f.text(json.dumps({**VERDICT, "strong_score": 7})), "invalid verdict: strong_score"),
        (f.hang(), "no answer within 1 s"),
        (f.server_error(), "failed"),
    ],
    ids=["prose", "truncated-json", "unknown-category", "out-of-range", "timeout", "http-500"],
)
async def test_any_failure_falls_back_to_the_builtin_analyser_with_the_reason(tmp_path, fake, reply, why) -> None:
    fake.script("gpt-4.1-nano", reply, reply, reply)
    server, _ = _server(tmp_path, fake)
    result = await _route(server)
    assert result["analyzer"] == "local"
    assert result["reasons"][0].startswith(f"LLM analyser {ANALYZER.removeprefix('llm:')} failed:")
    assert why in result["reasons"][0]
    assert result["primary_model"]  # still routed


async def test_an_unknown_analyser_model_falls_back_and_names_close_matches(tmp_path: Path, fake) -> None:
    server, _ = _server(tmp_path, fake, analyzer="llm:openai/gpt-4.1-nanoo")
    result = await _route(server)
    assert result["analyzer"] == "local"
    assert "unknown model id 'openai/gpt-4.1-nanoo'" in result["reasons"][0]
    assert "openai/gpt-4.1-nano" in result["reasons"][0]
    assert fake.requests == []


async def test_an_analyser_model_without_its_key_falls_back_and_names_the_env_var(tmp_path: Path, fake) -> None:
    server, _ = _server(tmp_path, fake, keys=False)
    result = await _route(server)
    assert result["analyzer"] == "local" and "OPENAI_API_KEY" in result["reasons"][0]
    assert fake.requests == []
