"""`db import`: move an existing SQLite ledger (attempts, sessions and their turns, decisions) into an
empty PostgreSQL store, in one transaction: the target holds all of it or, on any failure, none.

Attempts keep their order; their first-of-task flags and the usage rollup are recomputed on the way in by
the same code every `record` uses, so reports on the target equal reports on the source. Live budget
reservations are not moved: they belong to calls of the process that used the SQLite file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from server.errors import StoreError
from server.store.ledger import COLUMNS
from server.store.postgres.database import PgDatabase
from server.store.postgres.ledger import ATTEMPT_COLUMNS, INSERT_ATTEMPT
from server.store.postgres.rollup import add_attempts

BATCH = 2000
_DECISION_COLUMNS = (
    "at, kind, task_id, task_sha256, task_chars, options, analyzer_version, config_fingerprint, "
    "price_table_version, category, complexity, strong_score, primary_model, fallback_models, "
    "estimated_cost_usd, reasons"
)


def _batches(conn: sqlite3.Connection, sql: str) -> Iterator[list[dict[str, Any]]]:
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description]
    while rows := cur.fetchmany(BATCH):
        yield [dict(zip(names, row, strict=True)) for row in rows]


async def import_sqlite(db: PgDatabase, source: Path) -> dict[str, int]:
    """Copy the SQLite database at `source` into `db`; counts per table. `StoreError` if the target has
    attempts already (an import runs once) or the source cannot be read."""
    try:
        lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite ledger {source}: {exc}") from exc

    async def txn(conn: AsyncConnection) -> dict[str, int]:
        cur = await conn.execute("SELECT COUNT(*) FROM attempts")
        row = await cur.fetchone()
        if row and row[0]:
            raise StoreError(f"the database {db.location} already holds {row[0]} attempts; import into an empty one")
        counts = {"attempts": 0, "sessions": 0, "messages": 0, "decisions": 0}
        present = {row[1] for row in lite.execute("PRAGMA table_info(attempts)")}
        # A ledger from before the role column: its attempts played no strategy role.
        picked = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
        for batch in _batches(lite, f"SELECT {picked} FROM attempts ORDER BY id"):
            await add_attempts(conn, batch)  # flags from the attempts already moved, then the rollup
            async with conn.cursor() as c:
                await c.executemany(INSERT_ATTEMPT, [[r[name] for name in ATTEMPT_COLUMNS] for r in batch])
            counts["attempts"] += len(batch)
        copies = (
            ("sessions", "id, created_at, updated_at", "ORDER BY id"),
            ("messages", "session_id, role, content, created_at", "ORDER BY id"),
            ("decisions", _DECISION_COLUMNS, "ORDER BY id"),
        )
        for table, columns, order in copies:
            marks = ", ".join("%s" for _ in columns.split(","))
            for batch in _batches(lite, f"SELECT {columns} FROM {table} {order}"):
                async with conn.cursor() as c:
                    await c.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                        [list(r.values()) for r in batch])  # fmt: skip
                counts[table] += len(batch)
        return counts

    try:
        return await db.write(txn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite ledger {source}: {exc}") from exc
    finally:
        lite.close()
