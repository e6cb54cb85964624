"""Group commit: concurrent writes share transactions, a failing write fails alone, nothing is lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from server.store import Database, open_database

pytestmark = pytest.mark.anyio


class NumberRows:
    """A test appender: rows are integers inserted into table t; `calls` records each batch's size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def write_rows(self, conn: sqlite3.Connection, rows: Sequence[int]) -> None:
        self.calls.append(len(rows))
        conn.executemany("INSERT INTO t (n) VALUES (?)", [(n,) for n in rows])


def _numbers_db(tmp_path: Path) -> Database:
    db = open_database(tmp_path)
    db.run_sync(lambda c: c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return db


def _numbers(db: Database) -> list[int]:
    return db.run_sync(lambda c: [n for (n,) in c.execute("SELECT n FROM t ORDER BY n")])


async def test_concurrent_writes_all_commit_and_a_failing_one_fails_alone(tmp_path: Path) -> None:
    db = _numbers_db(tmp_path)
    errors: list[BaseException] = []

    async def put(n: int) -> None:
        try:
            await db.write(lambda c: c.execute("INSERT INTO t (n) VALUES (?)", (n,)).lastrowid)
        except sqlite3.IntegrityError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for n in [*range(200), 7]:  # 7 twice: exactly one of them must fail, and only it
            tg.start_soon(put, n)
    assert _numbers(db) == list(range(200)) and len(errors) == 1
    assert await db.write(lambda c: 42) == 42  # the writer keeps working; values come back
    db.close()


async def test_appended_rows_share_one_call_and_a_bad_row_fails_alone(tmp_path: Path) -> None:
    db = _numbers_db(tmp_path)
    rows, failed = NumberRows(), []

    async def put(n: int) -> None:
        try:
            await db.append(rows, n)
        except sqlite3.IntegrityError:
            failed.append(n)

    async with anyio.create_task_group() as tg:
        for n in [*range(300), 150]:  # 150 twice: one of them fails, every other row lands
            tg.start_soon(put, n)
    assert _numbers(db) == list(range(300))
    assert failed == [150]
    assert max(rows.calls) > 1  # rows really were written together
    db.close()


async def test_a_read_sees_rows_queued_before_it_even_if_nobody_awaited_them_yet(tmp_path: Path) -> None:
    db = _numbers_db(tmp_path)
    committed = db.append(NumberRows(), 5)  # handed to a background task in real use; not awaited yet
    assert await db.run(lambda c: c.execute("SELECT n FROM t").fetchall()) == [(5,)]
    await committed  # already committed: returns at once
    db.close()


async def test_a_lingering_flush_is_cut_short_by_a_write_that_cannot_wait(tmp_path: Path) -> None:
    db = _numbers_db(tmp_path)
    rows = NumberRows()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_await, db.append(rows, 1, linger_s=30))
        await anyio.sleep(0.05)  # the audit row's flush is lingering
        with anyio.fail_after(5):  # not 30 s: the plain write ends the linger and shares its commit
            await db.write(lambda c: c.execute("INSERT INTO t (n) VALUES (2)"))
    assert _numbers(db) == [1, 2]
    db.close()


async def _await(work: object) -> None:
    await work  # type: ignore[misc]


async def test_rows_queued_soon_are_all_committed_in_few_flushes_and_a_bad_one_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from server.store.background import Background

    db = _numbers_db(tmp_path)
    rows = NumberRows()
    async with anyio.create_task_group() as tg:
        background = Background(tg)
        for n in [*range(100), 50]:  # 50 twice: logged, the rest committed
            db.append_soon(rows, n, background, linger_s=0.01)
            if n % 10 == 0:
                await anyio.sleep(0.002)  # some rows arrive while a flush lingers or runs
    # Leaving the task group waited for the flushes: nothing is left behind.
    assert _numbers(db) == list(range(100))
    assert "could not be written" in caplog.text and "UNIQUE" in caplog.text
    assert max(rows.calls) > 1 and len(rows.calls) < 60
    db.close()


async def test_hurry_ends_a_linger_at_once(tmp_path: Path) -> None:
    db = _numbers_db(tmp_path)
    with anyio.fail_after(5):  # not 30 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(_await, db.append(NumberRows(), 1, linger_s=30))
            await anyio.sleep(0.05)
            db.hurry()  # what the runtime does when it closes
    assert _numbers(db) == [1]
    db.close()
