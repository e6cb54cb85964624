"""The fallback chain's policy and the tool loop, driven through the provider protocol seam with scripted models.

Each scripted model answers from a queue: a `ChatResponse` or a `ProviderError` to raise. Sleeps are
recorded instead of slept, so Retry-After handling is asserted without waiting.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import anyio
import pytest

from server.accounting.attempts import AttemptBook
from server.domain.messages import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    TextPart,
    ToolCallPart,
    ToolSpec,
    Usage,
)
from server.domain.registry import Registry
from server.errors import (
    AllModelsFailed,
    AuthError,
    BadRequest,
    ContextTooLong,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    TaskStopped,
)
from server.execution.fallback import FallbackChain
from server.execution.job import Job, Limits
from server.execution.tool_loop import ToolLoop
from server.store import Ledger, open_database
from server.store.db import rows_as_dicts
from server.tools.toolbox import NoTools, ToolOutcome

pytestmark = pytest.mark.anyio


def text_reply(text: str, inp: int = 100, out: int = 20, cached: int = 0) -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", parts=(TextPart(text),)),
        usage=Usage(input_tokens=inp, cached_input_tokens=cached, output_tokens=out),
        finish_reason=FinishReason.STOP,
        model="x",
        response_id="r",
    )


def tool_reply(name: str, args: dict[str, Any], call_id: str = "call_1") -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", parts=(ToolCallPart(call_id, name, args),)),
        usage=Usage(input_tokens=50, output_tokens=10),
        finish_reason=FinishReason.TOOL_CALLS,
        model="x",
        response_id="r",
    )


class ScriptedModel:
    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        item = self.script.pop(0) if self.script else text_reply("default")
        if isinstance(item, Exception):
            raise item
        if item == "hang":
            await anyio.sleep(3600)
        return item


class ScriptedPool:
    def __init__(self) -> None:
        self.models: dict[str, ScriptedModel] = {}

    def get(self, model: Any) -> ScriptedModel:
        return self.models.setdefault(model.id, ScriptedModel())

    def script(self, model_id: str, *items: Any) -> ScriptedModel:
        scripted = self.get(type("M", (), {"id": model_id})())
        scripted.script.extend(items)
        return scripted


class Calculator:
    """A toolbox with one tool that evaluates arithmetic, and one that always fails."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        specs = [ToolSpec("execute_python", "run code", {"type": "object"}), ToolSpec("broken", "fails", {})]
        return [s for s in specs if s.name in names]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls.append((name, arguments))
        if name == "broken":
            return ToolOutcome("the tool crashed; try another approach", is_error=True)
        return ToolOutcome(str(eval(arguments["code"], {"__builtins__": {}})))  # test-only arithmetic


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path)
    yield database
    database.close()


def make(registry: Registry, db, toolbox=None, **limits: Any) -> tuple[FallbackChain, ScriptedPool, list[float]]:
    pool = ScriptedPool()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    loop = ToolLoop(registry, pool, toolbox or NoTools(), Limits(**limits))
    book = AttemptBook(Ledger(db), None, registry.config.price_table_version)
    dispatcher = FallbackChain(loop, book, sleep=fake_sleep, jitter=lambda: 0.0)
    return dispatcher, pool, slept


def job(tools: tuple[ToolSpec, ...] = ()) -> Job:
    return Job(
        task_id="t1",
        session_id=None,
        category="qa_retrieval",
        messages=(Message(role="user", parts=(TextPart("hi"),)),),
        tools=tools,
        max_tokens=256,
        estimated_input_tokens=10,
        estimated_output_tokens=10,
    )


def chain(registry: Registry, *ids: str) -> list[Any]:
    return [registry.resolve(i) for i in ids]


def ledger_rows(db) -> list[dict[str, Any]]:
    return db.run_sync(lambda c: rows_as_dicts(c.execute("SELECT * FROM attempts ORDER BY id")))


async def test_first_model_answers_and_one_row_is_written(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db)
    pool.script("openai/gpt-4.1", text_reply("Paris", inp=1000, out=200, cached=400))
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "openai/o3"), job())
    assert outcome.text == "Paris" and outcome.model.id == "openai/gpt-4.1"
    # 600 uncached at $2, 400 cached at $0.50, 200 out at $8 per 1M
    assert str(outcome.cost_usd) == "0.003"
    rows = ledger_rows(db)
    assert len(rows) == 1
    assert (rows[0]["outcome"], rows[0]["cost_pusd"], rows[0]["cached_input_tokens"]) == ("ok", 3_000_000_000, 400)


async def test_rate_limit_honours_retry_after_then_falls_back(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, slept = make(registry_all_keys, db)
    limited = RateLimited("slow down", provider="openai", retry_after_s=2.0)
    pool.script("openai/gpt-4.1", limited, limited)
    pool.script("openai/o3", text_reply("ok"))
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "openai/o3"), job())
    assert outcome.model.id == "openai/o3"
    assert slept == [2.0]  # waited exactly Retry-After (jitter 0) once, then moved on
    assert [a.outcome for a in outcome.attempts] == ["error", "error", "ok"]
    assert [a.error_type for a in outcome.attempts][:2] == ["RateLimited", "RateLimited"]


async def test_long_retry_after_skips_straight_to_the_next_model(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, slept = make(registry_all_keys, db)
    pool.script("openai/gpt-4.1", RateLimited("quota", provider="openai", retry_after_s=3600))
    pool.script("openai/o3", text_reply("ok"))
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "openai/o3"), job())
    assert outcome.model.id == "openai/o3" and slept == []


@pytest.mark.parametrize(
    "error",
    [
        ProviderUnavailable("500", provider="openai", status=500),
        ProviderUnavailable("overloaded", provider="anthropic", status=529),
        ProviderTimeout("hung", provider="openai"),
    ],
)
async def test_transient_errors_retry_with_backoff_then_fall_back(registry_all_keys: Registry, db, error) -> None:
    dispatcher, pool, slept = make(registry_all_keys, db)
    pool.script("openai/gpt-4.1", error, error)
    pool.script("google/gemini-2.5-flash", text_reply("ok"))
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "google/gemini-2.5-flash"), job())
    assert outcome.model.id == "google/gemini-2.5-flash"
    assert slept == [0.25]  # backoff_base 0.5 * (0.5 + jitter/2) with jitter 0


async def test_context_too_long_skips_to_a_larger_window(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db)
    pool.script("openai/o3", ContextTooLong("too long", provider="openai"))
    small = pool.script("together/deepseek-r1")  # 128k < o3's 200k: must be skipped
    pool.script("google/gemini-2.5-flash", text_reply("read it all"))
    ids = ("openai/o3", "together/deepseek-r1", "google/gemini-2.5-flash")
    outcome = await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert outcome.model.id == "google/gemini-2.5-flash"
    assert small.requests == []


@pytest.mark.parametrize(
    "error",
    [
        AuthError("bad key: set OPENAI_API_KEY", provider="openai", api_key_env="OPENAI_API_KEY"),
        BadRequest("bad", provider="openai"),
    ],
)
async def test_auth_and_bad_request_stop_the_chain(registry_all_keys: Registry, db, error) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db)
    pool.script("openai/gpt-4.1", error)
    fallback = pool.script("openai/o3", text_reply("never"))
    with pytest.raises(TaskStopped) as info:
        await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "openai/o3"), job())
    assert fallback.requests == []
    assert len(info.value.attempts) == 1
    if isinstance(error, AuthError):
        assert "OPENAI_API_KEY" in str(info.value)


async def test_all_failed_lists_every_attempt(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db, retries_per_model=0)
    ids = ("openai/gpt-4.1", "openai/o3", "google/gemini-2.5-flash")
    for model_id in ids:
        pool.script(model_id, ProviderUnavailable(f"{model_id} is down", provider=model_id.split("/")[0], status=503))
    with pytest.raises(AllModelsFailed) as info:
        await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert [a.model for a in info.value.attempts] == list(ids)
    for model_id in ids:
        assert f"{model_id} is down" in str(info.value)
    assert len(ledger_rows(db)) == 3


async def test_a_model_is_never_tried_twice(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db, retries_per_model=0)
    model = pool.script("openai/o3", ProviderUnavailable("down", provider="openai"))
    with pytest.raises(AllModelsFailed):
        await dispatcher.run(chain(registry_all_keys, "openai/o3", "openai/o3", "openai/o3"), job())
    assert len(model.requests) == 1


async def test_tool_loop_runs_tools_and_returns_the_final_answer(registry_all_keys: Registry, db) -> None:
    tools = Calculator()
    dispatcher, pool, _ = make(registry_all_keys, db, toolbox=tools)
    specs = tuple(await tools.list_tools({"execute_python", "broken"}))
    model = pool.script(
        "openai/gpt-4.1",
        tool_reply("execute_python", {"code": "6*7"}, "c1"),
        tool_reply("broken", {}, "c2"),
        tool_reply("no_such_tool", {}, "c3"),
        text_reply("The answer is 42"),
    )
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1"), job(specs))
    assert outcome.text == "The answer is 42"
    assert outcome.tools_called == ["execute_python", "broken", "no_such_tool"]
    results = [m for m in model.requests[-1].messages if m.role == "tool"]
    first = results[0].parts[0]
    assert (first.tool_call_id, first.content, first.is_error) == ("c1", "42", False)
    assert results[1].parts[0].is_error and "try another approach" in results[1].parts[0].content
    assert results[2].parts[0].is_error and "unknown tool" in results[2].parts[0].content
    row = ledger_rows(db)[0]
    assert row["tool_rounds"] == 3
    assert json.loads(row["tools_called"]) == ["execute_python", "broken", "no_such_tool"]


async def test_tool_loop_is_bounded_by_rounds(registry_all_keys: Registry, db) -> None:
    tools = Calculator()
    dispatcher, pool, _ = make(registry_all_keys, db, toolbox=tools, max_rounds=3)
    specs = tuple(await tools.list_tools({"execute_python"}))
    model = pool.script("openai/gpt-4.1", *[tool_reply("execute_python", {"code": "1"}, f"c{i}") for i in range(10)])
    outcome = await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1"), job(specs))
    assert len(model.requests) == 3
    assert model.requests[-1].tools == ()  # the last round forces an answer
    assert outcome.rounds == 3


async def test_cancellation_leaves_one_whole_cancelled_row(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db)
    pool.script("openai/gpt-4.1", "hang")
    with anyio.move_on_after(0.2):
        await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1"), job())
    rows = [(r["outcome"], r["model"]) for r in ledger_rows(db)]
    assert rows == [("cancelled", "openai/gpt-4.1")]


async def test_deadline_ends_a_hung_chain_promptly(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, _ = make(registry_all_keys, db, deadline_s=0.3)
    pool.script("openai/gpt-4.1", "hang")
    with anyio.fail_after(10), pytest.raises(AllModelsFailed, match="deadline"):
        await dispatcher.run(chain(registry_all_keys, "openai/gpt-4.1", "openai/o3"), job())


async def test_an_unreachable_provider_is_not_retried_and_then_skipped(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, slept = make(registry_all_keys, db)
    refused = ProviderUnreachable("connection refused", provider="openai")  # never connected
    first = pool.script("openai/gpt-4.1", refused)
    pool.script("google/gemini-2.5-flash", text_reply("one"), text_reply("two"))
    ids = ("openai/gpt-4.1", "google/gemini-2.5-flash")
    outcome = await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert outcome.model.id == "google/gemini-2.5-flash" and slept == [] and len(first.requests) == 1
    again = await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert len(first.requests) == 1  # skipped while it is known to be down
    assert [(a.model, a.outcome) for a in again.attempts] == [
        ("openai/gpt-4.1", "skipped"),
        ("google/gemini-2.5-flash", "ok"),
    ]


async def test_a_dropped_connection_is_retried_like_a_5xx_and_not_skipped(registry_all_keys: Registry, db) -> None:
    dispatcher, pool, slept = make(registry_all_keys, db)
    dropped = ProviderUnavailable("openai dropped the connection before answering (ReadError)", provider="openai")
    first = pool.script("openai/gpt-4.1", dropped, dropped, text_reply("later"))
    pool.script("google/gemini-2.5-flash", text_reply("one"))
    ids = ("openai/gpt-4.1", "google/gemini-2.5-flash")
    outcome = await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert outcome.model.id == "google/gemini-2.5-flash"
    assert len(first.requests) == 2 and len(slept) == 1 and slept[0] > 0  # one retry after a backoff, then next
    again = await dispatcher.run(chain(registry_all_keys, *ids), job())
    assert again.model.id == "openai/gpt-4.1"  # not skipped as unreachable: it was reached a moment ago
