"""The LLM analyser (`[routing] analyzer = "llm:<model id>"`): a model reads the task and answers in JSON.

The verdict is validated against a schema (category, complexity, strong_score, requires_tools, reasons)
and cached per prompt (SHA-256), so a repeated task costs nothing and routes the same way. Any failure —
not connected, timeout, provider error, invalid JSON, unknown category, out-of-range values — falls back
to the built-in analyser with the reason at the head of the analysis' reasons.

It never calls a provider or writes the ledger itself: the runtime connects an `Ask` (built in
`execution.ask`) that sends one request through the accounting hook, so each call is a committed ledger row
(category `router_analysis`) before its verdict is used. A call that cannot be recorded fails like any
other, and the built-in analyser answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.analysis.analyzers import BuiltinAnalyzer
from server.analysis.local import analyze_task
from server.domain.config import ModelConfig
from server.domain.messages import ChatRequest, ChatResponse, Message
from server.domain.tasks import Category, TaskAnalysis
from server.errors import InvalidTask, RouterError, reason

CACHE_SIZE = 2048
_TASK_CHARS = 12_000  # the head of long tasks is enough to judge them; keeps the analyser call cheap
_CATEGORIES = ", ".join(c.value for c in Category)
PROMPT = f"""\
You classify tasks for an LLM router. Read the task and answer with one JSON object and nothing else:
{{"category": one of [{_CATEGORIES}],
 "complexity": integer 1 (trivial) to 5 (extremely complex),
 "strong_score": number 0 to 1, how likely a small model would fail and a frontier model is needed,
 "requires_tools": true if it needs web search, code execution or memory,
 "reasons": up to 3 short strings}}"""

# Sends one request to the analyser's model and returns its answer once the call is in the ledger; raises
# `RouterError`s (provider errors, `NotRecorded`).
Ask = Callable[[ChatRequest], Awaitable[ChatResponse]]


class Verdict(BaseModel):
    """The JSON object the analyser model must return."""

    model_config = ConfigDict(extra="ignore")

    category: Category
    complexity: int = Field(ge=1, le=5)
    strong_score: float = Field(ge=0, le=1)
    requires_tools: bool = False
    reasons: list[str] = Field(default_factory=list, max_length=10)


class LlmAnalyzer:
    """Asks a configured model; falls back to the rules on any failure."""

    def __init__(self, model_id: str, *, timeout_s: float = 10.0, fallback: BuiltinAnalyzer | None = None) -> None:
        self.model_id = model_id
        self.timeout_s = timeout_s
        self.fallback = fallback or BuiltinAnalyzer()
        self._ask_model: Ask | None = None
        self._model: ModelConfig | None = None
        self._unusable = "not connected to a provider (no runtime)"
        self._cache: OrderedDict[str, Verdict] = OrderedDict()

    @property
    def version(self) -> str:
        return f"llm:{self.model_id}+{self.fallback.version}"

    @property
    def thresholds(self) -> Mapping[str, float]:
        return {}

    def connect(self, ask: Ask, model: ModelConfig) -> None:
        """Give the analyser the way to ask `model` (metered and recorded by the runtime)."""
        self._ask_model, self._model = ask, model

    def disable(self, reason: str) -> None:
        """Make every analysis fall back, saying `reason` (e.g. the model is unknown or has no key)."""
        self._ask_model = self._model = None
        self._unusable = reason

    async def analyze(self, task: str, history_tokens: int = 0) -> TaskAnalysis:
        if not task.strip():
            raise InvalidTask("task is empty: pass the text of the task to analyse")
        key = hashlib.sha256(task.encode("utf-8", "surrogatepass")).hexdigest()
        verdict = self._cache.get(key)
        cached = verdict is not None
        if verdict is None:
            try:
                verdict = await self._ask(task)
            except _Failed as exc:
                return self.fallback.analyze_now(
                    task, history_tokens, notes=(f"LLM analyser {self.model_id} failed: {reason(exc)}; the built-in "
                                                 "analyser answered",))  # fmt: skip
            self._remember(key, verdict)
        note = f"LLM analyser {self.model_id}{' (cached)' if cached else ''}: " + "; ".join(verdict.reasons[:3])
        tools = self.fallback.tool_need
        analysis = analyze_task(
            task, history_tokens=history_tokens, category=verdict.category, strong_score=verdict.strong_score,
            analyzer=f"llm:{self.model_id}", notes=(note.rstrip(": "),),
            tool_need=tools.predict(task) if tools else None,
        )  # fmt: skip
        return _with_verdict(analysis, verdict)

    def _remember(self, key: str, verdict: Verdict) -> None:
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _ask(self, task: str) -> Verdict:
        if self._ask_model is None or self._model is None:
            raise _Failed(self._unusable)
        model = self._model
        request = ChatRequest(
            model=model.api_model_id,
            messages=(Message.system(PROMPT), Message.user(task[:_TASK_CHARS])),
            max_tokens=300,
            temperature=None if model.reasoning_model else 0.0,
            reasoning_model=model.reasoning_model,
            timeout_s=self.timeout_s,
        )
        try:
            with anyio.fail_after(self.timeout_s):
                response = await self._ask_model(request)
        except TimeoutError:
            raise _Failed(f"no answer within {self.timeout_s:g} s") from None
        except RouterError as exc:
            raise _Failed(reason(exc)) from None
        return parse_verdict(response.message.text)


class _Failed(Exception):
    """The LLM verdict cannot be used; the message is recorded in the reasons."""


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_verdict(text: str) -> Verdict:
    """The verdict in a model's answer (a JSON object, optionally in a code fence)."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise _Failed("the answer was not a JSON object")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise _Failed(f"invalid JSON ({exc.msg})") from None
    try:
        return Verdict.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise _Failed(f"invalid verdict: {where}: {first['msg']}") from None


def _with_verdict(analysis: TaskAnalysis, verdict: Verdict) -> TaskAnalysis:
    """The LLM's complexity and tool need replace the rules'; token estimates stay the rules'."""
    return replace(
        analysis, complexity=verdict.complexity, requires_tools=analysis.requires_tools or verdict.requires_tools
    )
