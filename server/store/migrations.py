"""The SQLite schema: an ordered, append-only list of migrations, each frozen as the literal SQL it first
shipped with; the list's length is the version in `PRAGMA user_version`.

Never edit a shipped migration, not even its whitespace (SQLite keeps a CREATE statement's text, and
`tests/test_schema.py` compares it with what the first release of each migration produced); add a new one.
Nothing here may be generated from live code: a later edit to that code would rewrite history.
`migrate` runs the missing ones in one transaction, one process at a time, and refuses a database newer
than it knows.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from server.errors import SchemaTooNew


class Migration(NamedTuple):
    name: str
    script: str  # statements separated by ";\n"


def run_script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, which would break the migration's transaction.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


_V1 = """
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
        """

_V2 = """
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
        """

_V3 = """
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
        """

# The per-attempt "first of its task in this group" flags, the usage rollup and its backfill from the rows
# already there (the same sums `usage.rebuild` computes today, frozen as they were generated when shipped).
_V4 = """
ALTER TABLE attempts ADD COLUMN new_task INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN new_model INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN new_provider INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN new_category INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN new_session INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN new_day INTEGER NOT NULL DEFAULT 0;

CREATE TABLE usage_rollup (
    dim TEXT NOT NULL,
    bucket INTEGER NOT NULL,           -- started_at // bucket size (GRAINS): UTC hours or days since 1970
    key TEXT NOT NULL,
    price_table_version TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0, calls INTEGER NOT NULL DEFAULT 0, ok_attempts INTEGER NOT NULL DEFAULT 0, input INTEGER NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, output INTEGER NOT NULL DEFAULT 0, reasoning INTEGER NOT NULL DEFAULT 0, cost_pusd INTEGER NOT NULL DEFAULT 0, priced_attempts INTEGER NOT NULL DEFAULT 0, priced_input INTEGER NOT NULL DEFAULT 0, priced_cached INTEGER NOT NULL DEFAULT 0, priced_output INTEGER NOT NULL DEFAULT 0, unpriced_input INTEGER NOT NULL DEFAULT 0, unpriced_output INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, bucket, key, price_table_version)
) WITHOUT ROWID
;
DROP TABLE IF EXISTS temp.first_flags;
CREATE TEMP TABLE first_flags (id INTEGER PRIMARY KEY, t, m, p, c, s, d);
INSERT INTO temp.first_flags
SELECT id,
    ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id) = 1,
    ROW_NUMBER() OVER (PARTITION BY task_id, model ORDER BY id) = 1,
    ROW_NUMBER() OVER (PARTITION BY task_id, provider ORDER BY id) = 1,
    ROW_NUMBER() OVER (PARTITION BY task_id, COALESCE(category, '(none)') ORDER BY id) = 1,
    ROW_NUMBER() OVER (PARTITION BY task_id, COALESCE(session_id, '(no session)') ORDER BY id) = 1,
    ROW_NUMBER() OVER (PARTITION BY task_id, CAST(started_at / 86400 AS INTEGER) ORDER BY id) = 1
FROM attempts;
UPDATE attempts SET new_task = f.t, new_model = f.m, new_provider = f.p, new_category = f.c,
    new_session = f.s, new_day = f.d FROM temp.first_flags AS f WHERE attempts.id = f.id;
DROP TABLE temp.first_flags;
DELETE FROM usage_rollup;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'all', CAST(started_at / 86400 AS INTEGER) AS b, '' AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_task), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'all/3600', CAST(started_at / 3600 AS INTEGER) AS b, '' AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_task), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'model', CAST(started_at / 86400 AS INTEGER) AS b, model AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_model), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'model/3600', CAST(started_at / 3600 AS INTEGER) AS b, model AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_model), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'provider', CAST(started_at / 86400 AS INTEGER) AS b, provider AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_provider), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'provider/3600', CAST(started_at / 3600 AS INTEGER) AS b, provider AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_provider), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'category', CAST(started_at / 86400 AS INTEGER) AS b, COALESCE(category, '(none)') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_category), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'category/3600', CAST(started_at / 3600 AS INTEGER) AS b, COALESCE(category, '(none)') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_category), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'session', CAST(started_at / 604800 AS INTEGER) AS b, COALESCE(session_id, '(no session)') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_session), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'session/86400', CAST(started_at / 86400 AS INTEGER) AS b, COALESCE(session_id, '(no session)') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_session), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'session/3600', CAST(started_at / 3600 AS INTEGER) AS b, COALESCE(session_id, '(no session)') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_session), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'day', CAST(started_at / 86400 AS INTEGER) AS b, strftime('%Y-%m-%d', started_at, 'unixepoch') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_day), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version;
INSERT INTO usage_rollup (dim, bucket, key, price_table_version,
    attempts, failures, calls, ok_attempts, input, cached, output, reasoning, cost_pusd,
    priced_attempts, priced_input, priced_cached, priced_output, unpriced_input, unpriced_output)
SELECT 'day/3600', CAST(started_at / 3600 AS INTEGER) AS b, strftime('%Y-%m-%d', started_at, 'unixepoch') AS k, price_table_version,
    COALESCE(SUM(1), 0), COALESCE(SUM(outcome != 'ok'), 0), COALESCE(SUM(new_day), 0),
    COALESCE(SUM(outcome = 'ok'), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),
    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pusd), 0),
    COALESCE(SUM(cost_pusd IS NOT NULL), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN cached_input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NOT NULL THEN output_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens END), 0),
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN output_tokens END), 0)
FROM attempts GROUP BY b, k, price_table_version
"""  # noqa: E501  (the CREATE TABLE line is kept exactly as SQLite stored it)

_V5 = """
CREATE TABLE rate_events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    tokens INTEGER NOT NULL,
    busy_until REAL NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (key, at);
"""

_V6 = """
ALTER TABLE attempts ADD COLUMN role TEXT;
CREATE INDEX attempts_role ON attempts (role, started_at) WHERE role IS NOT NULL;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration("attempts_and_sessions", _V1),
    Migration("budget_reservations", _V2),
    Migration("decisions", _V3),
    Migration("usage_rollup", _V4),
    Migration("rate_windows", _V5),
    Migration("attempt_roles", _V6),
)


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise SchemaTooNew(version, len(MIGRATIONS))
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            run_script(conn, migration.script)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
