"""The fallback chain: tries a route's models in order under one error policy, like a single model.

Policy depends only on the error type (see `server.errors`):
- rate limited / timeout / unavailable (5xx, a connection dropped mid-request) → bounded retry of the same
  model (backoff with jitter, honouring Retry-After up to a cap), then the next model; an unreachable
  provider (connection refused: `ProviderUnreachable`) is not retried and is skipped for
  `unreachable_skip_s` while another model remains;
- context too long → only models with a larger context window than the one that refused;
- auth / bad request → `TaskStopped` at once with the provider's reason (auth errors name the env var);
- a budget with no room → the next (cheaper) model;
- a client-side rate limit (rpm / tpm / max_concurrent) with no room within `rate_limits.wait_s` → the next
  model; the attempt is listed as "rate_limited" with the limit it met (nothing was sent, no ledger row);
- every model failed → `AllModelsFailed` listing each attempt (when every one was refused by a budget, the
  message is that budget's refusal for the last model tried: which budget, spent, held, left, what to change).
The walk is a loop over a queue, never recursion, and a model is tried at most once per chain (retries of
the same call aside). Each attempt runs the `ToolLoop` through a meter of the accounting hook
(`accounting.attempts`), which commits the attempt's row before its answer is used; when it cannot
(`NotRecorded`), the chain stops there: no answer, no further paid request.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import anyio

from server.accounting.attempts import AttemptBook, AttemptMeter
from server.domain.config import ModelConfig
from server.domain.messages import FinishReason, Usage
from server.errors import (
    AllModelsFailed,
    AuthError,
    BadRequest,
    BudgetExceeded,
    ContextTooLong,
    NotRecorded,
    ProviderError,
    ProviderUnreachable,
    RateLimited,
    RateLimitReached,
    TaskStopped,
)
from server.execution.job import Job, Progress, no_progress
from server.execution.tool_loop import ToolLoop


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
    role: str | None = None  # the strategy role of its job (None: a single-model `complete`)


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


class FallbackChain:
    """Runs a job on the first model of a chain that answers; owns retries and the fallback policy."""

    def __init__(
        self,
        loop: ToolLoop,
        book: AttemptBook,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.book = book
        self.limits = loop.limits  # one set of bounds for the walk and the loop
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._unreachable_until: dict[str, float] = {}

    def deadline(self) -> float:
        """The task deadline for a call starting now, on this chain's clock."""
        return self._clock() + self.limits.deadline_s

    def remaining_s(self, deadline: float) -> float:
        return deadline - self._clock()

    async def run(
        self,
        chain: Sequence[ModelConfig],
        job: Job,
        progress: Progress = no_progress,
        *,
        deadline: float | None = None,
        first_attempt_no: int = 1,
    ) -> Outcome:
        """Try the chain in order until one model answers.

        `deadline` (on this chain's clock) bounds a run that is one step of a strategy by the whole task's
        deadline; `first_attempt_no` continues the task's attempt numbering across its steps.
        """
        deadline = self.deadline() if deadline is None else deadline
        attempts: list[AttemptInfo] = []
        offset = first_attempt_no - 1
        queue, tried, min_window = list(chain), set(), 0
        while queue:
            model = queue.pop(0)
            if model.id in tried or model.context_window <= min_window:
                continue
            if queue and self._unreachable_until.get(model.provider, 0.0) > self._clock():
                # It refused a connection moments ago: the next model is the better bet.
                note = f"{model.provider} could not be reached moments ago; skipped"
                attempts.append(
                    AttemptInfo(model.id, model.provider, "skipped", "Unreachable", note, 0.0, Usage(), None, job.role)
                )
                continue
            tried.add(model.id)
            outcome = await self._try_model(model, job, attempts, deadline, progress, offset)
            if isinstance(outcome, Outcome):
                return outcome
            if isinstance(outcome, ContextTooLong):
                min_window = model.context_window
            if self._clock() >= deadline:
                break
        raise AllModelsFailed(self._failure_summary(attempts, deadline), attempts)

    async def _try_model(
        self,
        model: ModelConfig,
        job: Job,
        attempts: list[AttemptInfo],
        deadline: float,
        progress: Progress,
        offset: int,
    ) -> Outcome | ProviderError | None:
        """One model with its bounded retries; returns the outcome or the error that ended it."""
        last: ProviderError | None = None
        for retry in range(self.limits.retries_per_model + 1):
            if self._clock() >= deadline:
                return last
            await progress(f"attempt {offset + len(attempts) + 1}: {model.id}" + (f" (retry {retry})" if retry else ""))
            try:
                return await self._attempt(model, job, attempts, deadline, progress, offset)
            except (BudgetExceeded, RateLimitReached):
                return None  # a cheaper model, or one with room, further down the chain may fit
            except (AuthError, BadRequest) as exc:
                raise TaskStopped(f"{model.id}: {exc}", attempts) from exc
            except ContextTooLong as exc:
                return exc
            except ProviderError as exc:
                last = exc
                if isinstance(exc, ProviderUnreachable):  # could not connect at all: a retry would not either
                    self._unreachable_until[model.provider] = self._clock() + self.limits.unreachable_skip_s
                    return exc
                delay = self._retry_delay(exc, retry)
                if delay is None or self._clock() + delay >= deadline:
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
        self,
        model: ModelConfig,
        job: Job,
        attempts: list[AttemptInfo],
        deadline: float,
        progress: Progress,
        offset: int = 0,
    ) -> Outcome:
        """The tool loop on one model, metered: exactly one committed ledger row, unless the first round's
        reservation failed (nothing was sent). A row that cannot be committed raises `NotRecorded` from here."""
        meter = self.book.open(model, job.account, offset + len(attempts) + 1)
        outcome = "error"
        error: Exception | None = None
        try:
            answer = await self.loop.run(model, job, meter, deadline, progress)
            outcome = "ok"
        except (BudgetExceeded, RateLimitReached, NotRecorded) as exc:
            error = exc
            if meter.calls == 0:  # the first reservation or permit failed, so nothing was sent: no ledger row
                outcome = "unsent"
                if isinstance(exc, BudgetExceeded):  # the caller's list shows the refusal
                    attempts.append(_info(meter, "refused", exc))
                elif isinstance(exc, RateLimitReached):
                    attempts.append(_info(meter, "rate_limited", exc))
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        except Exception as exc:
            error = exc
            raise
        finally:
            if outcome != "unsent":
                record = await meter.close(outcome, error)
                attempts.append(
                    AttemptInfo(record.model, record.provider, outcome, record.error_type, record.error_message,
                                record.latency_ms, meter.usage, record.cost_usd, record.role)
                )  # fmt: skip
        return Outcome(answer.text, model, answer.finish_reason, attempts, meter.tools_called, answer.rounds)

    def _failure_summary(self, attempts: Sequence[AttemptInfo], deadline: float) -> str:
        if not attempts:
            return "no model could be tried (the task deadline passed first)"
        if all(a.outcome == "refused" for a in attempts):  # nothing was sent: say which budget, once
            others = ", ".join(a.model for a in attempts[:-1])
            also = f" ({others} could cost more still)" if others else ""
            return f"no model of this route fits the budget: {attempts[-1].model}: {attempts[-1].error}{also}"
        lines = [f"{a.model}: {a.error_type}: {a.error}" for a in attempts]
        late = " (task deadline reached)" if self._clock() >= deadline else ""
        return f"all {len(attempts)} attempts failed{late}: " + "; ".join(lines)


def _info(meter: AttemptMeter, outcome: str, error: BaseException) -> AttemptInfo:
    """An attempt that never reached the ledger (refused before any call)."""
    model = meter.model
    return AttemptInfo(
        model.id, model.provider, outcome, type(error).__name__, str(error), 0.0, Usage(), None, meter.account.role
    )
