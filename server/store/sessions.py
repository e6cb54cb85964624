"""Conversation sessions: the user and assistant turns of each `session_id`, newest 50 kept.

A session id is chosen by the caller; it must be 1-128 characters of letters, digits and `._:-` so it
is safe in logs, file names and SQL. Only text turns are kept (tool rounds stay inside one call).
"""

from __future__ import annotations

import re
import sqlite3
import time

from server.errors import InvalidSessionId
from server.store.db import Database

MAX_HISTORY_MESSAGES = 50
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def validate_session_id(session_id: str) -> str:
    if not _SESSION_ID.fullmatch(session_id):
        raise InvalidSessionId(
            f"session_id {session_id[:40]!r} is invalid: use 1-128 characters of letters, digits, '.', '_', ':' or '-'"
        )
    return session_id


class SessionStore:
    """The `SessionHistory` protocol on SQLite: turns in, the newest `MAX_HISTORY_MESSAGES` per session kept."""

    def __init__(self, db: Database, max_messages: int = MAX_HISTORY_MESSAGES) -> None:
        self._db = db
        self._max = max_messages

    async def history(self, session_id: str) -> list[tuple[str, str]]:
        """(role, text) pairs, oldest first."""
        validate_session_id(session_id)

        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT role, content FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, self._max),
            ).fetchall()
            return [(r[0], r[1]) for r in reversed(rows)]

        return await self._db.read(read)

    async def append(self, session_id: str, turns: list[tuple[str, str]]) -> None:
        """Add turns atomically and drop what falls outside the window."""
        validate_session_id(session_id)
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (id, created_at, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                (session_id, now, now),
            )
            conn.executemany(
                "INSERT INTO messages (session_id, role, content, created_at) VALUES (?, ?, ?, ?)",
                [(session_id, role, text, now) for role, text in turns],
            )
            conn.execute(
                "DELETE FROM messages WHERE session_id = ? AND id NOT IN "
                "(SELECT id FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?)",
                (session_id, session_id, self._max),
            )

        await self._db.write(write)
