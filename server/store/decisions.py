"""The decision log: every `route_task` and `complete` routing decision, reproducible.

Each row holds the task's SHA-256 (not its text), the caller's options, the analyser version, the
configuration fingerprint and the price table version, and the route that came out. The same task under
the same three versions always yields the same route, so a logged decision can be checked by re-running.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from server.routing.router import RouteResult
from server.routing.selector import RouteOptions
from server.store.background import Background
from server.store.db import Database, rows_as_dicts


def task_digest(task: str) -> str:
    return hashlib.sha256(task.encode("utf-8", "surrogatepass")).hexdigest()


def options_json(options: RouteOptions) -> str:
    return json.dumps(
        {
            "cost_preference": options.preference.value,
            "self_hosted_only": options.self_hosted_only,
            "force_model": options.force_model,
            "enable_tools": options.enable_tools,
            "max_output_tokens": options.max_output_tokens,
            "budget_left_usd": None if options.budget is None else options.budget.remaining_usd,
        },
        sort_keys=True,
    )


_INSERT = (
    "INSERT INTO decisions (at, kind, task_id, task_sha256, task_chars, options, analyzer_version, "
    "config_fingerprint, price_table_version, category, complexity, strong_score, primary_model, "
    "fallback_models, estimated_cost_usd, reasons) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


# One decision row per request: rows arriving within this window share a commit (a read or any other write
# flushes them at once, and so does shutting down), so a sequential caller does not pay a commit and a thread
# hop per route_task. The price: a crash of the whole process can lose up to this much of the audit trail.
_LINGER_S = 0.5


class _DecisionRows:
    def write_rows(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        conn.executemany(_INSERT, rows)


class DecisionLog:
    """Append decisions; list the latest."""

    def __init__(self, db: Database, *, analyzer_version: str, config_fingerprint: str, price_table_version: str):
        self._db = db
        self._rows = _DecisionRows()
        self._versions = (analyzer_version, config_fingerprint, price_table_version)

    def record(
        self, kind: str, task: str, options: RouteOptions, route: RouteResult, task_id: str | None = None
    ) -> Awaitable[None]:
        """Queue the decision row now (later reads see it); await the result for its commit."""
        return self._db.append(self._rows, self._row(kind, task, options, route, task_id), linger_s=_LINGER_S)

    def record_soon(
        self,
        kind: str,
        task: str,
        options: RouteOptions,
        route: RouteResult,
        task_id: str | None = None,
        *,
        background: Background,
    ) -> None:
        """Queue the decision row, committed by a flush in `background` (the caller does not wait)."""
        self._db.append_soon(self._rows, self._row(kind, task, options, route, task_id), background, linger_s=_LINGER_S)

    def _row(
        self, kind: str, task: str, options: RouteOptions, route: RouteResult, task_id: str | None
    ) -> tuple[Any, ...]:
        return (
            time.time(), kind, task_id, task_digest(task), len(task), options_json(options), *self._versions,
            route.category, route.complexity, route.strong_score, route.primary_model,
            json.dumps(route.fallback_models), route.estimated_cost_usd, json.dumps(route.reasons),
        )  # fmt: skip

    async def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = rows_as_dicts(conn.execute("SELECT * FROM decisions ORDER BY id DESC LIMIT ?", (limit,)))
            for row in rows:
                for key in ("options", "fallback_models", "reasons"):
                    row[key] = json.loads(row[key])
            return rows

        return await self._db.run(read)
