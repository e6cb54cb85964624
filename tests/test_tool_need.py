"""Tool need: which tools a task asks for, measured on the labelled set, and what `complete` offers the model.

`complete` runs against the real tool sub-servers (stdio children) and the fake provider APIs; what a task
is offered is read from the request the provider received.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client

from server.analysis import embedding, tool_need_model
from server.analysis.analyzers import BuiltinAnalyzer, load_analyzer
from server.analysis.local import analyze_task
from server.analysis.tool_need import predict
from server.domain.config import load_config
from server.domain.registry import Registry
from server.domain.tasks import TOOL_KINDS
from server.mcp.app import build_server
from server.routing.router import Router
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import run_cli

DATA = Path(__file__).parent / "data" / "tool_need.jsonl"
HELD_OUT = DATA.with_name("tool_need_heldout.jsonl")
CHAT = DATA.with_name("tool_need_chat.jsonl")
TRAIN_SETS = [DATA, HELD_OUT, *(DATA.with_name(f"tool_need_heldout{n}.jsonl") for n in (2, 3)), CHAT]
NEVER_TRAINED = [DATA.with_name("tool_need_heldout4.jsonl"), DATA.with_name("tool_need_first_person.jsonl")]
HELD_OUT_SETS = [*TRAIN_SETS[1:], *NEVER_TRAINED]
DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
SHIPPED_TOOL_NEED = Path(tool_need_model.__file__).resolve().parents[1] / "data" / tool_need_model.SHIPPED
# About the user's own facts, with none of the rules' cue words ("how should" reads as advice to them).
OWN_FACTS = "How should the anniversary dinner be booked, given the restaurant we settled on?"
# Issue 18's reviewer: ordinary first-person chat the first learned model offered the memory tools to.
REVIEWER_PROMPTS = tuple((DATA.parent / "tool_need_reviewer_first_person.txt").read_text().splitlines())
needs_encoder = pytest.mark.skipif(not embedding.available(), reason=f"the sentence encoder: {embedding.INSTALL_HINT}")
COMPUTE = "Use Python to compute 6*7*1000+1 and tell me the result."
ENVIRONMENT = "Run Python code that lists your environment variables and tell me what it prints."


def _rows(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("task", "kinds"),
    [
        (COMPUTE, ("code",)),
        (ENVIRONMENT, ("code",)),
        ("Write a function to reverse a linked list, then test it on [1, 2, 3].", ("code",)),
        ("Search the web for reviews of the Framework 13 laptop.", ("search",)),
        ("As of April 2025, who is the mayor of Paris?", ("search",)),
        ("Summarise https://example.org/report.html in three bullet points.", ("fetch",)),
        ("Remember that my daughter's name is Ada.", ("memory",)),
        ("What did I tell you earlier about my flight?", ("memory",)),
        ("I forgot which hotel we picked. Can you remind me?", ("memory",)),
        ("Look up today's weather in Oslo, then use Python to convert it to Fahrenheit.", ("code", "search")),
        ("Work out the median of 3, 9, 4 and 12 in Python.", ("code",)),
        ("Is 2**61 - 1 prime? Run it to check.", ("code",)),
        ("Web search: best hiking trails near Zurich", ("search",)),
        ("Will it rain in Lisbon tomorrow?", ("search",)),
        ("Who won the latest Champions League match?", ("search",)),
        ("Visit python.org/about and tell me what it says about the licence.", ("fetch",)),
        ("Store my shoe size: 43.", ("memory",)),
        ("As I mentioned, my dentist is Dr. Lee. When is our next appointment?", ("memory",)),
        ("Which hotel did we book in Rome?", ("memory",)),
    ],
)
def test_explicit_requests_for_a_tool_set_requires_tools_with_their_kinds(task: str, kinds: tuple[str, ...]) -> None:
    analysis = analyze_task(task)
    assert analysis.tool_kinds == kinds and analysis.requires_tools
    assert all(any(r.startswith(f"tool need {kind}:") for r in analysis.reasons) for kind in kinds)


@pytest.mark.parametrize(
    "task",
    [
        "Write a Python function that returns the nth Fibonacci number.",
        "What is 6*7?",
        "Explain what a web search engine does.",
        "Write a script that downloads every image from https://example.com/gallery.",
        "Why should you never run untrusted code?",
        "Write unit tests for a function that parses ISO dates.",
        "Write a headline for an article on the latest discovery in battery chemistry.",
        "How should I name my new dog?",
        "I want to run a marathon this year; how should I train?",
        "How can I use Python to parse JSON?",
        "Write a program that reads www.example.com/data.csv and sums the second column.",
        "What is my star sign if I was born on 1 May?",
        "How much protein do I need per day?",
        "What is the largest planet in our solar system?",
        "Forecast the change in y for a random walk with drift b.",
    ],
)
def test_code_writing_arithmetic_and_questions_about_tools_need_none(task: str) -> None:
    analysis = analyze_task(task)
    assert (analysis.tool_kinds, analysis.requires_tools, analysis.tools_offered) == ((), False, ())


def test_a_url_or_a_date_inside_pasted_content_is_not_a_request() -> None:
    article = "Write a summary of the following article:\n\n" + "Markets fell sharply today. " * 40
    article += "\n\nSource: https://news.example.com/markets 2025"
    dialogue = "Summarize this dialogue: Ann: I told you last time, the train leaves at 9.\nBen: Right, sorry."
    document = "Document is as follows. " + "Licensed under http://creativecommons.org/licenses/by/4.0/. " * 3
    for task in (article, dialogue, document):
        assert predict(task).kinds == (), task[:60]
    # A question asked after the document is read.
    assert predict(document + "\n\nSearch the web: is this licence still current?").kinds == ("search",)


def test_the_labelled_set_is_documented_and_large_enough() -> None:
    rows = _rows()
    held_out = [row for path in HELD_OUT_SETS for row in _rows(path)]
    assert len(rows) >= 150 and len({r["id"] for r in rows}) == len(rows)
    assert not {r["prompt"] for r in rows} & {r["prompt"] for r in held_out}
    assert len({r["prompt"] for r in held_out}) == len(held_out)  # no prompt in two held-out sets
    for row in rows + held_out:
        assert row["prompt"].strip() and row["source"] and row["license"], row["id"]
        assert set(row["tools"]) <= set(TOOL_KINDS) and isinstance(row["rephrased"], bool), row["id"]
    positives = sum(bool(r["tools"]) for r in rows)
    assert min(positives, len(rows) - positives) >= 60  # hard negatives as well as positives
    assert {k for r in rows for k in r["tools"]} == set(TOOL_KINDS)


def test_precision_and_recall_on_the_labelled_set_meet_the_targets() -> None:
    rows = _rows()
    predicted = [bool(predict(r["prompt"]).kinds) for r in rows]
    truth = [bool(r["tools"]) for r in rows]
    hits = sum(p and t for p, t in zip(predicted, truth, strict=True))
    precision, recall = hits / sum(predicted), hits / sum(truth)
    assert precision >= 0.85 and recall >= 0.90, f"precision {precision:.3f}, recall {recall:.3f}"
    # Where a tool is needed, no other kind is offered with it.
    extra = [r["id"] for r in rows if r["tools"] and set(predict(r["prompt"]).kinds) - set(r["tools"])]
    assert not extra


@pytest.mark.parametrize("task", [COMPUTE, ENVIRONMENT])
def test_model_router_route_shows_the_kinds_and_the_tools_that_would_be_offered(tmp_path: Path, task: str) -> None:
    done = run_cli("route", task, "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    route = json.loads(done.stdout)
    assert route["requires_tools"] and route["tool_kinds"] == ["code"]
    assert route["tools_offered"] == ["execute_python", "validate_python_syntax"]
    text = run_cli("route", task, home=tmp_path).stdout
    assert "tools:      execute_python, validate_python_syntax (tool need: code)" in text


# ── the learned tool-need model (rules OR a per-kind classifier), the default with the encoder ────────────


@needs_encoder
def test_the_default_analyser_keeps_the_issue_prompts_code_and_adds_the_kinds_the_rules_miss(tmp_path: Path) -> None:
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}))
    shipped = tool_need_model.load_shipped()
    for task in (COMPUTE, ENVIRONMENT):
        analysis = analyzer.analyze_now(task)  # type: ignore[attr-defined]
        assert analysis.requires_tools and analysis.tool_kinds == ("code",), task
        assert any(r.startswith("tool need code: asks to ") for r in analysis.reasons)
    assert predict(OWN_FACTS).kinds == ()  # the rules alone miss it
    analysis = analyzer.analyze_now(OWN_FACTS)  # type: ignore[attr-defined]
    assert analysis.requires_tools and analysis.tool_kinds == ("memory",)
    assert any(r.startswith(f"tool need memory: {shipped.version} p=") for r in analysis.reasons)
    for task in ("Write a Python function that returns the nth prime.", "Explain what a web search engine does."):
        analysis = analyzer.analyze_now(task)  # type: ignore[attr-defined]
        assert not analysis.requires_tools and analysis.tool_kinds == (), task


@needs_encoder
def test_first_person_chat_that_brings_its_own_context_is_offered_no_memory_tools(tmp_path: Path) -> None:
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}))
    for task in REVIEWER_PROMPTS:
        analysis = analyzer.analyze_now(task)  # type: ignore[attr-defined]
        assert "memory" not in analysis.tool_kinds and "memory_search" not in analysis.tools_offered, task
    # A question about what the user stored earlier still gets them.
    analysis = analyzer.analyze_now("What was the name of the vet I mentioned?")  # type: ignore[attr-defined]
    assert analysis.tool_kinds == ("memory",) and analysis.tools_offered == ("memory_search", "memory_store")


def test_without_the_encoder_tool_need_is_the_rules_alone(tmp_path: Path) -> None:
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}), encoder_available=lambda: False)
    assert analyzer.analyze_now(OWN_FACTS).tool_kinds == ()  # type: ignore[attr-defined]
    assert analyzer.analyze_now(COMPUTE).tool_kinds == ("code",)  # type: ignore[attr-defined]


_MIS_SHAPED = {"format": tool_need_model.FORMAT, "weights": [1.0], "thresholds": {"memory": "high"}}


@needs_encoder
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not gzip", "corrupt (not gzip'd JSON)"),
        (gzip.compress(json.dumps(_MIS_SHAPED).encode()), "incomplete or mis-shaped"),
        (gzip.compress(json.dumps({"format": tool_need_model.FORMAT}).encode()), "incomplete or mis-shaped"),
    ],
)
def test_an_unreadable_trained_tool_need_model_leaves_the_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, says: str
) -> None:
    (tmp_path / tool_need_model.SHIPPED).write_bytes(content)
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}))
    assert analyzer.analyze_now(OWN_FACTS).tool_kinds == ()  # type: ignore[attr-defined]
    assert says in caplog.text and "run `model-router train" in caplog.text
    assert "tool need comes from the rules" in caplog.text


@needs_encoder
def test_every_analyser_answers_with_the_tool_need_model_and_logs_its_version(tmp_path: Path) -> None:
    shipped = tool_need_model.load_shipped()
    for name in ("auto", "local", "llm:openai/gpt-4.1-nano"):
        path = tmp_path / f"{name.replace(':', '_').replace('/', '_')}.toml"
        path.write_text(f'[routing]\nanalyzer = "{name}"\n', encoding="utf-8")
        analyzer = load_analyzer(load_config(path, env={"MODEL_ROUTER_HOME": str(tmp_path)}))
        assert analyzer.version.endswith(f"+{shipped.version}"), name
    # The LLM analyser, not connected here, answers through its fallback: the rules with the model.
    analysis = anyio.run(analyzer.analyze, OWN_FACTS)
    assert analysis.tool_kinds == ("memory",) and any(shipped.version in r for r in analysis.reasons)


@needs_encoder
def test_the_category_is_the_same_with_or_without_the_tool_need_model() -> None:
    """The model adds tools to offer; the category follows the cues' explicit requests only."""
    model = tool_need_model.load_shipped()
    with_model, without = BuiltinAnalyzer(tool_need=model), BuiltinAnalyzer()
    for task in (OWN_FACTS, COMPUTE, *REVIEWER_PROMPTS, "What did I say my sister's birthday was?"):
        assert with_model.analyze_now(task).category == without.analyze_now(task).category, task
    assert with_model.analyze_now(OWN_FACTS).tool_kinds == ("memory",)
    assert without.analyze_now(OWN_FACTS).tool_kinds == ()


@needs_encoder
def test_a_broken_model_file_does_not_stop_a_retrain(tmp_path: Path) -> None:
    (tmp_path / tool_need_model.SHIPPED).write_bytes(gzip.compress(json.dumps(_MIS_SHAPED).encode()))
    labelled = tmp_path / "mine.jsonl"
    labelled.write_text("".join(json.dumps(row) + "\n" for row in _rows()[:80]), encoding="utf-8")
    done = run_cli("train", str(labelled), "--tool-need", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert tool_need_model.load(tmp_path / tool_need_model.SHIPPED).thresholds  # replaced by a good one


@needs_encoder
@pytest.mark.skipif(not DEV.is_file(), reason=f"{DEV} is absent (the public eval data is not shipped)")
def test_training_on_the_five_sets_and_dev_reproduces_the_shipped_tool_need_model(tmp_path: Path) -> None:
    out = tmp_path / "again.json.gz"
    files = [str(path) for path in TRAIN_SETS]
    excluded = [arg for path in NEVER_TRAINED for arg in ("--exclude", str(path))]
    done = run_cli("train", *files, str(DEV), "--tool-need", *excluded, "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SHIPPED_TOOL_NEED.read_bytes()
    assert "memory  p >= " in done.stdout and "out-of-fold precision" in done.stdout


def test_training_tool_need_on_unlabelled_lines_says_what_is_needed(tmp_path: Path) -> None:
    data = tmp_path / "few.jsonl"
    data.write_text(json.dumps({"prompt": "Run this.", "tools": ["code"]}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    done = run_cli("train", str(data), "--tool-need", home=tmp_path)
    assert done.returncode != 0 and "few.jsonl:2: expected {prompt, tools: [kinds]} or {prompt" in done.stderr
    data.write_text(json.dumps({"prompt": "Run this.", "tools": None}) + "\n")  # not a list: not "no tool"
    done = run_cli("train", str(data), "--tool-need", home=tmp_path)
    assert done.returncode != 0 and "few.jsonl:1: expected {prompt, tools: [kinds]}" in done.stderr
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps({"prompt": "Run this.", "tools": []}) + "\n")
    data.write_text(json.dumps({"prompt": "Run this.", "tools": ["code"]}) + "\n")
    done = run_cli("train", str(data), str(again), "--tool-need", home=tmp_path)
    assert done.returncode != 0 and f"the same prompt is labelled differently at {data}:1" in done.stderr
    data.write_bytes(b"\xff\xfe not utf-8")
    done = run_cli("train", str(data), "--tool-need", home=tmp_path)
    assert done.returncode != 0 and "it is not UTF-8 text" in done.stderr
    data.write_text(json.dumps({"prompt": "Run this.", "tools": ["code"]}) + "\n")
    done = run_cli("train", str(data), "--tool-need", home=tmp_path)
    assert done.returncode != 0 and "need at least 10 that need a tool and 10 that need none" in done.stderr
    done = run_cli("train", str(data), str(data), home=tmp_path)
    assert done.returncode != 0 and "several files are read only with --tool-need" in done.stderr
    done = run_cli("train", str(data), "--exclude", str(data), home=tmp_path)
    assert done.returncode != 0 and "--exclude is read only with --tool-need" in done.stderr


@needs_encoder
def test_training_tool_need_never_reads_a_prompt_of_an_excluded_held_out_file(tmp_path: Path) -> None:
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps(row) + "\n" for row in _rows()[:5]))
    out = tmp_path / "model.json.gz"
    done = run_cli("train", str(DATA), "--tool-need", "--exclude", str(held_out), "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"trained tool_need on {len(_rows()) - 5} prompts" in done.stdout
    assert tool_need_model.load(out).info["prompts"] == len(_rows()) - 5


# ── what complete offers ────────────────────────────────────────────────────────────────────────────────


def _offered(request: tuple[str, str, dict[str, Any], dict[str, str]]) -> set[str]:
    return {tool["function"]["name"] for tool in request[2].get("tools", [])}


def _server(tmp_path: Path, fake: f.FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The MCP server with every provider key set, pointed at the fake providers."""
    for name, value in ALL_KEYS.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    config = load_config(f.write_config(tmp_path, fake), env=env)
    return build_server(Router(Registry(config, env, local_runtime=lambda: False)), env=env)


@pytest.mark.slow
@pytest.mark.anyio
async def test_complete_offers_each_task_exactly_the_tools_its_kinds_need(
    tmp_path: Path, fake: f.FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _server(tmp_path, fake, monkeypatch)
    fake.script(
        "gpt-4.1",
        f.tool_calls(("execute_python", {"code": "print(6*7*1000+1)"})),
        f.text("6*7*1000+1 = 42001."),
        *[f.text("done")] * 5,
    )
    calls = [
        (COMPUTE, True, {"execute_python", "validate_python_syntax"}),
        (ENVIRONMENT, True, {"execute_python", "validate_python_syntax"}),
        ("Search the web for this week's top story about the James Webb telescope.", True, {"web_search", "fetch_url"}),
        ("Write a Python function that checks whether a string is a palindrome.", True, set()),
        ("Write a Python function that checks whether a string is a palindrome, then run it on 'level'.", True,
         {"execute_python", "validate_python_syntax"}),
        (COMPUTE, False, set()),  # enable_tools=false: nothing is offered
    ]  # fmt: skip
    results = []
    with anyio.fail_after(90):
        async with Client(server) as client:
            for task, enable_tools, _ in calls:
                arguments = {"task": task, "force_model": "openai/gpt-4.1", "enable_tools": enable_tools}
                results.append(await client.call_tool("complete", arguments))
    assert all(not r.is_error for r in results), [r.content for r in results if r.is_error]
    first = results[0].structured_content
    assert first["tools_called"] == ["execute_python"] and "42001" in first["response"]
    assert "42001" in fake.requests[1][2]["messages"][-1]["content"]  # the real sandbox ran the code
    assert first["route"]["requires_tools"] and first["route"]["tool_kinds"] == ["code"]
    # The first task took two requests (tool call, then answer); every other task one.
    first_requests = [fake.requests[0], *fake.requests[2:]]
    for (task, _, expected), request in zip(calls, first_requests, strict=True):
        assert _offered(request) == expected, task
    assert results[2].structured_content["route"]["tools_offered"] == ["web_search", "fetch_url"]


@needs_encoder
@pytest.mark.slow
@pytest.mark.anyio
async def test_complete_offers_the_memory_tools_for_a_question_about_the_users_own_facts(
    tmp_path: Path, fake: f.FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _server(tmp_path, fake, monkeypatch)
    fake.script("gpt-4.1", f.text("I have nothing stored about that dinner yet."))
    with anyio.fail_after(90):
        async with Client(server) as client:
            arguments = {"task": OWN_FACTS, "force_model": "openai/gpt-4.1"}
            result = await client.call_tool("complete", arguments)
    assert not result.is_error, result.content
    route = result.structured_content["route"]
    assert route["tool_kinds"] == ["memory"] and route["tools_offered"] == ["memory_search", "memory_store"]
    assert _offered(fake.requests[0]) == {"memory_search", "memory_store"}
