"""The accounting hook around every provider attempt: hold the worst case before a call, record it after.

`AttemptBook.open` starts one attempt's `AttemptMeter`. Before each provider call the caller asks the meter to
`reserve` the attempt's worst case against the budgets (`BudgetGuard.reserve`): the reported cost of its
earlier rounds plus this round's request and `max_tokens`, held in place of the previous round's hold; after
each call it adds the reported usage; at the end `close` prices the attempt (`domain.pricing.token_cost`),
builds its one `AttemptRecord` and awaits `ledger.record(record, settle=reservations)`: the row and the
deletion of its reservations commit in one transaction.

Invariants:
- `close` returns only after the row is committed; a write that fails raises `NotRecorded`, so an answer
  whose row is not in the ledger is never used (the caller must not fall back to another paid model).
- the write is shielded: a cancelled call still leaves its whole row. If that write fails while the call is
  being cancelled, the failure is logged and the cancellation goes on.
- while an attempt runs, its one live hold is at least what it has been billed so far, so a provider that
  reports more than was reserved is counted before the next round is sent (and by the row once closed).
- $0 models are never held back by a budget; an unpriced model cannot run while a budget is configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import anyio

from server.accounting.budget import BudgetGuard
from server.domain.config import ModelConfig
from server.domain.messages import Usage
from server.domain.pricing import token_cost
from server.errors import BudgetExceeded, NotRecorded, StoreError
from server.store.ledger import AttemptRecord

log = logging.getLogger(__name__)
_ADVICE = "check that the data directory (MODEL_ROUTER_HOME) is writable and has free space, then retry"


def _advice(exc: BaseException) -> str:
    """What to check, unless the store's own error already says it."""
    return "" if isinstance(exc, StoreError) else f"; {_ADVICE}"


class AttemptWriter(Protocol):
    """What the hook needs of the ledger: commit one attempt row with the settlement of its reservations."""

    def record(self, record: AttemptRecord, settle: tuple[int, ...] = ()) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class TaskAccount:
    """Who an attempt is charged to, and what the router estimated for it (the estimates go in the row)."""

    task_id: str
    session_id: str | None
    category: str | None
    estimated_input_tokens: int | None = None
    estimated_output_tokens: int | None = None
    role: str | None = None  # the strategy role the attempt played (None: a single-model `complete`)


@dataclass
class AttemptMeter:
    """One attempt at one model: its reservations, what it used, and at `close` its one ledger row."""

    model: ModelConfig
    account: TaskAccount
    attempt_no: int
    _book: AttemptBook
    usage: Usage = field(default_factory=Usage)
    calls: int = 0  # provider requests sent in this attempt
    tool_rounds: int = 0
    tools_called: list[str] = field(default_factory=list)
    reservations: list[int] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    _t0: float = field(default_factory=time.monotonic)

    async def reserve(self, input_tokens: int, output_tokens: int) -> None:
        """Hold the attempt's worst case before a provider call; raises `BudgetExceeded`.

        The worst case is what the attempt's earlier rounds really cost (their reported usage) plus this
        round's `input_tokens` and `output_tokens` at the model's prices. It replaces the attempt's previous
        hold in one transaction, so a round that was billed more than it reserved counts in full before the
        next round is sent, and rounds that cost less free the difference.
        """
        budget = self._book.budget
        if budget is None or not budget.active:
            return
        spent = self.cost_usd
        worst = token_cost(self.model, input_tokens=input_tokens, output_tokens=output_tokens)
        if worst is None or spent is None:
            raise BudgetExceeded(
                f"{self.model.id} has no price in the registry, so the configured budgets cannot be enforced on "
                "it; add its prices to the config or pick a priced model",
                budget="unpriced",
            )
        if worst == 0 and spent == 0:
            return
        account = self.account
        try:
            held = await budget.reserve(
                account.task_id, account.session_id, self.model.id, spent + worst, replacing=self.reservations
            )
        except BudgetExceeded:
            raise
        except Exception as exc:  # the store could not write the hold: nothing may be sent unaccounted
            raise NotRecorded(
                f"the budget reservation for {self.model.id} could not be written to the ledger ({exc}), so no "
                f"request was sent and no other model was tried{_advice(exc)}"
            ) from exc
        self.reservations = [held]

    def add(self, usage: Usage) -> None:
        """Count one provider response."""
        self.usage = self.usage + usage
        self.calls += 1

    @property
    def cost_usd(self) -> Decimal | None:
        u = self.usage
        return token_cost(
            self.model,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cached_input_tokens=u.cached_input_tokens,
        )

    async def close(self, outcome: str, error: BaseException | None = None) -> AttemptRecord:
        """Write the attempt's row and settle its reservations; returns once both are committed.

        `outcome` is ok | error | cancelled. Raises `NotRecorded` if the store cannot write (except while
        cancelled: then it logs, so the cancellation is not swallowed).
        """
        record = self._record(outcome, error)
        try:
            with anyio.CancelScope(shield=True):  # a cancelled call still leaves its whole row
                await self._book.ledger.record(record, settle=tuple(self.reservations))
        except Exception as exc:
            what = "answer" if outcome == "ok" else f"{outcome} attempt"
            message = (
                f"the {what} from {self.model.id} could not be recorded in the ledger ({exc}), so it was not "
                f"used and no other model was tried{_advice(exc)}"
            )
            if outcome == "cancelled":
                log.error("%s", message)
                return record
            raise NotRecorded(message) from exc
        return record

    def _record(self, outcome: str, error: BaseException | None) -> AttemptRecord:
        u, account = self.usage, self.account
        error_type = type(error).__name__ if error else ("Cancelled" if outcome == "cancelled" else None)
        return AttemptRecord(
            task_id=account.task_id,
            session_id=account.session_id,
            attempt_no=self.attempt_no,
            started_at=self.started_at,
            latency_ms=(time.monotonic() - self._t0) * 1000,
            model=self.model.id,
            provider=self.model.provider,
            category=account.category,
            outcome=outcome,
            price_table_version=self._book.price_table_version,
            error_type=error_type,
            error_message=str(error)[:500] if error else None,
            input_tokens=u.input_tokens,
            cached_input_tokens=u.cached_input_tokens,
            output_tokens=u.output_tokens,
            reasoning_tokens=u.reasoning_tokens,
            cost_usd=self.cost_usd,
            estimated_input_tokens=account.estimated_input_tokens,
            estimated_output_tokens=account.estimated_output_tokens,
            tool_rounds=self.tool_rounds,
            tools_called=tuple(self.tools_called),
            role=account.role,
        )


class AttemptBook:
    """Opens a meter per attempt; every provider call of the router goes through one (dispatch and analyser)."""

    def __init__(self, ledger: AttemptWriter, budget: BudgetGuard | None, price_table_version: str) -> None:
        self.ledger = ledger
        self.budget = budget
        self.price_table_version = price_table_version

    def open(self, model: ModelConfig, account: TaskAccount, attempt_no: int) -> AttemptMeter:
        return AttemptMeter(model, account, attempt_no, self)
