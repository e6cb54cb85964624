"""Group commit: concurrent writes share transactions, a failing write fails alone, nothing is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from server.store import open_database

pytestmark = pytest.mark.anyio


async def test_concurrent_writes_all_commit_and_a_failing_one_fails_alone(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    db.run_sync(lambda c: c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    errors: list[BaseException] = []

    async def put(n: int) -> None:
        try:
            await db.write(lambda c: c.execute("INSERT INTO t (n) VALUES (?)", (n,)).lastrowid)
        except sqlite3.IntegrityError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for n in [*range(200), 7]:  # 7 twice: exactly one of them must fail, and only it
            tg.start_soon(put, n)
    rows = db.run_sync(lambda c: [n for (n,) in c.execute("SELECT n FROM t ORDER BY n")])
    assert rows == list(range(200)) and len(errors) == 1
    assert await db.write(lambda c: 42) == 42  # the writer keeps working; values come back
    db.close()
