"""Budget windows on SQLite: what each scope has spent and holds, and atomic check-and-hold reservations.

A reservation is a row in `reservations` held until the attempt it paid for is recorded (`Ledger.record`
deletes it in the same transaction) or until it expires: a process killed mid-call leaves one behind, and
it stops counting at `expires_at`. `reserve` reads the positions and inserts the hold inside one
`BEGIN IMMEDIATE` transaction, which SQLite serialises across connections and processes: no two
reservations can both see the room that only one of them fits in. A reservation that replaces earlier
holds deletes them in that same transaction, and a refusal rolls the deletion back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from server.store import usage
from server.store.db import Database
from server.store.interface import Hold, Limit, Refused, Scope, WindowUsage, fits, window_starts


class SqliteBudgetWindows:
    """The `BudgetWindows` protocol on SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def usage(self, scopes: Sequence[Scope], *, now: float) -> list[WindowUsage]:
        return await self._db.read(lambda conn: [_usage(conn, scope, now) for scope in scopes])

    async def reserve(
        self, hold: Hold, limits: Sequence[Limit], *, now: float, ttl_s: float, replacing: Sequence[int] = ()
    ) -> int | Refused:
        def txn(conn: sqlite3.Connection) -> int | Refused:
            conn.execute("SAVEPOINT replace_holds")
            conn.executemany("DELETE FROM reservations WHERE id = ?", [(i,) for i in replacing])
            for limit in limits:
                position = _usage(conn, limit.scope, now)
                if not fits(limit.limit_pusd, position, hold.amount_pusd):
                    conn.execute("ROLLBACK TO replace_holds")  # a refusal keeps the holds it would replace
                    return Refused(limit, position)
            conn.execute("RELEASE replace_holds")
            cur = conn.execute(
                "INSERT INTO reservations (task_id, session_id, model, amount_pusd, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (hold.task_id, hold.session_id, hold.model, hold.amount_pusd, now, now + ttl_s),
            )
            conn.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))  # housekeeping
            return int(cur.lastrowid or 0)

        return await self._db.write(txn)

    async def release(self, reservation_id: int) -> None:
        await self._db.write(lambda conn: conn.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,)))


def _usage(conn: sqlite3.Connection, scope: Scope, now: float) -> WindowUsage:
    if scope.kind in ("day", "month"):
        day_start, month_start = window_starts(now)
        since = day_start if scope.kind == "day" else month_start
        # Whole hours since the start come from the usage rollup, not from the month's rows.
        spent = sum(part.cost_pusd for part in usage.window_sums(conn, "all", since, None).values())
        held = conn.execute(
            "SELECT COALESCE(SUM(amount_pusd), 0) FROM reservations WHERE created_at >= ? AND expires_at > ?",
            (since, now),
        ).fetchone()[0]
        return WindowUsage(scope, spent, int(held))
    column = {"task": "task_id", "session": "session_id"}[scope.kind]
    spent_sql = f"SELECT COALESCE(SUM(cost_pusd), 0) FROM attempts WHERE {column} = ?"
    held_sql = f"SELECT COALESCE(SUM(amount_pusd), 0) FROM reservations WHERE {column} = ? AND expires_at > ?"
    spent_pusd = conn.execute(spent_sql, (scope.key,)).fetchone()[0]
    held_pusd = conn.execute(held_sql, (scope.key, now)).fetchone()[0]
    return WindowUsage(scope, int(spent_pusd), int(held_pusd))
