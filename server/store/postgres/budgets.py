"""Budget windows on PostgreSQL: what each scope has spent and holds, and check-and-hold reservations that
stay atomic across every replica.

Concurrency, chosen: **row locks**. `reserve` first locks, with `SELECT ... FOR UPDATE` in slot order, one
row of `budget_locks` per scope it checks (the scope's key hashed to one of 1,024 slots: `day`, `month`,
`task:<id>`, `session:<id>`), then reads every scope's spent and held sums in *one* statement and inserts
the hold, under READ COMMITTED. Two reservations on one scope therefore run one after the other, and the
second's read (a statement started after the first committed) sees the first's hold. Why not SERIALIZABLE
with retry: every reservation under a daily budget reads the same rows, so under load most transactions
would fail and retry (a retry storm exactly when the budget is busiest), and correctness would hinge on
every caller retrying; a lock queue is fair and needs no retry. Slots that collide only serialise more,
never less; ordered locking means no deadlock.

`AttemptLedger.record` needs no lock: it inserts the attempt and deletes its reservation in one commit, and
the one-statement read sees both or neither, so spent + held never jumps. A hold counts until `now` passes
its `expires_at`: a replica killed mid-call leaves its holds behind and they lapse; `reserve` deletes
lapsed ones in passing (SKIP LOCKED, so housekeeping never waits on or deadlocks with a writer).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from psycopg import AsyncConnection

from server.store.interface import Hold, Limit, Refused, Scope, WindowUsage, fits, window_starts
from server.store.postgres.database import PgDatabase
from server.store.usage import GRAINS, plan_window

LOCK_SLOTS = 1024  # rows of budget_locks (migration 1)


def lock_slot(scope: Scope) -> int:
    return zlib.crc32(f"{scope.kind}:{scope.key or ''}".encode()) % LOCK_SLOTS


class PgBudgetWindows:
    """The `BudgetWindows` protocol on PostgreSQL."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def usage(self, scopes: Sequence[Scope], *, now: float) -> list[WindowUsage]:
        return await self._db.read(lambda conn: positions(conn, scopes, now))

    async def reserve(
        self, hold: Hold, limits: Sequence[Limit], *, now: float, ttl_s: float, replacing: Sequence[int] = ()
    ) -> int | Refused:
        async def txn(conn: AsyncConnection) -> int | Refused:
            slots = sorted({lock_slot(limit.scope) for limit in limits})
            if slots:
                await conn.execute(
                    "SELECT slot FROM budget_locks WHERE slot = ANY(%s) ORDER BY slot FOR UPDATE", (slots,)
                )
            # The replaced holds stop counting for this check; a refusal puts them back as they were.
            await conn.execute("SAVEPOINT replace_holds")
            if replacing:
                await conn.execute("DELETE FROM reservations WHERE id = ANY(%s)", (list(replacing),))
            now_at = await positions(conn, [limit.scope for limit in limits], now)
            for limit, position in zip(limits, now_at, strict=True):
                if not fits(limit.limit_pusd, position, hold.amount_pusd):
                    await conn.execute("ROLLBACK TO SAVEPOINT replace_holds")
                    return Refused(limit, position)
            cur = await conn.execute(
                "INSERT INTO reservations (task_id, session_id, model, amount_pusd, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (hold.task_id, hold.session_id, hold.model, hold.amount_pusd, now, now + ttl_s),
            )
            row = await cur.fetchone()
            await conn.execute(
                "DELETE FROM reservations WHERE id IN (SELECT id FROM reservations WHERE expires_at <= %s "
                "ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)",
                (now,),
            )
            assert row is not None  # INSERT ... RETURNING always returns the row
            return int(row[0])

        return await self._db.write(txn)

    async def release(self, reservation_id: int) -> None:
        async def txn(conn: AsyncConnection) -> None:
            await conn.execute("DELETE FROM reservations WHERE id = %s", (reservation_id,))

        await self._db.write(txn)


async def positions(conn: AsyncConnection, scopes: Sequence[Scope], now: float) -> list[WindowUsage]:
    """Every scope's spent and held sums, read by one statement (so from one snapshot)."""
    if not scopes:
        return []
    selects: list[str] = []
    args: list[object] = []
    for index, scope in enumerate(scopes):
        spent_sql, spent_args, held_sql, held_args = _scope_sql(scope, now)
        selects.append(f"SELECT {index} AS i, ({spent_sql})::bigint, ({held_sql})::bigint")
        args += [*spent_args, *held_args]
    cur = await conn.execute(" UNION ALL ".join(selects), args)
    found = {int(i): (int(spent), int(held)) for i, spent, held in await cur.fetchall()}
    return [WindowUsage(scope, *found[index]) for index, scope in enumerate(scopes)]


def _scope_sql(scope: Scope, now: float) -> tuple[str, list[object], str, list[object]]:
    if scope.kind in ("day", "month"):
        day_start, month_start = window_starts(now)
        since = day_start if scope.kind == "day" else month_start
        parts: list[str] = []
        args: list[object] = []
        for piece in plan_window("all", GRAINS["all"], since, None):  # whole hours and days from the rollup
            if piece.rollup_dim is None:
                parts.append("(SELECT COALESCE(SUM(cost_pusd), 0) FROM attempts WHERE started_at >= %s "
                             "AND started_at < %s)")  # fmt: skip
                args += [piece.since, piece.until]
            else:
                parts.append("(SELECT COALESCE(SUM(cost_pusd), 0) FROM usage_rollup WHERE dim = %s "
                             "AND bucket >= %s AND bucket < COALESCE(%s, 9223372036854775807))")  # fmt: skip
                args += [piece.rollup_dim, piece.first, piece.end]
        held = "SELECT COALESCE(SUM(amount_pusd), 0) FROM reservations WHERE created_at >= %s AND expires_at > %s"
        return " + ".join(parts), args, held, [since, now]
    column = {"task": "task_id", "session": "session_id"}[scope.kind]
    spent = f"SELECT COALESCE(SUM(cost_pusd), 0) FROM attempts WHERE {column} = %s"
    held = f"SELECT COALESCE(SUM(amount_pusd), 0) FROM reservations WHERE {column} = %s AND expires_at > %s"
    return spent, [scope.key], held, [scope.key, now]
