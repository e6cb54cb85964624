"""Budget policy: per task, per session, per UTC day and per UTC month, enforced with atomic reservations.

This module decides which budgets apply and what a refusal says; the store (`BudgetWindows`) keeps the
positions. Before a model is called, its maximum cost (what the attempt has spent so far, plus the request's
input counted conservatively and max_tokens, at its prices) is reserved: the store checks every applicable
limit and holds the amount in one serialised transaction, so concurrent calls, in one process or many, can
never overspend. The reservation is settled in the same transaction that writes the attempt's ledger row; one
left behind by a killed process expires after `ttl_s` and stops counting. Self-hosted $0 models are never
blocked (nothing is reserved).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from server.domain.config import BudgetConfig
from server.errors import BudgetExceeded
from server.store.interface import (
    BudgetWindows,
    Hold,
    Limit,
    Refused,
    Scope,
    WindowUsage,
    from_pico,
    to_pico,
    window_starts,
)

__all__ = ["BudgetGuard", "BudgetState", "window_starts"]

_NAMES = {"task": "per_task", "session": "per_session", "day": "daily", "month": "monthly"}


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget's position right now."""

    name: str
    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, Decimal(0))


class BudgetGuard:
    """Checks and reserves against the configured budgets."""

    def __init__(
        self,
        windows: BudgetWindows,
        budgets: BudgetConfig,
        *,
        ttl_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._windows = windows
        self._budgets = budgets
        self._ttl = ttl_s
        self._clock = clock

    @property
    def active(self) -> bool:
        b = self._budgets
        return any(v is not None for v in (b.per_task_usd, b.per_session_usd, b.daily_usd, b.monthly_usd))

    async def states(self, task_id: str | None = None, session_id: str | None = None) -> list[BudgetState]:
        """Every applicable budget with its spent, reserved and remaining amounts."""
        limits = self._limits(task_id, session_id)
        if not limits:
            return []  # nothing applies: no store round trip on the hot path
        positions = await self._windows.usage([limit.scope for limit in limits], now=self._clock())
        return [_state(limit, position) for limit, position in zip(limits, positions, strict=True)]

    async def tightest(self, task_id: str | None, session_id: str | None) -> BudgetState | None:
        """The applicable budget with the least left (None: no budget applies)."""
        states = await self.states(task_id, session_id)
        return min(states, key=lambda s: s.remaining_usd) if states else None

    async def reserve(
        self, task_id: str, session_id: str | None, model: str, amount: Decimal, replacing: Sequence[int] = ()
    ) -> int:
        """Reserve `amount` atomically in place of the holds `replacing`, or raise `BudgetExceeded` (those
        holds then stay); returns the reservation id."""
        hold = Hold(task_id, session_id, model, to_pico(amount) or 0)
        limits = self._limits(task_id, session_id)
        result = await self._windows.reserve(hold, limits, now=self._clock(), ttl_s=self._ttl, replacing=replacing)
        if isinstance(result, Refused):
            state = _state(result.limit, result.usage)
            raise BudgetExceeded(_refusal(state, amount), budget=state.name)
        return result

    async def release(self, reservation_id: int) -> None:
        await self._windows.release(reservation_id)

    def _limits(self, task_id: str | None, session_id: str | None) -> list[Limit]:
        """The budgets that apply to a call of this task and session, tightest scope first."""
        b = self._budgets
        candidates: list[tuple[float | None, Scope]] = [
            (b.per_task_usd if task_id else None, Scope("task", task_id)),
            (b.per_session_usd if session_id else None, Scope("session", session_id)),
            (b.daily_usd, Scope("day")),
            (b.monthly_usd, Scope("month")),
        ]
        return [Limit(scope, to_pico(Decimal(str(usd))) or 0) for usd, scope in candidates if usd is not None]


def _state(limit: Limit, usage: WindowUsage) -> BudgetState:
    return BudgetState(
        _NAMES[limit.scope.kind],
        from_pico(limit.limit_pusd) or Decimal(0),
        from_pico(usage.spent_pusd) or Decimal(0),
        from_pico(usage.held_pusd) or Decimal(0),
    )


def _refusal(state: BudgetState, amount: Decimal) -> str:
    return (
        f"the {state.name} budget of ${state.limit_usd:.4f} has ${state.remaining_usd:.6f} left "
        f"(spent ${state.spent_usd:.6f}, reserved by calls in flight ${state.reserved_usd:.6f}); this call could "
        f"cost up to ${amount:.6f}. Raise budgets.{state.name}_usd, use a cheaper model or a self-hosted one"
    )
