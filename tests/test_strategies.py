"""`complete(strategy=cascade|evaluate_optimise)` over MCP (in-process SDK client) against the fake provider APIs.

The fake is scripted per model: the draft's answer, the verifier's verdict, the escalation's answer. With every
key set, a capital-city question (qa_retrieval) plans as: draft groq/gpt-oss-120b, verifier
anthropic/claude-haiku-5-5 (a cheap model of another family), escalation google/gemini-3.8-flash (the
category's default model), then google/gemini-2.5-pro (its most capable tier-1 model).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from server.domain.config import load_config
from server.domain.pricing import token_cost
from server.domain.registry import Registry
from server.execution.job import Limits
from server.execution.runtime import Runtime, open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import attempt_rows, cli_env, host_server, run_cli
from tests.test_complete import Calculator

pytestmark = pytest.mark.anyio
TASK = "What is the capital of France?"
DRAFT, VERIFIER = "groq/gpt-oss-120b", "anthropic/claude-haiku-5-5"
ESCALATION, TIER1 = "google/gemini-3.8-flash", "google/gemini-2.5-pro"
API = {DRAFT: "openai/gpt-oss-120b", VERIFIER: "claude-haiku-5-5", ESCALATION: "gemini-3.8-flash",
       TIER1: "gemini-2.5-pro"}  # fmt: skip


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ALL_KEYS.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def verdict(score: float, feedback: str = "") -> f.Spec:
    return f.text(json.dumps({"score": score, "feedback": feedback}), prompt=80, completion=20)


async def _complete(server: Any, progress: list[str] | None = None, **arguments: Any) -> dict[str, Any]:
    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if progress is not None:
            progress.append(message or "")

    async with Client(server) as client:
        result = await client.call_tool("complete", arguments, progress_callback=on_progress)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _server(tmp_path: Path, fake: f.FakeProviders, env: dict[str, str], extra: str = "") -> tuple[Any, Any]:
    return host_server(f.write_config(tmp_path, fake, extra=extra), env, toolbox=Calculator())


def _roles(config: Any) -> list[tuple[str | None, str, str]]:
    return [(r["role"], r["model"], r["outcome"]) for r in attempt_rows(config)]


async def test_cascade_accepts_a_good_cheap_answer_with_one_model_call_and_the_verifier(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("Paris."))
    fake.script(API[VERIFIER], verdict(0.92))
    server, config = _server(tmp_path, fake, keys)
    progress: list[str] = []
    data = await _complete(server, progress, task=TASK, strategy="cascade")
    assert (data["response"], data["model_used"]) == ("Paris.", DRAFT)
    assert fake.models_called() == [API[DRAFT], API[VERIFIER]]  # one paid answer, one grading, nothing else
    route = data["route"]
    assert route["strategy"] == "cascade" and route["primary_model"] == DRAFT
    assert [(r["role"], r["model"]) for r in route["roles"]] == [
        ("draft", DRAFT), ("verifier", VERIFIER), ("escalation", ESCALATION), ("escalation", TIER1)
    ]  # fmt: skip
    report = data["strategy"]
    assert (report["accepted"], report["stopped_by"], report["rounds"], report["escalations"]) == (
        True, "accepted", 1, 0
    )  # fmt: skip
    assert report["steps"][1]["score"] == pytest.approx(0.92)
    assert [(a["role"], a["model"]) for a in data["attempts"]] == [("draft", DRAFT), ("verifier", VERIFIER)]
    rows = attempt_rows(config)
    assert [(r["role"], r["model"], r["attempt_no"]) for r in rows] == [("draft", DRAFT, 1), ("verifier", VERIFIER, 2)]
    assert len({r["task_id"] for r in rows}) == 1 and rows[0]["task_id"] == data["task_id"]
    assert data["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in data["attempts"]))
    assert any("verifier score 0.92 >= 0.7: accepted" in m for m in progress), progress


async def test_cascade_escalates_a_bad_answer_and_says_so_in_progress(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("Lyon."))
    fake.script(API[VERIFIER], verdict(0.42, "Lyon is not the capital."), verdict(0.95))
    fake.script(API[ESCALATION], f.text("Paris is the capital of France."))
    server, config = _server(tmp_path, fake, keys)
    progress: list[str] = []
    data = await _complete(server, progress, task=TASK, strategy="cascade")
    assert (data["response"], data["model_used"]) == ("Paris is the capital of France.", ESCALATION)
    assert fake.models_called() == [API[DRAFT], API[VERIFIER], API[ESCALATION], API[VERIFIER]]
    assert _roles(config) == [("draft", DRAFT, "ok"), ("verifier", VERIFIER, "ok"), ("escalation", ESCALATION, "ok"),
                              ("verifier", VERIFIER, "ok")]  # fmt: skip
    expected = f"cascade: draft by {DRAFT}, verifier score 0.42 < 0.7, escalating to {ESCALATION}"
    assert expected in progress, progress
    report = data["strategy"]
    assert (report["accepted"], report["escalations"], report["rounds"]) == (True, 1, 2)
    assert report["steps"][1]["note"] == "Lyon is not the capital."
    # The verifier graded the draft's text, fenced as data, against the task.
    graded = fake.requests[1][2]["messages"][0]["content"]
    assert "Lyon." in json.dumps(graded) and TASK in json.dumps(graded)


async def test_an_unreadable_verdict_escalates_and_never_accepts(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("Paris."))
    fake.script(API[VERIFIER], f.text("Looks great to me!"), f.text("score: 1.7"))
    fake.script(API[ESCALATION], f.text("Paris."))
    fake.script(API[TIER1], f.text("Paris, France."))
    server, config = _server(tmp_path, fake, keys)
    data = await _complete(server, task=TASK, strategy="cascade")
    report = data["strategy"]
    assert (data["model_used"], report["accepted"], report["stopped_by"]) == (TIER1, False, "escalation_end")
    notes = [s["note"] for s in report["steps"] if s["role"] == "verifier"]
    assert "verdict unreadable" in notes[0] and "treated as a rejection" in notes[0]
    assert "outside 0-1" in notes[1]
    # The last step's answer is returned without another (useless) grading call.
    assert [r[0] for r in _roles(config)] == ["draft", "verifier", "escalation", "verifier", "escalation"]


async def test_cascade_stops_escalating_when_the_task_budget_has_no_room(tmp_path, fake, keys) -> None:
    # The draft is billed far more than its estimate: after it and the verifier, what the per-task budget
    # leaves cannot cover the escalation model's worst case, so it is never sent.
    fake.script(API[DRAFT], f.text("Lyon.", prompt=30_000, completion=4_000))
    fake.script(API[VERIFIER], verdict(0.1))
    server, config = _server(tmp_path, fake, keys, extra="[budgets]\nper_task_usd = 0.02\n")
    progress: list[str] = []
    data = await _complete(server, progress, task=TASK, strategy="cascade")
    assert fake.models_called() == [API[DRAFT], API[VERIFIER]]
    report = data["strategy"]
    assert (data["response"], report["accepted"], report["stopped_by"]) == ("Lyon.", False, "budget")
    assert any(f"escalation on {ESCALATION} not started" in m and "per_task budget" in m for m in progress), progress
    spent = sum(r["cost_pusd"] for r in attempt_rows(config)) / 1e12
    assert 0 < spent <= 0.02
    assert data["budgets"][0]["spent_usd"] == pytest.approx(spent)


async def test_cascade_never_runs_past_the_task_deadline(tmp_path, fake, keys) -> None:
    config = load_config(f.write_config(tmp_path, fake, timeout_s=30), env=keys)
    router = Router(Registry(config, keys, local_runtime=lambda: False))

    @asynccontextmanager
    async def runtime(r: Router) -> AsyncIterator[Runtime]:
        async with open_runtime(r, keys, toolbox=Calculator(), limits=Limits(deadline_s=1.5)) as rt:
            yield rt

    server = build_server(router, env=keys, runtime_factory=runtime)
    fake.script(API[DRAFT], f.text("Lyon."))
    fake.script(API[VERIFIER], f.hang())  # the grading outlives the task's deadline
    data = await _complete(server, task=TASK, strategy="cascade")
    report = data["strategy"]
    assert (data["response"], report["accepted"], report["stopped_by"]) == ("Lyon.", False, "deadline")
    assert API[ESCALATION] not in fake.models_called()
    roles = _roles(config)
    assert roles[:2] == [("draft", DRAFT, "ok"), ("verifier", VERIFIER, "error")]
    assert {r[0] for r in roles} == {"draft", "verifier"}


async def test_evaluate_optimise_feeds_back_and_stops_on_acceptance(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("Paris."), f.text("Paris, on the Seine, has been the capital since 987."))
    fake.script(API[ESCALATION], verdict(0.5, "Say since when."), verdict(0.9))
    server, config = _server(tmp_path, fake, keys)
    data = await _complete(server, task=TASK, strategy="evaluate_optimise")
    report = data["strategy"]
    assert data["response"] == "Paris, on the Seine, has been the capital since 987."
    assert (report["accepted"], report["rounds"], report["stopped_by"]) == (True, 2, "accepted")
    assert [(r["role"], r["model"]) for r in data["route"]["roles"]] == [("generator", DRAFT),
                                                                        ("evaluator", ESCALATION)]  # fmt: skip
    assert [r[0] for r in _roles(config)] == ["generator", "evaluator", "generator", "evaluator"]
    revision = fake.requests[2][2]["messages"]
    assert revision[-2] == {"role": "assistant", "content": "Paris."}
    assert "Say since when." in revision[-1]["content"]


async def test_evaluate_optimise_stops_at_the_round_bound(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("first"), f.text("second"), f.text("third"))
    fake.script(API[ESCALATION], verdict(0.3, "no"), verdict(0.6, "closer"), verdict(0.2, "worse"))
    server, _ = _server(tmp_path, fake, keys, extra="[strategies]\nmax_rounds = 2\n")
    data = await _complete(server, task=TASK, strategy="evaluate_optimise")
    report = data["strategy"]
    assert (report["accepted"], report["rounds"], report["stopped_by"]) == (False, 2, "max_rounds")
    assert data["response"] == "second"  # the best-scored answer of the rounds it ran
    assert fake.models_called() == [API[DRAFT], API[ESCALATION]] * 2


async def test_single_stays_the_default_and_records_no_role(tmp_path, fake, keys) -> None:
    server, config = _server(tmp_path, fake, keys)
    data = await _complete(server, task=TASK)
    assert data["route"]["strategy"] == "single" and data["route"]["roles"] == []
    assert data["strategy"]["stopped_by"] is None and len(fake.requests) == 1
    assert [r["role"] for r in attempt_rows(config)] == [None]


async def test_self_hosted_only_holds_for_every_role(tmp_path, fake, keys) -> None:
    config_path = f.write_config(tmp_path, fake)
    # Ollama answers on the fake's OpenAI-shaped port (write_config points it at a dead one).
    config_path.write_text(config_path.read_text().replace("http://127.0.0.1:9/v1", fake.openai_url))
    server, _ = host_server(config_path, keys, toolbox=Calculator())
    fake.script("qwen3:1.7b", f.text("Paris."), verdict(0.3), verdict(0.3))
    data = await _complete(server, task=TASK, strategy="cascade", self_hosted_only=True)
    models = {r["model"] for r in data["route"]["roles"]} | {a["model"] for a in data["attempts"]}
    assert models == {"ollama/qwen3:1.7b"}, models
    assert "verifies its own draft with a grading prompt" in " ".join(data["route"]["reasons"])
    assert set(fake.models_called()) == {"qwen3:1.7b"}


async def test_cost_report_shows_the_escalation_rate_and_the_savings_against_always_strong(
    tmp_path, fake, keys
) -> None:
    fake.script(API[DRAFT], f.text("Paris.", prompt=400, completion=30), f.text("Lyon.", prompt=400, completion=30))
    fake.script(API[VERIFIER], verdict(0.9), verdict(0.2))
    fake.script(API[ESCALATION], f.text("Paris."))
    server, config = _server(tmp_path, fake, keys)
    async with Client(server) as client:
        for _ in range(2):
            assert not (await client.call_tool("complete", {"task": TASK, "strategy": "cascade"})).is_error
        result = await client.call_tool("cost_report", {"group_by": "category"})
    assert result.structured_content is not None
    report = result.structured_content
    [line] = report["strategies"]
    assert (line["strategy"], line["category"], line["tasks"], line["escalated_tasks"]) == (
        "cascade", "qa_retrieval", 2, 1
    )  # fmt: skip
    assert line["escalation_rate"] == 0.5
    rows = attempt_rows(config)
    assert line["cost_usd"] == pytest.approx(sum(r["cost_pusd"] for r in rows) / 1e12)
    baseline = Registry(config, keys).resolve(config.routing.baseline_model)
    assert baseline is not None
    strong = token_cost(baseline, input_tokens=800, output_tokens=60)  # the two drafts' tokens
    assert strong is not None
    assert line["always_strong_usd"] == pytest.approx(float(strong))
    assert line["saved_usd"] == pytest.approx(float(strong) - line["cost_usd"]) and line["saved_usd"] > 0
    assert baseline.id in report["strategy_basis"]


async def test_cascade_over_a_real_stdio_serve_process(tmp_path, fake, keys) -> None:
    """The console server as a host runs it: a stdio subprocess, progress notifications on the wire."""
    quiet = "".join(f"[tool_servers.{name}]\nenabled = false\n" for name in ("web_search", "code_exec", "memory"))
    config_path = f.write_config(tmp_path, fake, extra=quiet)
    fake.script(API[DRAFT], f.text("Lyon."))
    fake.script(API[VERIFIER], verdict(0.1, "wrong city"), verdict(0.8))
    fake.script(API[ESCALATION], f.text("Paris."))
    env = cli_env(tmp_path / "home", MODEL_ROUTER_CONFIG=str(config_path), **ALL_KEYS)
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    with anyio.fail_after(60):
        async with Client(params) as client:
            result = await client.call_tool(
                "complete", {"task": TASK, "strategy": "cascade"}, progress_callback=on_progress
            )
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None
    assert (data["response"], data["model_used"], data["strategy"]["escalations"]) == ("Paris.", ESCALATION, 1)
    assert f"cascade: draft by {DRAFT}, verifier score 0.10 < 0.7, escalating to {ESCALATION}" in progress
    assert fake.models_called() == [API[DRAFT], API[VERIFIER], API[ESCALATION], API[VERIFIER]]


async def test_a_failed_escalation_returns_the_paid_draft_instead_of_an_error(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.text("Lyon."))
    fake.script(API[VERIFIER], verdict(0.3))
    fake.script(API[ESCALATION], f.unauthorized())  # stops that role at once: no other model can fix a bad key
    server, config = _server(tmp_path, fake, keys)
    data = await _complete(server, task=TASK, strategy="cascade")
    report = data["strategy"]
    assert (data["response"], report["accepted"], report["stopped_by"]) == ("Lyon.", False, "step_failed")
    assert "GEMINI_API_KEY" in report["steps"][-1]["note"]
    assert _roles(config) == [("draft", DRAFT, "ok"), ("verifier", VERIFIER, "ok"), ("escalation", ESCALATION, "error")]
    assert data["cost_usd"] == pytest.approx(sum(r["cost_pusd"] for r in attempt_rows(config)) / 1e12)


async def test_a_draft_that_no_model_can_give_fails_the_call_listing_the_attempts(tmp_path, fake, keys) -> None:
    fake.script(API[DRAFT], f.unauthorized())
    server, config = _server(tmp_path, fake, keys)
    async with Client(server) as client:
        result = await client.call_tool("complete", {"task": TASK, "strategy": "cascade"})
    assert result.is_error and "GROQ_API_KEY" in str(result.content)
    assert fake.models_called() == [API[DRAFT]]  # no verifier, no escalation
    assert _roles(config) == [("draft", DRAFT, "error")]


def test_the_cli_runs_a_cascade_and_says_how_it_ended(tmp_path, fake) -> None:
    fake.script(API[DRAFT], f.text("Paris."))
    fake.script(API[VERIFIER], verdict(0.95))
    config_path = f.write_config(tmp_path, fake)
    done = run_cli("complete", TASK, "--strategy", "cascade", "--no-tools", home=tmp_path / "home",
                   env={"MODEL_ROUTER_CONFIG": str(config_path), **ALL_KEYS})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Paris."
    assert "[cascade: 1 answer(s), accepted]" in done.stderr
    assert "verifier score 0.95 >= 0.7: accepted" in done.stderr
