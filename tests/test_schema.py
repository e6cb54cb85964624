"""The SQLite schema a database migrated from empty ends with is exactly what the first releases produced.

`EXPECTED` was generated once by running the migrations of commit cd103aa (when migration 4 was still built
from the live `Sums` dataclass) and frozen here, with migration 5's rate_events and migration 6's attempt
`role` column and its partial index added when they shipped: a
change to any shipped migration, even to whitespace SQLite keeps, fails this test. A schema change is a new
migration, and a new entry below.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.store.db import DB_FILENAME, open_database
from server.store.migrations import MIGRATIONS, migrate, run_script

EXPECTED_VERSION = 6
# (type, name, tbl_name, sql) from sqlite_master, ordered by type and name.
EXPECTED = [
    ("index", "attempts_role", "attempts",
        "CREATE INDEX attempts_role ON attempts (role, started_at) WHERE role IS NOT NULL"),
    ("index", "attempts_session", "attempts",
        "CREATE INDEX attempts_session ON attempts (session_id, started_at)"),
    ("index", "attempts_started", "attempts",
        "CREATE INDEX attempts_started ON attempts (started_at)"),
    ("index", "attempts_task", "attempts",
        "CREATE INDEX attempts_task ON attempts (task_id)"),
    ("index", "decisions_at", "decisions",
        "CREATE INDEX decisions_at ON decisions (at)"),
    ("index", "decisions_task", "decisions",
        "CREATE INDEX decisions_task ON decisions (task_sha256)\n"
        "        "),
    ("index", "messages_session", "messages",
        "CREATE INDEX messages_session ON messages (session_id, id)"),
    ("index", "rate_events_key_at", "rate_events",
        "CREATE INDEX rate_events_key_at ON rate_events (key, at)"),
    ("index", "reservations_expiry", "reservations",
        "CREATE INDEX reservations_expiry ON reservations (expires_at)\n"
        "        "),
    ("index", "sqlite_autoindex_sessions_1", "sessions",
        None),
    ("table", "attempts", "attempts",
        "CREATE TABLE attempts (\n"
        "            id INTEGER PRIMARY KEY,\n"
        "            task_id TEXT NOT NULL,\n"
        "            session_id TEXT,\n"
        "            attempt_no INTEGER NOT NULL,\n"
        "            started_at REAL NOT NULL,\n"
        "            latency_ms REAL NOT NULL,\n"
        "            model TEXT NOT NULL,\n"
        "            provider TEXT NOT NULL,\n"
        "            category TEXT,\n"
        "            outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),\n"
        "            error_type TEXT,\n"
        "            error_message TEXT,\n"
        "            input_tokens INTEGER NOT NULL DEFAULT 0,\n"
        "            cached_input_tokens INTEGER NOT NULL DEFAULT 0,\n"
        "            output_tokens INTEGER NOT NULL DEFAULT 0,\n"
        "            reasoning_tokens INTEGER NOT NULL DEFAULT 0,\n"
        "            cost_pusd INTEGER,              -- cost in pico-USD (1e-12), "
        "NULL when unpriced\n"
        "            estimated_input_tokens INTEGER,\n"
        "            estimated_output_tokens INTEGER,\n"
        "            tool_rounds INTEGER NOT NULL DEFAULT 0,\n"
        "            tools_called TEXT NOT NULL DEFAULT '[]',\n"
        "            price_table_version TEXT NOT NULL\n"
        "        , new_task INTEGER NOT NULL DEFAULT 0, new_model INTEGER NOT NULL DEFAULT 0, "
        "new_provider INTEGER NOT NULL DEFAULT 0, new_category INTEGER NOT NULL DEFAULT 0, "
        "new_session INTEGER NOT NULL DEFAULT 0, new_day INTEGER NOT NULL DEFAULT 0, role TEXT)"),
    ("table", "decisions", "decisions",
        "CREATE TABLE decisions (\n"
        "            id INTEGER PRIMARY KEY,\n"
        "            at REAL NOT NULL,\n"
        "            kind TEXT NOT NULL CHECK (kind IN ('route', 'complete')),\n"
        "            task_id TEXT,\n"
        "            task_sha256 TEXT NOT NULL,\n"
        "            task_chars INTEGER NOT NULL,\n"
        "            options TEXT NOT NULL,\n"
        "            analyzer_version TEXT NOT NULL,\n"
        "            config_fingerprint TEXT NOT NULL,\n"
        "            price_table_version TEXT NOT NULL,\n"
        "            category TEXT NOT NULL,\n"
        "            complexity INTEGER NOT NULL,\n"
        "            strong_score REAL NOT NULL,\n"
        "            primary_model TEXT NOT NULL,\n"
        "            fallback_models TEXT NOT NULL,\n"
        "            estimated_cost_usd REAL,\n"
        "            reasons TEXT NOT NULL\n"
        "        )"),
    ("table", "messages", "messages",
        "CREATE TABLE messages (\n"
        "            id INTEGER PRIMARY KEY,\n"
        "            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,\n"
        "            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),\n"
        "            content TEXT NOT NULL,\n"
        "            created_at REAL NOT NULL\n"
        "        )"),
    ("table", "rate_events", "rate_events",
        "CREATE TABLE rate_events (\n"
        "    id INTEGER PRIMARY KEY,\n"
        "    key TEXT NOT NULL,\n"
        "    at REAL NOT NULL,\n"
        "    tokens INTEGER NOT NULL,\n"
        "    busy_until REAL NOT NULL\n"
        ")"),
    ("table", "reservations", "reservations",
        "CREATE TABLE reservations (\n"
        "            id INTEGER PRIMARY KEY,\n"
        "            task_id TEXT NOT NULL,\n"
        "            session_id TEXT,\n"
        "            model TEXT NOT NULL,\n"
        "            amount_pusd INTEGER NOT NULL CHECK (amount_pusd >= 0),\n"
        "            created_at REAL NOT NULL,\n"
        "            expires_at REAL NOT NULL\n"
        "        )"),
    ("table", "sessions", "sessions",
        "CREATE TABLE sessions (\n"
        "            id TEXT PRIMARY KEY,\n"
        "            created_at REAL NOT NULL,\n"
        "            updated_at REAL NOT NULL\n"
        "        )"),
    ("table", "usage_rollup", "usage_rollup",
        "CREATE TABLE usage_rollup (\n"
        "    dim TEXT NOT NULL,\n"
        "    bucket INTEGER NOT NULL, "
        "          -- started_at // bucket size (GRAINS): UTC hours or days since 1970\n"
        "    key TEXT NOT NULL,\n"
        "    price_table_version TEXT NOT NULL,\n"
        "    attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0, "
        "calls INTEGER NOT NULL DEFAULT 0, ok_attempts INTEGER NOT NULL DEFAULT 0, "
        "input INTEGER NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, "
        "output INTEGER NOT NULL DEFAULT 0, reasoning INTEGER NOT NULL DEFAULT 0, "
        "cost_pusd INTEGER NOT NULL DEFAULT 0, priced_attempts INTEGER NOT NULL DEFAULT 0, "
        "priced_input INTEGER NOT NULL DEFAULT 0, priced_cached INTEGER NOT NULL DEFAULT 0, "
        "priced_output INTEGER NOT NULL DEFAULT 0, unpriced_input INTEGER NOT NULL DEFAULT 0, "
        "unpriced_output INTEGER NOT NULL DEFAULT 0,\n"
        "    PRIMARY KEY (dim, bucket, key, price_table_version)\n"
        ") WITHOUT ROWID\n"),
]  # fmt: skip


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def test_a_database_migrated_from_empty_has_the_schema_the_first_releases_produced(tmp_path: Path) -> None:
    open_database(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == EXPECTED_VERSION == len(MIGRATIONS)
        assert _schema(conn) == EXPECTED
    finally:
        conn.close()


def test_migrating_step_by_step_gives_the_same_schema_as_all_at_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None)
    try:
        for number in range(1, len(MIGRATIONS) + 1):  # a database of each older release, then upgraded
            conn.execute("BEGIN")
            run_script(conn, MIGRATIONS[number - 1].script)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        migrate(conn)  # nothing left to do
        assert _schema(conn) == EXPECTED
    finally:
        conn.close()
