"""Hosts started at once on a new data dir all open its databases: the ledger and the memory sub-server's.

Two `serve` processes (or an editor that starts two) used to race here: SQLite can refuse the switch to WAL
at once with "database is locked", and one host died during `initialize` with "Connection closed".
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Queue

import pytest

from server.store.db import open_database
from tool_servers.memory.store import MemoryStore

pytestmark = pytest.mark.slow
PROCESSES = 8
ROUNDS = 20  # the race lost in about 4 of 10 rounds before the fix


def _open(which: str, path: Path, start: Barrier, results: Queue[str]) -> None:
    start.wait()  # every process is imported and waiting: they reach the new file together
    try:
        if which == "ledger":
            open_database(path).close()
        else:
            MemoryStore(path / "memory.sqlite3")
        results.put("")
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("which", ["ledger", "memory"])
def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path, which: str) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        path = tmp_path / f"round-{round_}"
        start, results = context.Barrier(PROCESSES), context.Queue()
        processes = [context.Process(target=_open, args=(which, path, start, results)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        errors = [error for error in (results.get(timeout=60) for _ in processes) if error]
        for process in processes:
            process.join(timeout=60)
        assert not errors, f"round {round_}: {errors[0]}"
