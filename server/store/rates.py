"""Rate windows on SQLite: client-side rpm, tpm and max_concurrent counts, checked and taken atomically.

A granted request is one row of `rate_events` per limited key (`at`, its estimated `tokens`, and
`busy_until`: the end of its lease while it runs, the moment it finished after). `acquire` counts the
key's rows and inserts the new ones inside one `BEGIN IMMEDIATE` transaction, which SQLite serialises
across connections and processes, so every process sharing the data dir counts against one window. Rows
older than the window that no longer run are deleted in passing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from server.store.db import Database
from server.store.interface import RATE_WINDOW_S, RateLimit, RateRefused


class SqliteRateWindows:
    """The `RateWindows` protocol on SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(
        self, limits: Sequence[RateLimit], tokens: int, *, now: float, lease_s: float
    ) -> tuple[int, ...] | RateRefused:
        def txn(conn: sqlite3.Connection) -> tuple[int, ...] | RateRefused:
            since = now - RATE_WINDOW_S
            conn.execute("DELETE FROM rate_events WHERE at <= ? AND busy_until <= ?", (since, now))
            for limit in limits:
                row = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(tokens), 0), MIN(at) FROM rate_events WHERE key = ? AND at > ?",
                    (limit.key, since),
                ).fetchone()
                running = conn.execute(
                    "SELECT COUNT(*) FROM rate_events WHERE key = ? AND busy_until > ?", (limit.key, now)
                ).fetchone()[0]
                refused = over(limit, int(row[0]), int(row[1]), row[2], int(running), tokens, now)
                if refused is not None:
                    return refused
            ids = []
            for limit in limits:
                cur = conn.execute(
                    "INSERT INTO rate_events (key, at, tokens, busy_until) VALUES (?, ?, ?, ?)",
                    (limit.key, now, tokens, now + lease_s),
                )
                ids.append(int(cur.lastrowid or 0))
            return tuple(ids)

        return await self._db.write(txn)

    async def finish(self, permits: Sequence[int], *, now: float, sent: bool) -> None:
        def txn(conn: sqlite3.Connection) -> None:
            if sent:
                conn.executemany(
                    "UPDATE rate_events SET busy_until = MIN(busy_until, ?) WHERE id = ?", [(now, i) for i in permits]
                )
            else:
                conn.executemany("DELETE FROM rate_events WHERE id = ?", [(i,) for i in permits])

        await self._db.write(txn)


def over(
    limit: RateLimit, requests: int, used_tokens: int, oldest: float | None, running: int, tokens: int, now: float
) -> RateRefused | None:
    """The first of `limit`'s bounds one more request of `tokens` would break, given the window's counts."""
    retry = None if oldest is None else max(oldest + RATE_WINDOW_S - now, 0.0)
    if limit.rpm is not None and requests + 1 > limit.rpm:
        return RateRefused(limit.key, "rpm", limit.rpm, requests, retry)
    if limit.tpm is not None and used_tokens + tokens > limit.tpm:
        return RateRefused(limit.key, "tpm", limit.tpm, used_tokens, retry)
    if limit.max_concurrent is not None and running + 1 > limit.max_concurrent:
        return RateRefused(limit.key, "max_concurrent", limit.max_concurrent, running, None)
    return None
