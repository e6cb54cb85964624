"""One model's bounded tool loop: send, run the tools it asks for, send again, until it answers.

Bounds (`Limits`): at most `max_rounds` provider calls (the last one offers no tools, forcing an answer),
`max_tool_calls` tool calls, the task deadline, and an optional cost cap after which tools are no longer
offered. Tool results longer than 20,000 characters are cut. Before every call the attempt's worst case (its
earlier rounds' reported cost, plus the request exactly as it will be sent, counted conservatively by
`domain.tokens`, plus `max_tokens`) is reserved through the attempt's meter, after the call has a permit
from the rate limits (`accounting.rates`; `RateLimitReached` when none came in time), and every response's usage is
added to it; the loop never writes the ledger itself (the fallback chain closes the meter). Provider errors
propagate unchanged; a call that outlives its timeout becomes `ProviderTimeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import anyio

from server.accounting.attempts import AttemptMeter
from server.accounting.rates import RateGate
from server.domain.config import ModelConfig
from server.domain.messages import ChatRequest, FinishReason, Message, ToolCallPart, ToolResultPart
from server.domain.registry import Registry
from server.domain.tokens import request_input_tokens
from server.errors import ProviderTimeout
from server.execution.job import Job, Limits, Progress
from server.providers.base import ChatModel
from server.tools.toolbox import ToolBox

MAX_TOOL_RESULT_CHARS = 20_000


class ChatModels(Protocol):
    """Hands out the adapter for a model's provider (`providers.pool.ProviderPool`)."""

    def get(self, model: ModelConfig) -> ChatModel: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """The model's final text, why it stopped, and how many provider calls it took."""

    text: str
    finish_reason: FinishReason
    rounds: int


class ToolLoop:
    """Runs one job on one model within the limits."""

    def __init__(
        self,
        registry: Registry,
        models: ChatModels,
        toolbox: ToolBox,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rates: RateGate | None = None,
    ) -> None:
        self.registry = registry
        self.rates = rates
        self.models = models
        self.toolbox = toolbox
        self.limits = limits or Limits()
        self._clock = clock

    async def run(
        self, model: ModelConfig, job: Job, meter: AttemptMeter, deadline: float, progress: Progress
    ) -> Answer:
        """The loop; `deadline` is on `clock`. Raises `ProviderError`s and `BudgetExceeded` as they come."""
        chat = self.models.get(model)
        timeout = self.registry.provider(model).timeout_s
        messages = list(job.messages)
        while True:
            offer = job.tools if self._may_offer_tools(model, meter) else ()
            remaining = deadline - self._clock()
            task_deadline = f"the task deadline ({self.limits.deadline_s:g} s per task)"
            if remaining <= 0:
                raise ProviderTimeout(f"{task_deadline} passed", provider=model.provider, model=model.id)
            bound = min(timeout, remaining)
            which = f"providers.{model.provider}.timeout_s ({timeout:g} s)" if timeout <= remaining else task_deadline
            request = ChatRequest(
                model=model.api_model_id,
                messages=tuple(messages),
                tools=offer,
                max_tokens=job.max_tokens,
                reasoning_model=model.reasoning_model,
                timeout_s=bound,
            )
            input_tokens = request_input_tokens(request)
            permit = await self.rates.acquire(model, input_tokens + request.max_tokens) if self.rates else None
            try:
                await meter.reserve(input_tokens, request.max_tokens)
            except BaseException:
                if permit is not None:
                    await permit.finish(sent=False)  # refused before sending: it never counts
                raise
            try:
                # The adapter enforces timeout_s itself; this guard only catches one that does not.
                with anyio.fail_after(bound + 1):
                    response = await chat.chat(request)
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"no answer within {bound:.0f} s: {which} fired", provider=model.provider, model=model.id
                ) from exc
            finally:
                if permit is not None:
                    await permit.finish(sent=True)
            meter.add(response.usage)
            calls = response.message.tool_calls
            if not calls or not offer:
                text = response.message.text or ("[the model returned no text]" if meter.calls else "")
                return Answer(text, response.finish_reason, meter.calls)
            messages.append(response.message)
            messages.append(await self._run_tools(calls, job, meter))
            meter.tool_rounds += 1
            await progress(f"{model.id}: tool round {meter.calls} ({', '.join(c.name for c in calls)})")

    def _may_offer_tools(self, model: ModelConfig, meter: AttemptMeter) -> bool:
        """Tools stay on offer while every bound holds; the last round forces a final answer."""
        if not model.supports_tools or meter.calls >= self.limits.max_rounds - 1:
            return False
        if len(meter.tools_called) >= self.limits.max_tool_calls:
            return False
        if self.limits.max_cost_usd is not None:
            cost = meter.cost_usd
            if cost is not None and cost >= Decimal(str(self.limits.max_cost_usd)):
                return False
        return True

    async def _run_tools(self, calls: Sequence[ToolCallPart], job: Job, meter: AttemptMeter) -> Message:
        offered = {t.name for t in job.tools}
        results = []
        for call in calls:
            meter.tools_called.append(call.name)
            if call.name not in offered:
                text = f"unknown tool {call.name!r}; the tools available are: {', '.join(sorted(offered))}"
                results.append(ToolResultPart(call.id, call.name, text, is_error=True))
                continue
            outcome = await self.toolbox.call_tool(call.name, dict(call.arguments))
            text = outcome.text
            if len(text) > MAX_TOOL_RESULT_CHARS:
                text = text[:MAX_TOOL_RESULT_CHARS] + "\n[output truncated]"
            results.append(ToolResultPart(call.id, call.name, text, is_error=outcome.is_error))
        return Message(role="tool", parts=tuple(results))
