"""Helpers shared across the tests: one copy of each thing several test files need.

Each section is owned by whoever added it; add yours under its own heading.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


def refuse_writes(store: Store) -> None:
    """Make every later write of this (SQLite) store fail as a read-only or full disk does.

    The process runs as root in CI, where file modes do not stop writes; `query_only` makes SQLite refuse
    them with the same error class ("attempt to write a readonly database") on this connection only.
    """
    database = store.database  # type: ignore[attr-defined]  # the SQLite backend's one connection
    database.run_sync(lambda conn: conn.execute("PRAGMA query_only = ON"))
