"""The attempt ledger on PostgreSQL: one row per model attempt, failures included.

`record` inserts the row, adds it to the usage rollup and deletes the reservations it settles in one
transaction, committed before it returns: a replica killed at any point leaves all of it or none.
Costs are integer pico-USD (BIGINT); NULL means unpriced.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from server.store.interface import AttemptRecord
from server.store.ledger import COLUMNS, attempt_values
from server.store.postgres.database import PgDatabase
from server.store.postgres.rollup import add_attempts
from server.store.usage import FLAG

ATTEMPT_COLUMNS = COLUMNS + list(FLAG.values())
_MARKS = ", ".join("%s" for _ in ATTEMPT_COLUMNS)
INSERT_ATTEMPT = f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({_MARKS})"


class PgLedger:
    """The `AttemptLedger` protocol on PostgreSQL."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def record(self, record: AttemptRecord, settle: tuple[int, ...] = ()) -> None:
        row = attempt_values(record)

        async def txn(conn: AsyncConnection) -> None:
            await add_attempts(conn, [row])  # sets the row's flags before it is inserted
            await conn.execute(INSERT_ATTEMPT, [row[name] for name in ATTEMPT_COLUMNS])
            if settle:
                await conn.execute("DELETE FROM reservations WHERE id = ANY(%s)", (list(settle),))

        await self._db.write(txn)

    async def attempts(self, task_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            async with conn.cursor(row_factory=dict_row) as cur:
                if task_id is None:
                    await cur.execute("SELECT * FROM attempts ORDER BY id DESC LIMIT %s", (limit,))
                else:
                    await cur.execute("SELECT * FROM attempts WHERE task_id = %s ORDER BY id", (task_id,))
                return await cur.fetchall()

        return await self._db.read(read)
