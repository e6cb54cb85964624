"""Rate windows on PostgreSQL: client-side rpm, tpm and max_concurrent counts that hold across every replica.

Concurrency, as for budgets (`postgres.budgets`): **row locks**. `acquire` locks, in slot order, the
`budget_locks` row each limited key hashes to (`rate:<key>`), then counts the key's `rate_events` and
inserts the new rows under READ COMMITTED; two acquisitions on one key therefore run one after the other and
the second counts the first. A replica killed mid-call leaves rows whose `busy_until` lease lapses, so its
slots come back; rows past the window that no longer run are deleted in passing (SKIP LOCKED).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from psycopg import AsyncConnection

from server.store.interface import RATE_WINDOW_S, RateLimit, RateRefused
from server.store.postgres.budgets import LOCK_SLOTS
from server.store.postgres.database import PgDatabase
from server.store.rates import over


def rate_slot(key: str) -> int:
    return zlib.crc32(f"rate:{key}".encode()) % LOCK_SLOTS


class PgRateWindows:
    """The `RateWindows` protocol on PostgreSQL."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def acquire(
        self, limits: Sequence[RateLimit], tokens: int, *, now: float, lease_s: float
    ) -> tuple[int, ...] | RateRefused:
        async def txn(conn: AsyncConnection) -> tuple[int, ...] | RateRefused:
            slots = sorted({rate_slot(limit.key) for limit in limits})
            await conn.execute("SELECT slot FROM budget_locks WHERE slot = ANY(%s) ORDER BY slot FOR UPDATE", (slots,))
            since = now - RATE_WINDOW_S
            for limit in limits:
                cur = await conn.execute(
                    "SELECT COUNT(*) FILTER (WHERE at > %s), COALESCE(SUM(tokens) FILTER (WHERE at > %s), 0), "
                    "MIN(at) FILTER (WHERE at > %s), COUNT(*) FILTER (WHERE busy_until > %s) "
                    "FROM rate_events WHERE key = %s",
                    (since, since, since, now, limit.key),
                )
                row = await cur.fetchone()
                assert row is not None  # an aggregate always returns one row
                refused = over(limit, int(row[0]), int(row[1]), row[2], int(row[3]), tokens, now)
                if refused is not None:
                    return refused
            ids = []
            for limit in limits:
                cur = await conn.execute(
                    "INSERT INTO rate_events (key, at, tokens, busy_until) VALUES (%s, %s, %s, %s) RETURNING id",
                    (limit.key, now, tokens, now + lease_s),
                )
                inserted = await cur.fetchone()
                assert inserted is not None  # INSERT ... RETURNING always returns the row
                ids.append(int(inserted[0]))
            await conn.execute(
                "DELETE FROM rate_events WHERE id IN (SELECT id FROM rate_events WHERE at <= %s AND busy_until <= %s "
                "ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)",
                (since, now),
            )
            return tuple(ids)

        return await self._db.write(txn)

    async def finish(self, permits: Sequence[int], *, now: float, sent: bool) -> None:
        async def txn(conn: AsyncConnection) -> None:
            if sent:
                await conn.execute(
                    "UPDATE rate_events SET busy_until = LEAST(busy_until, %s) WHERE id = ANY(%s)", (now, list(permits))
                )
            else:
                await conn.execute("DELETE FROM rate_events WHERE id = ANY(%s)", (list(permits),))

        await self._db.write(txn)
