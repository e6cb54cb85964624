"""The PostgreSQL schema: an ordered, append-only list of migrations, each frozen as its literal SQL.

The applied versions are rows of `schema_migrations` (version, name, applied_at); the highest is the
database's version. Never edit a shipped migration; add a new one. `migrate` takes a transaction-scoped
advisory lock, so replicas starting together migrate once, one after another, each migration all or
nothing (PostgreSQL's DDL is transactional). A database newer than this release knows is refused
(`SchemaTooNew`): a replica never writes to a schema it does not understand. A database already at the
current version is only read, so a read-only standby can still be opened for reports.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from server.errors import SchemaTooNew
from server.store.migrations import Migration

_MIGRATION_LOCK = 0x6D6F_6465_6C72  # pg_advisory_xact_lock key: "modelr"

_V1 = """
CREATE TABLE attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id TEXT NOT NULL,
    session_id TEXT,
    attempt_no INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),
    error_type TEXT,
    error_message TEXT,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    cached_input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cost_pusd BIGINT,
    estimated_input_tokens BIGINT,
    estimated_output_tokens BIGINT,
    tool_rounds INTEGER NOT NULL DEFAULT 0,
    tools_called TEXT NOT NULL DEFAULT '[]',
    price_table_version TEXT NOT NULL,
    new_task SMALLINT NOT NULL DEFAULT 0,
    new_model SMALLINT NOT NULL DEFAULT 0,
    new_provider SMALLINT NOT NULL DEFAULT 0,
    new_category SMALLINT NOT NULL DEFAULT 0,
    new_session SMALLINT NOT NULL DEFAULT 0,
    new_day SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX attempts_started ON attempts (started_at);
CREATE INDEX attempts_session ON attempts (session_id, started_at);
CREATE INDEX attempts_task ON attempts (task_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, id);

CREATE TABLE reservations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id TEXT NOT NULL,
    session_id TEXT,
    model TEXT NOT NULL,
    amount_pusd BIGINT NOT NULL CHECK (amount_pusd >= 0),
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX reservations_expiry ON reservations (expires_at);
CREATE INDEX reservations_task ON reservations (task_id);
CREATE INDEX reservations_session ON reservations (session_id);

-- Reservations lock one of these rows per budget scope they check (the scope's key hashed to a slot),
-- in slot order: every reserve on one scope is serialised across all replicas.
CREATE TABLE budget_locks (slot INTEGER PRIMARY KEY);
INSERT INTO budget_locks (slot) SELECT generate_series(0, 1023);

CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
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
    strong_score DOUBLE PRECISION NOT NULL,
    primary_model TEXT NOT NULL,
    fallback_models TEXT NOT NULL,
    estimated_cost_usd DOUBLE PRECISION,
    reasons TEXT NOT NULL
);
CREATE INDEX decisions_at ON decisions (at);
CREATE INDEX decisions_task ON decisions (task_sha256);

CREATE TABLE usage_rollup (
    dim TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    key TEXT NOT NULL,
    price_table_version TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    calls BIGINT NOT NULL DEFAULT 0,
    ok_attempts BIGINT NOT NULL DEFAULT 0,
    input BIGINT NOT NULL DEFAULT 0,
    cached BIGINT NOT NULL DEFAULT 0,
    output BIGINT NOT NULL DEFAULT 0,
    reasoning BIGINT NOT NULL DEFAULT 0,
    cost_pusd BIGINT NOT NULL DEFAULT 0,
    priced_attempts BIGINT NOT NULL DEFAULT 0,
    priced_input BIGINT NOT NULL DEFAULT 0,
    priced_cached BIGINT NOT NULL DEFAULT 0,
    priced_output BIGINT NOT NULL DEFAULT 0,
    unpriced_input BIGINT NOT NULL DEFAULT 0,
    unpriced_output BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, bucket, key, price_table_version)
)
"""

_V2 = """
CREATE TABLE rate_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    tokens BIGINT NOT NULL,
    busy_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (key, at);
"""

_V3 = """
ALTER TABLE attempts ADD COLUMN role TEXT;
CREATE INDEX attempts_role ON attempts (role, started_at) WHERE role IS NOT NULL;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration("initial", _V1),
    Migration("rate_windows", _V2),
    Migration("attempt_roles", _V3),
)

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


async def schema_version(conn: AsyncConnection) -> int:
    """The database's schema version (0: never migrated)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: AsyncConnection) -> tuple[int, int]:
    """Apply the missing migrations on an autocommit connection; (version before, version after)."""
    before = await schema_version(conn)
    if before > len(MIGRATIONS):
        raise SchemaTooNew(before, len(MIGRATIONS))
    if before == len(MIGRATIONS):
        return before, before
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(_TABLE)
        version = await schema_version(conn)  # another replica may have migrated while we waited
        if version > len(MIGRATIONS):
            raise SchemaTooNew(version, len(MIGRATIONS))
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(migration.script.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, migration.name)
            )
    return before, len(MIGRATIONS)
