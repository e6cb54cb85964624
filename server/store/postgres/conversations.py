"""Sessions and the decision log on PostgreSQL: a conversation continues on whichever replica answers,
and every replica's routing decisions land in one log. Same rules as the SQLite modules (`sessions`,
`decisions`): valid session ids only, the newest `MAX_HISTORY_MESSAGES` turns kept, task digests not text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from server.store.decisions import decision_row
from server.store.interface import LoggedRoute
from server.store.postgres.database import PgDatabase
from server.store.sessions import MAX_HISTORY_MESSAGES, validate_session_id


class PgSessions:
    """The `SessionHistory` protocol on PostgreSQL; appends to one session are serialised by its row lock."""

    def __init__(self, db: PgDatabase, max_messages: int = MAX_HISTORY_MESSAGES) -> None:
        self._db = db
        self._max = max_messages

    async def history(self, session_id: str) -> list[tuple[str, str]]:
        validate_session_id(session_id)

        async def read(conn: AsyncConnection) -> list[tuple[str, str]]:
            cur = await conn.execute(
                "SELECT role, content FROM messages WHERE session_id = %s ORDER BY id DESC LIMIT %s",
                (session_id, self._max),
            )
            return [(role, text) for role, text in reversed(await cur.fetchall())]

        return await self._db.read(read)

    async def append(self, session_id: str, turns: list[tuple[str, str]]) -> None:
        validate_session_id(session_id)
        now = time.time()

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                "INSERT INTO sessions (id, created_at, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                (session_id, now, now),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO messages (session_id, role, content, created_at) VALUES (%s, %s, %s, %s)",
                    [(session_id, role, text, now) for role, text in turns],
                )
            await conn.execute(
                "DELETE FROM messages WHERE session_id = %s AND id NOT IN "
                "(SELECT id FROM messages WHERE session_id = %s ORDER BY id DESC LIMIT %s)",
                (session_id, session_id, self._max),
            )

        await self._db.write(write)


_INSERT = (
    "INSERT INTO decisions (at, kind, task_id, task_sha256, task_chars, options, analyzer_version, "
    "config_fingerprint, price_table_version, category, complexity, strong_score, primary_model, "
    "fallback_models, estimated_cost_usd, reasons) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)


class PgDecisionLog:
    """The `DecisionRecorder` protocol on PostgreSQL."""

    def __init__(self, db: PgDatabase, *, analyzer_version: str, config_fingerprint: str, price_table_version: str):
        self._db = db
        self._versions = (analyzer_version, config_fingerprint, price_table_version)

    async def record(
        self, kind: str, task: str, options: Mapping[str, Any], route: LoggedRoute, task_id: str | None = None
    ) -> None:
        row = decision_row(kind, task, options, route, task_id, self._versions)

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(_INSERT, row)

        await self._db.write(write)

    async def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("SELECT * FROM decisions ORDER BY id DESC LIMIT %s", (limit,))
                rows = await cur.fetchall()
            for row in rows:
                for key in ("options", "fallback_models", "reasons"):
                    row[key] = json.loads(row[key])
            return rows

        return await self._db.read(read)
