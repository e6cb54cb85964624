"""The backends the store contract suite runs against: SQLite today; a second backend adds one entry.

A `Backend` opens stores on one fresh database per test (each `open()` is another connection: what a
second process sees), can make one store's writes fail, and can mark the database as written by a newer
release. Every store it opened is closed after the test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
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
    _open: Callable[[], Store]
    refuse_writes: Callable[[Store], None]
    mark_too_new: Callable[[], None]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self._open()
        self.opened.append(store)
        return store


def _sqlite(tmp_path: Path) -> Backend:
    def mark_too_new() -> None:
        conn = sqlite3.connect(tmp_path / DB_FILENAME)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        conn.close()

    return Backend("sqlite", lambda: open_store(tmp_path), lambda store: set_writable(store, False), mark_too_new)


BACKENDS: dict[str, Callable[[Path], Backend]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    for store in made.opened:
        await store.aclose()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
