"""One SQLite database in WAL mode (schema from `migrations`) and async access off the event loop.

Invariants: every write is one transaction, so a killed process leaves either the whole row or none;
calls run in a worker thread, one at a time per `Database`; a read first commits every queued write.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import anyio.to_thread

from server.errors import SchemaTooNew, StoreError
from server.store.background import Background
from server.store.migrations import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", contravariant=True)
DB_FILENAME = "router.sqlite3"


class Appender(Protocol[R]):
    """Rows of one kind (ledger attempts, decisions) that a batch writes together, a few statements for all."""

    def write_rows(self, conn: sqlite3.Connection, rows: Sequence[R]) -> None: ...


class _Pending:
    """One queued write (a function, or a row for an appender) and, once committed, its result or error."""

    __slots__ = ("_waiter", "appender", "committed", "detached", "error", "finished", "fn", "row", "value")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any] | None,
        appender: Appender[Any] | None = None,
        row: Any = None,
        *,
        detached: bool = False,
    ) -> None:
        self.fn = fn
        self.appender = appender
        self.row = row
        self.detached = detached  # nobody awaits it: its error is logged
        self.finished = False
        self._waiter: anyio.Event | None = None  # made only if someone waits (most rows are never awaited)
        self.value: Any = None
        self.error: BaseException | None = None
        self.committed = False

    def finish(self) -> None:
        self.finished = True
        if self._waiter is not None:
            self._waiter.set()

    async def wait(self) -> None:
        if not self.finished:
            if self._waiter is None:
                self._waiter = anyio.Event()
            await self._waiter.wait()

    def run(self, conn: sqlite3.Connection) -> None:
        assert self.fn is not None
        self.value = self.fn(conn)

    def write_row(self, conn: sqlite3.Connection) -> None:
        assert self.appender is not None
        self.appender.write_rows(conn, [self.row])


class Database:
    """A single SQLite connection used from worker threads, one statement batch at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = _connect(path)
        self._queue: list[_Pending] = []
        self._flushing = False
        self._hurry = anyio.Event()  # set when a write or read arrives while a flush lingers
        self._detached_flush = False  # a background task will flush the detached rows queued

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread; the caller's cancellation does not interrupt it midway.

        Writes queued before this call are committed first, so a read sees every row already appended.
        """
        if self._queue:
            await self._submit(_Pending(_nothing))
        return await anyio.to_thread.run_sync(self.run_sync, fn, abandon_on_cancel=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a write transaction, committed before this returns (group commit).

        Writes queued while a commit is in progress share the next transaction, each in its own savepoint:
        a write that raises is rolled back alone and its error raised to its caller. Under concurrency this
        turns many commits and thread hops into one; alone, it costs what `run` does.
        """
        return cast(T, await self._submit(_Pending(fn)))

    def append(self, appender: Appender[R], row: R, *, linger_s: float = 0.0) -> Awaitable[None]:
        """Queue `row` for `appender` now; await the result for its commit (its error, if it fails).

        With `linger_s`, a flush this starts first waits up to that long for more rows to share its commit
        (audit rows written one per request); any other write or read arriving meanwhile ends the wait.

        Queued rows are visible to every later `run`, whether or not anyone awaits them yet, so a caller may
        hand the awaitable to a background task and answer at once. Rows for the same appender that share a
        batch are written by one `write_rows` call (one statement per table instead of one per row); if that
        fails, each row is retried alone, so only a bad row fails.
        """
        pending = _Pending(None, appender, row)
        self._queue.append(pending)
        if not linger_s:
            self._hurry.set()
        return self._complete(pending, linger_s)

    def append_soon(self, appender: Appender[R], row: R, background: Background, *, linger_s: float = 0.0) -> None:
        """Queue `row` and return at once; a flush in `background` commits it (one task per batch, not per
        row) and logs a failure to stderr. Later reads see the row, as with `append`."""
        pending = _Pending(None, appender, row, detached=True)
        self._queue.append(pending)
        if not linger_s:
            self._hurry.set()
        if not self._detached_flush:
            self._detached_flush = True
            background.spawn(self._flush_detached(pending, linger_s), what="database writes")

    async def _flush_detached(self, pending: _Pending, linger_s: float) -> None:
        while True:
            with contextlib.suppress(Exception):  # logged per row in `_complete`
                await self._complete(pending, linger_s)
            self._detached_flush = False
            # Rows queued after that flush began and not taken by a flush still running need another one.
            leftovers = [item for item in self._queue if item.detached]
            if not leftovers or self._flushing:
                return
            self._detached_flush = True
            pending, linger_s = leftovers[-1], 0.0

    async def _submit(self, pending: _Pending) -> Any:
        self._queue.append(pending)
        self._hurry.set()
        return await self._complete(pending)

    async def _complete(self, pending: _Pending, linger_s: float = 0.0) -> Any:
        if not self._flushing and not pending.finished:
            self._flushing = True
            try:
                with anyio.CancelScope(shield=True):  # others wait on this flush: it must finish
                    if linger_s:
                        self._hurry = anyio.Event()
                        with anyio.move_on_after(linger_s):
                            await self._hurry.wait()
                    while self._queue:
                        batch, self._queue = self._queue, []
                        try:
                            await anyio.to_thread.run_sync(self._commit, batch, abandon_on_cancel=False)
                        finally:  # whatever happened, nobody waits forever
                            for item in batch:
                                if not item.committed and item.error is None:
                                    item.error = StoreError("the write was interrupted before it was committed")
                                if item.detached and item.error is not None:
                                    log.error("a row could not be written to %s: %s", self.path, item.error)
                                item.finish()
            except BaseException:
                for item in self._queue:  # queued behind a flush that died: fail them rather than strand them
                    item.error = StoreError("the database writer stopped before this write")
                    if item.detached:
                        log.error("a row could not be written to %s: %s", self.path, item.error)
                    item.finish()
                self._queue = []
                raise
            finally:
                self._flushing = False
        await pending.wait()
        if pending.error is not None:
            raise pending.error
        return pending.value

    def _commit(self, batch: list[_Pending]) -> None:
        with self._lock:
            conn = self._conn
            isolate = len(batch) > 1  # alone, the transaction is the write's savepoint
            try:
                conn.execute("BEGIN IMMEDIATE")
                groups: dict[int, list[_Pending]] = {}
                for item in batch:
                    if item.appender is not None:
                        groups.setdefault(id(item.appender), []).append(item)
                    elif isolate:
                        _in_savepoint(conn, [item], item.run)
                    else:
                        item.run(conn)
                for items in groups.values():
                    _append_rows(conn, items, isolate)
                conn.execute("COMMIT")
                for item in batch:
                    item.committed = item.error is None
            except Exception as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for item in batch:
                    item.error = item.error or exc

    def hurry(self) -> None:
        """End any lingering flush now (shutting down: nothing more is coming to share its commit)."""
        self._hurry.set()

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _nothing(_: sqlite3.Connection) -> None:
    return None


def _in_savepoint(conn: sqlite3.Connection, items: list[_Pending], work: Callable[[sqlite3.Connection], Any]) -> bool:
    """Run `work` in a savepoint; on failure roll it back and give the error to every item. True if it worked."""
    conn.execute("SAVEPOINT write")
    try:
        work(conn)
        conn.execute("RELEASE write")
        return True
    except Exception as exc:
        conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
        for item in items:
            item.error = exc
        return False


def _append_rows(conn: sqlite3.Connection, items: list[_Pending], isolate: bool) -> None:
    appender = cast(Appender[Any], items[0].appender)
    rows = [item.row for item in items]
    if not isolate:
        appender.write_rows(conn, rows)
    elif not _in_savepoint(conn, items, lambda c: appender.write_rows(c, rows)) and len(items) > 1:
        for item in items:  # find the bad row(s): the others still land
            item.error = None
            _in_savepoint(conn, [item], item.write_row)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        migrate(conn)
    except SchemaTooNew as exc:
        raise StoreError(
            f"the database {path} has schema version {exc.version}, newer than this model-router "
            f"understands ({exc.known}); upgrade model-router or point MODEL_ROUTER_HOME elsewhere"
        ) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {path.parent}: {exc.strerror}") from exc
    return conn


def open_database(data_dir: Path) -> Database:
    return Database(data_dir / DB_FILENAME)


def rows_as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
