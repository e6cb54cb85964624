"""The schema: an ordered, append-only list of migrations; its length is the version in `PRAGMA user_version`.

Never edit a shipped migration; add a new one. `migrate` runs the missing ones in one transaction, one
process at a time, and refuses a database newer than it knows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from server.errors import SchemaTooNew
from server.store import usage


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, which would break the migration's transaction.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


def _v1_attempts_and_sessions(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            session_id TEXT,
            attempt_no INTEGER NOT NULL,
            started_at REAL NOT NULL,
            latency_ms REAL NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            category TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),
            error_type TEXT,
            error_message TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            cost_pusd INTEGER,              -- cost in pico-USD (1e-12), NULL when unpriced
            estimated_input_tokens INTEGER,
            estimated_output_tokens INTEGER,
            tool_rounds INTEGER NOT NULL DEFAULT 0,
            tools_called TEXT NOT NULL DEFAULT '[]',
            price_table_version TEXT NOT NULL
        );
        CREATE INDEX attempts_started ON attempts (started_at);
        CREATE INDEX attempts_session ON attempts (session_id, started_at);
        CREATE INDEX attempts_task ON attempts (task_id);

        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_session ON messages (session_id, id);
        """,
    )


def _v2_budget_reservations(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE reservations (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            session_id TEXT,
            model TEXT NOT NULL,
            amount_pusd INTEGER NOT NULL CHECK (amount_pusd >= 0),
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX reservations_expiry ON reservations (expires_at)
        """,
    )


def _v3_decisions(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('route', 'complete')),
            task_id TEXT,
            task_sha256 TEXT NOT NULL,
            task_chars INTEGER NOT NULL,
            options TEXT NOT NULL,
            analyzer_version TEXT NOT NULL,
            config_fingerprint TEXT NOT NULL,
            price_table_version TEXT NOT NULL,
            category TEXT NOT NULL,
            complexity INTEGER NOT NULL,
            strong_score REAL NOT NULL,
            primary_model TEXT NOT NULL,
            fallback_models TEXT NOT NULL,
            estimated_cost_usd REAL,
            reasons TEXT NOT NULL
        );
        CREATE INDEX decisions_at ON decisions (at);
        CREATE INDEX decisions_task ON decisions (task_sha256)
        """,
    )


def _v4_usage_rollup(db: sqlite3.Connection) -> None:
    usage.add_attempt_columns(db)
    db.execute(usage.CREATE)
    usage.rebuild(db)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_attempts_and_sessions,
    _v2_budget_reservations,
    _v3_decisions,
    _v4_usage_rollup,
]


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise SchemaTooNew(version, len(MIGRATIONS))
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            migration(conn)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
