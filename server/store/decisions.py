"""The decision log on SQLite: every `route_task` and `complete` routing decision, reproducible.

Each row holds the task's SHA-256 (not its text), the caller's options, the analyser version, the
configuration fingerprint and the price table version, and the route that came out. The same task under
the same three versions always yields the same route, so a logged decision can be checked by re-running.
Each row is committed before `record` returns; the caller builds the plain `LoggedRoute` it writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from server.store.db import Database, rows_as_dicts
from server.store.interface import LoggedRoute


def task_digest(task: str) -> str:
    return hashlib.sha256(task.encode("utf-8", "surrogatepass")).hexdigest()


def decision_row(
    kind: str,
    task: str,
    options: Mapping[str, Any],
    route: LoggedRoute,
    task_id: str | None,
    versions: tuple[str, str, str],
) -> tuple[Any, ...]:
    """One decision's column values, in the order of the `decisions` table (every backend writes the same)."""
    return (
        time.time(), kind, task_id, task_digest(task), len(task), json.dumps(dict(options), sort_keys=True),
        *versions, route.category, route.complexity, route.strong_score, route.primary_model,
        json.dumps(list(route.fallback_models)), route.estimated_cost_usd, json.dumps(list(route.reasons)),
    )  # fmt: skip


_INSERT = (
    "INSERT INTO decisions (at, kind, task_id, task_sha256, task_chars, options, analyzer_version, "
    "config_fingerprint, price_table_version, category, complexity, strong_score, primary_model, "
    "fallback_models, estimated_cost_usd, reasons) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class DecisionLog:
    """The `DecisionRecorder` protocol on SQLite: append decisions; list the latest."""

    def __init__(self, db: Database, *, analyzer_version: str, config_fingerprint: str, price_table_version: str):
        self._db = db
        self._versions = (analyzer_version, config_fingerprint, price_table_version)

    async def record(
        self, kind: str, task: str, options: Mapping[str, Any], route: LoggedRoute, task_id: str | None = None
    ) -> None:
        row = decision_row(kind, task, options, route, task_id, self._versions)
        await self._db.write(lambda conn: conn.execute(_INSERT, row))

    async def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = rows_as_dicts(conn.execute("SELECT * FROM decisions ORDER BY id DESC LIMIT ?", (limit,)))
            for row in rows:
                for key in ("options", "fallback_models", "reasons"):
                    row[key] = json.loads(row[key])
            return rows

        return await self._db.read(read)
