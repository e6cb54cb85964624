"""The SQLite attempt ledger: one row per model attempt, failures included, written only through the accounting hook
(`accounting/attempts`).

Costs are stored as integer pico-USD (1e-12), so sums in SQL are exact; NULL means the model had no
price (reported as unpriced, never as 0). Each row carries the price table version it was priced with.
`record` commits the row, its usage rollup sums and the settlement of its budget reservations in one
transaction before it returns.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from server.store import usage
from server.store.db import Database, rows_as_dicts
from server.store.interface import AttemptRecord, from_pico, to_pico

__all__ = ["AttemptRecord", "Ledger", "from_pico", "insert_attempts", "to_pico"]

COLUMNS = [
    "task_id", "session_id", "attempt_no", "started_at", "latency_ms", "model", "provider", "category",
    "outcome", "error_type", "error_message", "input_tokens", "cached_input_tokens", "output_tokens",
    "reasoning_tokens", "cost_pusd", "estimated_input_tokens", "estimated_output_tokens", "tool_rounds",
    "tools_called", "price_table_version", "role",
]  # fmt: skip
_FLAGS = list(usage.FLAG.values())
_INSERT = f"INSERT INTO attempts ({', '.join(COLUMNS + _FLAGS)}) VALUES ({', '.join('?' for _ in COLUMNS + _FLAGS)})"


def attempt_values(record: AttemptRecord) -> dict[str, Any]:
    """The attempt's column values, as every backend stores them."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}  # not asdict(): no deep copies
    values["cost_pusd"] = to_pico(values.pop("cost_usd"))
    values["tools_called"] = json.dumps(list(record.tools_called))
    return values


def insert_attempts(conn: sqlite3.Connection, records: Sequence[AttemptRecord]) -> None:
    """Insert attempts and add them to the usage rollup; the caller owns the transaction."""
    rows = [attempt_values(record) for record in records]
    usage.set_first_flags(conn, rows)
    conn.executemany(_INSERT, [[row[c] for c in COLUMNS + _FLAGS] for row in rows])
    usage.add_to_rollup(conn, rows)


class Ledger:
    """The `AttemptLedger` on SQLite: append attempts; read them back for tests and tools."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, record: AttemptRecord, settle: tuple[int, ...] = ()) -> None:
        """Commit the attempt, its rollup sums and the deletion of its reservations in one transaction."""

        def write(conn: sqlite3.Connection) -> None:
            insert_attempts(conn, [record])
            if settle:
                conn.executemany("DELETE FROM reservations WHERE id = ?", [(reservation,) for reservation in settle])

        await self._db.write(write)

    async def import_attempts(self, records: Iterable[AttemptRecord]) -> None:
        """Bulk-load attempts in one transaction, then recompute flags and rollup once (imports, benchmarks)."""
        columns = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT INTO attempts ({columns}) VALUES ({marks})",
                ([values[c] for c in COLUMNS] for values in map(attempt_values, records)),
            )
            usage.rebuild(conn)

        await self._db.write(write)

    async def attempts(self, task_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if task_id is None:
                cur = conn.execute("SELECT * FROM attempts ORDER BY id DESC LIMIT ?", (limit,))
            else:
                cur = conn.execute("SELECT * FROM attempts WHERE task_id = ? ORDER BY id", (task_id,))
            return rows_as_dicts(cur)

        return await self._db.read(read)
