"""One SQLite database in WAL mode (schema from `migrations`), used off the event loop.

Invariants: one connection, used by one worker thread at a time (a lock); every write is one
`BEGIN IMMEDIATE` transaction that has committed when `write` returns, or has been rolled back and raised
`StoreError` naming the file and what to check, so a caller never goes on as if a row were kept when it
was not. A killed process leaves either a whole transaction or none of it (WAL). A read runs in one
transaction, so all its statements see the same snapshot.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from server.errors import SchemaTooNew, StoreError
from server.store.migrations import migrate

T = TypeVar("T")
DB_FILENAME = "router.sqlite3"
BUSY_TIMEOUT_S = 30


class Database:
    """A single SQLite connection used from worker threads, one transaction at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = _connect(path)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a read transaction in a worker thread."""
        return await anyio.to_thread.run_sync(self._transaction, fn, "BEGIN", "read", abandon_on_cancel=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in one write transaction in a worker thread; committed when this returns.

        The caller's cancellation waits for the thread (it is not abandoned half-way): the transaction then
        has either committed or rolled back. An exception from `fn` rolls it back and is raised as it is;
        an SQLite error becomes `StoreError`.
        """
        return await anyio.to_thread.run_sync(
            self._transaction, fn, "BEGIN IMMEDIATE", "write to", abandon_on_cancel=False
        )

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the connection in the caller's thread, outside any transaction (tests, benchmarks)."""
        with self._lock:
            return fn(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], begin: str, verb: str) -> T:
        with self._lock:
            conn = self._conn
            try:
                conn.execute(begin)
                value = fn(conn)
                conn.execute("COMMIT")
                return value
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the error that got us here is the one to report
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise cannot(verb, self.path, exc) from exc
                raise


def cannot(verb: str, path: Path, exc: sqlite3.Error) -> StoreError:
    """The `StoreError` for an SQLite failure on `path`: what failed and what the user can check."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        hint = (
            f"another process held it for longer than the {BUSY_TIMEOUT_S} s busy timeout; check what else uses "
            "this file"
        )
    else:
        hint = (
            "check that the disk has free space and that the file, its directory and its -wal and -shm files "
            "are writable by this user (MODEL_ROUTER_HOME chooses the data directory)"
        )
    kept = " (nothing of this write was kept)" if verb == "write to" else ""
    return StoreError(f"cannot {verb} the database {path}{kept}: {text}; {hint}")


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except SchemaTooNew as exc:
        raise StoreError(
            f"the database {path} has schema version {exc.version}, newer than this model-router "
            f"understands ({exc.known}); upgrade model-router or point MODEL_ROUTER_HOME elsewhere"
        ) from exc
    except sqlite3.Error as exc:
        raise cannot("open", path, exc) from exc
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {path.parent}: {exc.strerror}") from exc
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out other processes that are opening the same new file.

    When two processes open a new database at once, the switch can fail with "database is locked" at
    once: SQLite skips its busy handler where waiting could deadlock. So wait here, up to the same timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def open_database(data_dir: Path) -> Database:
    return Database(data_dir / DB_FILENAME)


def rows_as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
