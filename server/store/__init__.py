"""Everything the router keeps: the attempt ledger, budget reservations, usage sums, sessions and decisions.

`interface` holds the protocols the rest of the code uses and the records that cross them. Two backends:
`sqlite` (one file in the data dir, the default, needs nothing) and `postgres` (one database shared by many
`serve` replicas, chosen by a `postgresql://` URL; needs the `postgres` extra). All SQL lives in this
package. `open_store` is the one place that chooses a backend, so accounting/ and execution/ never know
which one they have.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import StoreError
from server.store.db import DB_FILENAME, Database, open_database
from server.store.interface import AttemptRecord, Store
from server.store.ledger import Ledger
from server.store.migrations import MIGRATIONS
from server.store.sessions import SessionStore, validate_session_id
from server.store.sqlite import SqliteStore, open_sqlite_store

if TYPE_CHECKING:
    from types import ModuleType


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What `db check` and `doctor` show: where the store is, its schema version against this release's,
    and how long one round trip took."""

    backend: str
    location: str
    version: int
    known: int
    latency_ms: float


async def open_store(data_dir: Path, url: str | None = None) -> Store:
    """Open the router's store: the PostgreSQL database at `url` when given, else SQLite in `data_dir`.

    Creates or migrates the schema when behind; raises `StoreError` when the store cannot be opened or its
    schema is newer than this release knows.
    """
    if url:
        return await _postgres().open_postgres_store(url)
    return open_sqlite_store(data_dir)


async def upgrade_store(data_dir: Path, url: str | None = None) -> tuple[str, int, int]:
    """Apply missing migrations: (location, version before, version after)."""
    if url:
        postgres = _postgres()
        before, after = await postgres.upgrade_schema(url)
        return postgres.redact(url), before, after
    before = _sqlite_version(data_dir / DB_FILENAME)
    open_sqlite_store(data_dir).database.close()
    return str(data_dir / DB_FILENAME), before, len(MIGRATIONS)


async def check_store(data_dir: Path, url: str | None = None) -> StoreStatus:
    """Reach the store and read its schema version, changing nothing; `StoreError` when unreachable."""
    if url:
        postgres = _postgres()
        version, known, latency = await postgres.check_postgres(url)
        return StoreStatus("postgresql", postgres.redact(url), version, known, latency)
    started = time.perf_counter()
    version = _sqlite_version(data_dir / DB_FILENAME)
    return StoreStatus("sqlite", str(data_dir / DB_FILENAME), version, len(MIGRATIONS),
                       (time.perf_counter() - started) * 1000)  # fmt: skip


async def import_sqlite_ledger(source: Path, url: str) -> dict[str, int]:
    """Copy a SQLite ledger (attempts, sessions, decisions) into the empty PostgreSQL store at `url`."""
    return dict(await _postgres().import_into_postgres(url, source))


def _sqlite_version(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the database {path}: {exc}; check that the file is readable") from exc


def _postgres() -> ModuleType:
    try:
        from server.store import postgres
    except ImportError as exc:
        raise StoreError(
            "a PostgreSQL store is configured but its driver is not installed: "
            "pip install 'mcp-model-router[postgres]' (psycopg and psycopg-pool)"
        ) from exc
    return postgres


__all__ = [
    "AttemptRecord",
    "Database",
    "Ledger",
    "SessionStore",
    "SqliteStore",
    "Store",
    "StoreStatus",
    "check_store",
    "import_sqlite_ledger",
    "open_database",
    "open_store",
    "upgrade_store",
    "validate_session_id",
]
