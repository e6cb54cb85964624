"""The dispatcher: walks a route's chain, runs each model's bounded tool loop, records every attempt.

Policy depends only on the error type (see `server.errors`):
- rate limited / timeout / unavailable → bounded retry of the same model (backoff with jitter, honouring
  Retry-After up to a cap), then the next model;
- context too long → only models with a larger context window than the one that refused;
- auth / bad request → stop at once with the provider's reason (auth errors name the env var);
- every model failed → `AllModelsFailed` listing each attempt.
The walk is a loop over a queue, never recursion, and a model is tried at most once per chain (retries
of the same call aside). This is the only place that calls providers and writes the ledger.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import anyio

from server.accounting.budget import BudgetGuard
from server.domain.config import ModelConfig
from server.domain.messages import (
    ChatRequest,
    FinishReason,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from server.domain.pricing import token_cost
from server.domain.registry import Registry
from server.errors import (
    AllModelsFailed,
    AuthError,
    BadRequest,
    BudgetExceeded,
    ContextTooLong,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RouterError,
    TaskStopped,
)
from server.providers.base import ChatModel
from server.store.interface import AttemptLedger, AttemptRecord
from server.tools.toolbox import ToolBox

Progress = Callable[[str], Awaitable[None]]
_MAX_TOOL_RESULT_CHARS = 20_000


class ModelPool(Protocol):
    """Hands out one adapter per model's provider."""

    def get(self, model: ModelConfig) -> ChatModel: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound of one `complete` call (documented in the README)."""

    max_rounds: int = 10
    max_tool_calls: int = 25
    deadline_s: float = 300.0
    max_cost_usd: float | None = None
    retries_per_model: int = 1
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    max_retry_after_s: float = 20.0
    # A provider that refused the connection is skipped this long (unless it is the last hope).
    unreachable_skip_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    """One task, assembled and ready to send."""

    task_id: str
    session_id: str | None
    category: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    max_tokens: int
    estimated_input_tokens: int
    estimated_output_tokens: int


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What one attempt did, as reported to the caller."""

    model: str
    provider: str
    outcome: str
    error_type: str | None
    error: str | None
    latency_ms: float
    usage: Usage
    cost_usd: Decimal | None


@dataclass
class Outcome:
    """A successful completion and everything it took to get there."""

    text: str
    model: ModelConfig
    finish_reason: FinishReason
    attempts: list[AttemptInfo]
    tools_called: list[str]
    rounds: int

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def cost_usd(self) -> Decimal | None:
        """Sum over attempts; None when an attempt that used tokens had no price."""
        total = Decimal(0)
        for attempt in self.attempts:
            if attempt.cost_usd is None:
                if attempt.usage.input_tokens or attempt.usage.output_tokens:
                    return None
                continue
            total += attempt.cost_usd
        return total


@dataclass
class _LoopState:
    messages: list[Message]
    usage: Usage = field(default_factory=Usage)
    tools_called: list[str] = field(default_factory=list)
    rounds: int = 0
    tool_rounds: int = 0
    reservations: list[int] = field(default_factory=list)


async def _no_progress(message: str) -> None:
    return None


class Dispatcher:
    """Runs jobs against a chain of models; owns retries, fallback, the tool loop and ledger writes."""

    def __init__(
        self,
        registry: Registry,
        pool: ModelPool,
        toolbox: ToolBox,
        ledger: AttemptLedger,
        limits: Limits | None = None,
        *,
        budget: BudgetGuard | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.toolbox = toolbox
        self.ledger = ledger
        self.limits = limits or Limits()
        self.budget = budget
        self._sleep = sleep
        self._jitter = jitter
        self._unreachable_until: dict[str, float] = {}

    async def run(self, chain: Sequence[ModelConfig], job: Job, progress: Progress = _no_progress) -> Outcome:
        """Try the chain in order until one model answers."""
        deadline = time.monotonic() + self.limits.deadline_s
        attempts: list[AttemptInfo] = []
        queue, tried, min_window = list(chain), set(), 0
        while queue:
            model = queue.pop(0)
            if model.id in tried or model.context_window <= min_window:
                continue
            if queue and self._unreachable_until.get(model.provider, 0.0) > time.monotonic():
                # It refused a connection moments ago: the next model is the better bet.
                note = f"{model.provider} could not be reached moments ago; skipped"
                attempts.append(
                    AttemptInfo(model.id, model.provider, "skipped", "Unreachable", note, 0.0, Usage(), None)
                )
                continue
            tried.add(model.id)
            outcome = await self._try_model(model, job, attempts, deadline, progress)
            if isinstance(outcome, Outcome):
                return outcome
            if isinstance(outcome, ContextTooLong):
                min_window = model.context_window
            if time.monotonic() >= deadline:
                break
        raise AllModelsFailed(_failure_summary(attempts, deadline), attempts)

    async def _try_model(
        self, model: ModelConfig, job: Job, attempts: list[AttemptInfo], deadline: float, progress: Progress
    ) -> Outcome | ProviderError | None:
        """One model with its bounded retries; returns the outcome or the error that ended it."""
        last: ProviderError | None = None
        for retry in range(self.limits.retries_per_model + 1):
            if time.monotonic() >= deadline:
                return last
            await progress(f"attempt {len(attempts) + 1}: {model.id}" + (f" (retry {retry})" if retry else ""))
            try:
                return await self._attempt(model, job, attempts, deadline, progress)
            except BudgetExceeded:
                return None  # a cheaper model further down the chain may fit
            except (AuthError, BadRequest) as exc:
                raise TaskStopped(f"{model.id}: {exc}", attempts) from exc
            except ContextTooLong as exc:
                return exc
            except ProviderError as exc:
                last = exc
                if exc.status is None and isinstance(exc, ProviderUnavailable):  # could not connect at all
                    self._unreachable_until[model.provider] = time.monotonic() + self.limits.unreachable_skip_s
                    return exc
                delay = self._retry_delay(exc, retry)
                if delay is None or time.monotonic() + delay >= deadline:
                    return exc
                await self._sleep(delay)
        return last

    def _retry_delay(self, exc: ProviderError, retry: int) -> float | None:
        """Seconds to wait before retrying the same model, or None to move on."""
        if retry >= self.limits.retries_per_model:
            return None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            if exc.retry_after_s > self.limits.max_retry_after_s:
                return None  # the next model is faster than waiting
            return exc.retry_after_s + self._jitter() * 0.1 * max(exc.retry_after_s, 0.1)
        backoff = min(self.limits.backoff_cap_s, self.limits.backoff_base_s * 2**retry)
        return backoff * (0.5 + self._jitter() / 2)

    async def _attempt(
        self, model: ModelConfig, job: Job, attempts: list[AttemptInfo], deadline: float, progress: Progress
    ) -> Outcome:
        """The tool loop on one model; leaves exactly one ledger row unless a budget refused it before any call."""
        state = _LoopState(messages=list(job.messages))
        started, t0 = time.time(), time.monotonic()
        outcome = "error"
        error: RouterError | None = None
        try:
            text, finish = await self._loop(model, job, state, deadline, progress)
            outcome = "ok"
        except BudgetExceeded as exc:
            error = exc
            if state.rounds == 0:  # nothing was sent: no ledger row, only the caller's list
                outcome = "refused"
                attempts.append(
                    AttemptInfo(model.id, model.provider, "refused", "BudgetExceeded", str(exc), 0.0, Usage(), None)
                )
            raise
        except ProviderError as exc:
            error = exc
            raise
        except TimeoutError as exc:  # our own deadline guard around a provider call
            error = ProviderTimeout(f"no answer before the task deadline: {exc}", provider=model.provider)
            raise error from exc
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        finally:
            if outcome != "refused":
                info = await self._record(model, job, state, started, t0, outcome, error, len(attempts) + 1)
                attempts.append(info)
        return Outcome(text, model, finish, attempts, state.tools_called, state.rounds)

    async def _loop(
        self, model: ModelConfig, job: Job, state: _LoopState, deadline: float, progress: Progress
    ) -> tuple[str, FinishReason]:
        chat = self.pool.get(model)
        timeout = self.registry.provider(model).timeout_s
        while True:
            offer = job.tools if self._may_offer_tools(model, state) else ()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderTimeout("the task deadline passed", provider=model.provider, model=model.id)
            await self._reserve(model, job, state)
            request = ChatRequest(
                model=model.api_model_id,
                messages=tuple(state.messages),
                tools=offer,
                max_tokens=job.max_tokens,
                reasoning_model=model.reasoning_model,
                timeout_s=min(timeout, remaining),
            )
            # The adapter enforces timeout_s itself; this guard only catches one that does not.
            with anyio.fail_after(min(timeout, remaining) + 1):
                response = await chat.chat(request)
            state.usage = state.usage + response.usage
            state.rounds += 1
            calls = response.message.tool_calls
            if not calls or not offer:
                return response.message.text or _empty_note(state), response.finish_reason
            state.messages.append(response.message)
            state.messages.append(await self._run_tools(calls, job, state))
            state.tool_rounds += 1
            await progress(f"{model.id}: tool round {state.rounds} ({', '.join(c.name for c in calls)})")

    async def _reserve(self, model: ModelConfig, job: Job, state: _LoopState) -> None:
        """Hold this round's maximum cost against the budgets; $0 models are never held back."""
        if self.budget is None or not self.budget.active:
            return
        extra_chars = sum(
            len(p.text if isinstance(p, TextPart) else str(p))
            for m in state.messages[len(job.messages) :]
            for p in m.parts
        )
        cost = token_cost(
            model, input_tokens=job.estimated_input_tokens + extra_chars // 4, output_tokens=job.max_tokens
        )
        if cost is None:
            raise BudgetExceeded(
                f"{model.id} has no price in the registry, so the configured budgets cannot be enforced on it; "
                "add its prices to the config or pick a priced model",
                budget="unpriced",
            )
        if cost == 0:
            return
        state.reservations.append(await self.budget.reserve(job.task_id, job.session_id, model.id, cost))

    def _may_offer_tools(self, model: ModelConfig, state: _LoopState) -> bool:
        """Tools stay on offer while every bound holds; the last round forces a final answer."""
        if not model.supports_tools or state.rounds >= self.limits.max_rounds - 1:
            return False
        if len(state.tools_called) >= self.limits.max_tool_calls:
            return False
        if self.limits.max_cost_usd is not None:
            cost = token_cost(
                model,
                input_tokens=state.usage.input_tokens,
                output_tokens=state.usage.output_tokens,
                cached_input_tokens=state.usage.cached_input_tokens,
            )
            if cost is not None and cost >= Decimal(str(self.limits.max_cost_usd)):
                return False
        return True

    async def _run_tools(self, calls: Sequence[ToolCallPart], job: Job, state: _LoopState) -> Message:
        offered = {t.name for t in job.tools}
        results = []
        for call in calls:
            state.tools_called.append(call.name)
            if call.name not in offered:
                text = f"unknown tool {call.name!r}; the tools available are: {', '.join(sorted(offered))}"
                results.append(ToolResultPart(call.id, call.name, text, is_error=True))
                continue
            outcome = await self.toolbox.call_tool(call.name, dict(call.arguments))
            text = (
                outcome.text
                if len(outcome.text) <= _MAX_TOOL_RESULT_CHARS
                else (outcome.text[:_MAX_TOOL_RESULT_CHARS] + "\n[output truncated]")
            )
            results.append(ToolResultPart(call.id, call.name, text, is_error=outcome.is_error))
        return Message(role="tool", parts=tuple(results))

    async def _record(
        self,
        model: ModelConfig,
        job: Job,
        state: _LoopState,
        started: float,
        t0: float,
        outcome: str,
        error: RouterError | None,
        attempt_no: int,
    ) -> AttemptInfo:
        usage = state.usage
        cost = token_cost(
            model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
        )
        latency_ms = (time.monotonic() - t0) * 1000
        error_type = type(error).__name__ if error else ("Cancelled" if outcome == "cancelled" else None)
        message = str(error)[:500] if error else None
        record = AttemptRecord(
            task_id=job.task_id,
            session_id=job.session_id,
            attempt_no=attempt_no,
            started_at=started,
            latency_ms=latency_ms,
            model=model.id,
            provider=model.provider,
            category=job.category,
            outcome=outcome,
            price_table_version=self.registry.config.price_table_version,
            error_type=error_type,
            error_message=message,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost,
            estimated_input_tokens=job.estimated_input_tokens,
            estimated_output_tokens=job.estimated_output_tokens,
            tool_rounds=state.tool_rounds,
            tools_called=tuple(state.tools_called),
        )
        # Committed before anything is returned, and shielded so that a cancelled call still leaves its row.
        # If the store cannot write, its StoreError ends the task here: no further paid request is made.
        with anyio.CancelScope(shield=True):
            await self.ledger.record(record, settle=tuple(state.reservations))
        return AttemptInfo(model.id, model.provider, outcome, error_type, message, latency_ms, usage, cost)


def _empty_note(state: _LoopState) -> str:
    return "[the model returned no text]" if state.rounds else ""


def _failure_summary(attempts: Sequence[AttemptInfo], deadline: float) -> str:
    if not attempts:
        return "no model could be tried (the task deadline passed first)"
    lines = [f"{a.model}: {a.error_type}: {a.error}" for a in attempts]
    late = " (task deadline reached)" if time.monotonic() >= deadline else ""
    return f"all {len(attempts)} attempts failed{late}: " + "; ".join(lines)
