"""The attempt ledger: one row per model attempt, failures included, written only by the dispatcher.

Costs are stored as integer pico-USD (1e-12), so sums in SQL are exact; NULL means the model had no
price (reported as unpriced, never as 0). Each row carries the price table version it was priced with.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from server.store import usage
from server.store.background import Background
from server.store.db import Database, rows_as_dicts

PICO = Decimal(10) ** 12


def to_pico(cost: Decimal | None) -> int | None:
    return None if cost is None else int((cost * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_pico(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value) / PICO


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one attempt at one model did and cost."""

    task_id: str
    session_id: str | None
    attempt_no: int
    started_at: float
    latency_ms: float
    model: str
    provider: str
    category: str | None
    outcome: str  # ok | error | cancelled
    price_table_version: str
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    estimated_input_tokens: int | None = None
    estimated_output_tokens: int | None = None
    tool_rounds: int = 0
    tools_called: tuple[str, ...] = field(default=())


_COLUMNS = [
    "task_id", "session_id", "attempt_no", "started_at", "latency_ms", "model", "provider", "category",
    "outcome", "error_type", "error_message", "input_tokens", "cached_input_tokens", "output_tokens",
    "reasoning_tokens", "cost_pusd", "estimated_input_tokens", "estimated_output_tokens", "tool_rounds",
    "tools_called", "price_table_version",
]  # fmt: skip
_FLAGS = list(usage.FLAG.values())
_INSERT = f"INSERT INTO attempts ({', '.join(_COLUMNS + _FLAGS)}) VALUES ({', '.join('?' for _ in _COLUMNS + _FLAGS)})"


def _values(record: AttemptRecord) -> dict[str, Any]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}  # not asdict(): no deep copies
    values["cost_pusd"] = to_pico(values.pop("cost_usd"))
    values["tools_called"] = json.dumps(list(record.tools_called))
    return values


def insert_attempts(conn: sqlite3.Connection, records: Sequence[AttemptRecord]) -> None:
    """Insert attempts and add them to the usage rollup; the caller owns the transaction."""
    rows = [_values(record) for record in records]
    usage.set_first_flags(conn, rows)
    conn.executemany(_INSERT, [[row[c] for c in _COLUMNS + _FLAGS] for row in rows])
    usage.add_to_rollup(conn, rows)


class _AttemptRows:
    """The ledger's appender: a batch's attempts in a few statements, their reservations settled with them."""

    def write_rows(self, conn: sqlite3.Connection, rows: Sequence[tuple[AttemptRecord, tuple[int, ...]]]) -> None:
        insert_attempts(conn, [record for record, _ in rows])
        settled = [(reservation,) for _, settle in rows for reservation in settle]
        if settled:
            conn.executemany("DELETE FROM reservations WHERE id = ?", settled)


def import_attempts(conn: sqlite3.Connection, records: Iterable[AttemptRecord]) -> None:
    """Bulk-load attempts in one transaction, then recompute flags and rollup once (imports, benchmarks)."""
    rows = ([values[c] for c in _COLUMNS] for values in map(_values, records))
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(f"INSERT INTO attempts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                         rows)  # fmt: skip
        usage.rebuild(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class Ledger:
    """Append attempts; read them back for reports and tests."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rows = _AttemptRows()

    def record(self, record: AttemptRecord, settle: tuple[int, ...] = ()) -> Awaitable[None]:
        """Queue the attempt and the deletion of its budget reservations (one transaction); await to commit."""
        return self._db.append(self._rows, (record, settle))

    def record_soon(self, record: AttemptRecord, settle: tuple[int, ...], background: Background) -> None:
        """Queue the attempt like `record`, committed by a flush in `background` (the caller does not wait)."""
        self._db.append_soon(self._rows, (record, settle), background)

    async def attempts(self, task_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if task_id is None:
                cur = conn.execute("SELECT * FROM attempts ORDER BY id DESC LIMIT ?", (limit,))
            else:
                cur = conn.execute("SELECT * FROM attempts WHERE task_id = ? ORDER BY id", (task_id,))
            return rows_as_dicts(cur)

        return await self._db.run(read)
