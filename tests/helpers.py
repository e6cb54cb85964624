"""Helpers shared across the tests: one copy of each thing several test files need.

Each section is owned by whoever added it; add yours under its own heading.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from server.store import open_database
from server.store.db import rows_as_dicts
from server.store.interface import AttemptRecord, Store

# ---------------------------------------------------------------------------------------------------------------
# Store: attempt records and write faults (the store contract suite, ledger, budget and report tests)
# ---------------------------------------------------------------------------------------------------------------


def attempt_record(
    task_id: str = "t", *, cost: Decimal | str | None = "0.001", when: float = 1_790_000_000.0, **fields: Any
) -> AttemptRecord:
    """An attempt of `openai/gpt-4.1-mini` that succeeded at `when`, costing `cost` USD (None: unpriced)."""
    values: dict[str, Any] = {
        "session_id": None, "attempt_no": 1, "latency_ms": 5.0, "model": "openai/gpt-4.1-mini", "provider": "openai",
        "category": "qa_retrieval", "outcome": "ok", "price_table_version": "test", "input_tokens": 100,
        "output_tokens": 10,
    }  # fmt: skip
    values.update(fields)
    return AttemptRecord(
        task_id=task_id, started_at=when, cost_usd=None if cost is None else Decimal(cost), **values
    )


def set_writable(store: Store, writable: bool) -> None:
    """Make every later write of this (SQLite) store fail as a read-only or full disk does, or undo it.

    The process runs as root in CI, where file modes do not stop writes (and a connection opened before a
    chmod keeps writing anyway); `query_only` makes SQLite refuse them with the error a read-only file gives
    ("attempt to write a readonly database"), on this connection only.
    """
    database = store.database  # type: ignore[attr-defined]  # the SQLite backend's one connection
    database.run_sync(lambda conn: conn.execute(f"PRAGMA query_only = {'OFF' if writable else 'ON'}"))


def committed_attempts(data_dir: Path) -> list[dict[str, Any]]:
    """The ledger's attempt rows as committed, read through a connection of their own, oldest first."""
    database = open_database(data_dir)
    try:
        return database.run_sync(lambda conn: rows_as_dicts(conn.execute("SELECT * FROM attempts ORDER BY id")))
    finally:
        database.close()


def refuse_inserts(store: Store, table: str, reason: str = "disk full") -> None:
    """Make this (SQLite) store refuse new rows of one table, as a full disk refuses a page, while others land."""
    database = store.database  # type: ignore[attr-defined]
    database.run_sync(
        lambda conn: conn.execute(
            f"CREATE TEMP TRIGGER refuse_{table} BEFORE INSERT ON main.{table} "
            f"BEGIN SELECT RAISE(ABORT, '{reason}'); END"
        )
    )


def allow_inserts(store: Store, table: str) -> None:
    """Undo `refuse_inserts`."""
    database = store.database  # type: ignore[attr-defined]
    database.run_sync(lambda conn: conn.execute(f"DROP TRIGGER IF EXISTS temp.refuse_{table}"))
