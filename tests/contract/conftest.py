"""The backends the store contract suite runs against: SQLite and PostgreSQL (the session's own server).

A `Backend` opens stores on one fresh database per test (each `open()` is another connection or pool: what
a second process or replica sees), can make one store's writes fail, and can mark the database as written
by a newer release. Every store it opened is closed after the test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.store import Store, open_store
from server.store.db import DB_FILENAME
from server.store.migrations import MIGRATIONS
from tests.helpers import set_writable


@dataclass
class Backend:
    name: str
    _open: Callable[[], Awaitable[Store]]
    refuse_writes: Callable[[Store], None]
    mark_too_new: Callable[[], None]
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = await self._open()
        self.opened.append(store)
        return store


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    def mark_too_new() -> None:
        conn = sqlite3.connect(tmp_path / DB_FILENAME)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        conn.close()

    return Backend("sqlite", lambda: open_store(tmp_path), lambda store: set_writable(store, False), mark_too_new)


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from server.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
    from tests.pgserver import PostgresServer

    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    dbname = url.rsplit("/", 1)[1]

    def refuse_writes(store: Store) -> None:
        # As a failover to a read-only standby does: new connections refuse writes, the old ones are cut.
        server.admin(f"ALTER DATABASE {dbname} SET default_transaction_read_only = on")
        server.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")

    def mark_too_new() -> None:
        server.admin(f"INSERT INTO schema_migrations (version, name) VALUES ({len(PG_MIGRATIONS) + 1}, 'future')",
                     dbname)  # fmt: skip

    return Backend("postgresql", lambda: open_store(tmp_path, url), refuse_writes, mark_too_new)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = BACKENDS[request.param](request, tmp_path)
    yield made
    for store in made.opened:
        await store.aclose()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
