"""Budgets: per task, per session, per UTC day and per UTC month, enforced with atomic reservations.

Before a model is called, its estimated maximum cost (input estimate + max_tokens at its prices) is
reserved inside one `BEGIN IMMEDIATE` transaction that also sums what was spent and what others have
reserved; so concurrent calls, in one process or many, can never overspend. The reservation is settled
(deleted) in the same transaction that writes the attempt's ledger row. A reservation left behind by a
killed process expires after `ttl_s` and stops counting. Self-hosted $0 models are never blocked.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from server.domain.config import BudgetConfig
from server.errors import BudgetExceeded
from server.store import usage
from server.store.db import Database
from server.store.ledger import from_pico, to_pico


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


def window_starts(now: float) -> tuple[float, float]:
    """Unix times of the start of the current UTC day and UTC month."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


class BudgetGuard:
    """Checks and reserves against the configured budgets."""

    def __init__(
        self, db: Database, budgets: BudgetConfig, *, ttl_s: float = 900.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._budgets = budgets
        self._ttl = ttl_s
        self._clock = clock

    @property
    def active(self) -> bool:
        b = self._budgets
        return any(v is not None for v in (b.per_task_usd, b.per_session_usd, b.daily_usd, b.monthly_usd))

    async def states(self, task_id: str | None = None, session_id: str | None = None) -> list[BudgetState]:
        """Every applicable budget with its spent, reserved and remaining amounts."""
        if not self.active:
            return []  # nothing configured: no database round trip on the hot path
        now = self._clock()
        return await self._db.run(lambda conn: self._states(conn, now, task_id, session_id))

    async def tightest(self, task_id: str | None, session_id: str | None) -> BudgetState | None:
        """The applicable budget with the least left (None: no budget applies)."""
        states = await self.states(task_id, session_id)
        return min(states, key=lambda s: s.remaining_usd) if states else None

    async def reserve(self, task_id: str, session_id: str | None, model: str, amount: Decimal) -> int:
        """Reserve `amount` atomically or raise `BudgetExceeded`; returns the reservation id."""
        now = self._clock()
        pusd = to_pico(amount) or 0

        def txn(conn: sqlite3.Connection) -> int:  # check and hold in one write transaction: atomic
            for state in self._states(conn, now, task_id, session_id):
                if amount > state.remaining_usd:
                    raise BudgetExceeded(_refusal(state, amount), budget=state.name)
            cur = conn.execute(
                "INSERT INTO reservations (task_id, session_id, model, amount_pusd, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (task_id, session_id, model, pusd, now, now + self._ttl),
            )
            conn.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))
            return int(cur.lastrowid or 0)

        return await self._db.write(txn)

    async def release(self, reservation_id: int) -> None:
        await self._db.write(lambda conn: conn.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,)))

    def _states(
        self, conn: sqlite3.Connection, now: float, task_id: str | None, session_id: str | None
    ) -> list[BudgetState]:
        day_start, month_start = window_starts(now)
        b = self._budgets
        scopes: list[tuple[str, float | None, str, tuple[object, ...]]] = [
            ("per_task", b.per_task_usd if task_id else None, "task_id = ?", (task_id,)),
            ("per_session", b.per_session_usd if session_id else None, "session_id = ?", (session_id,)),
            ("daily", b.daily_usd, "started_at >= ?", (day_start,)),
            ("monthly", b.monthly_usd, "started_at >= ?", (month_start,)),
        ]
        states = []
        for name, limit, where, args in scopes:
            if limit is None:
                continue
            spent = _spent_pusd(conn, name, where, args)
            held_where = where.replace("started_at", "created_at")
            held = conn.execute(
                f"SELECT COALESCE(SUM(amount_pusd), 0) FROM reservations WHERE {held_where} AND expires_at > ?",
                (*args, now),
            ).fetchone()[0]
            states.append(
                BudgetState(name, Decimal(str(limit)), from_pico(spent) or Decimal(0), from_pico(held) or Decimal(0))
            )
        return states


def _spent_pusd(conn: sqlite3.Connection, name: str, where: str, args: tuple[object, ...]) -> int:
    if name in ("daily", "monthly"):  # whole hours since the start: the usage rollup, not the month's rows
        since = args[0]
        assert isinstance(since, float)
        return sum(part.cost_pusd for part in usage.window_sums(conn, "all", since, None).values())
    return int(conn.execute(f"SELECT COALESCE(SUM(cost_pusd), 0) FROM attempts WHERE {where}", args).fetchone()[0])


def _refusal(state: BudgetState, amount: Decimal) -> str:
    return (
        f"the {state.name} budget of ${state.limit_usd:.4f} has ${state.remaining_usd:.6f} left "
        f"(spent ${state.spent_usd:.6f}, reserved by calls in flight ${state.reserved_usd:.6f}); this call could "
        f"cost up to ${amount:.6f}. Raise budgets.{state.name}_usd, use a cheaper model or a self-hosted one"
    )
