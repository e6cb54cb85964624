"""The rows `cost_report` is assembled from, read from SQLite in one snapshot.

Sums come through the usage rollup (`store.usage`), which gives exactly the sums of the raw rows in a
fraction of the time; the estimate-accuracy sample is the newest comparable attempts, a bounded read
however large the ledger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from server.store import usage
from server.store.db import Database
from server.store.interface import Dimension, ReportRows, ReportWindow, Sums
from server.store.strategy_sums import strategy_sums, strategy_sums_sql


class SqliteReports:
    """The `ReportSource` protocol on SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def report_rows(
        self, window: ReportWindow, dimensions: Sequence[Dimension], *, accuracy_samples: int
    ) -> ReportRows:
        def read(conn: sqlite3.Connection) -> ReportRows:
            bounds = (window.since, window.until, window.session_id)
            sums: dict[str, dict[tuple[str, str], Sums]] = {
                dim: usage.window_sums(conn, dim, *bounds) for dim in dict.fromkeys(dimensions)
            }
            where, args = _window(window)
            strategies = strategy_sums(conn.execute(strategy_sums_sql(" AND ".join(where)), args).fetchall())
            return ReportRows(sums, _accuracy_rows(conn, window, accuracy_samples), strategies)

        return await self._db.read(read)


def _window(window: ReportWindow) -> tuple[list[str], list[object]]:
    """The window as SQL conditions (always at least one) and their arguments."""
    where: list[str] = ["1 = 1"]
    args: list[object] = []
    for clause, value in (("started_at >= ?", window.since), ("started_at < ?", window.until),
                          ("session_id = ?", window.session_id)):  # fmt: skip
        if value is not None:
            where.append(clause)
            args.append(value)
    return where, args


def _accuracy_rows(
    conn: sqlite3.Connection, window: ReportWindow, limit: int
) -> list[tuple[int, int, int, int | None]]:
    bounds, args = _window(window)
    where = ["outcome = 'ok'", "tool_rounds = 0", "estimated_input_tokens > 0", *bounds]
    return conn.execute(
        "SELECT input_tokens, estimated_input_tokens, output_tokens, estimated_output_tokens FROM attempts "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
