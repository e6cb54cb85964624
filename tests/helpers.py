"""Helpers shared by test modules, one headed section per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.store import open_database
from server.store.db import Database, rows_as_dicts

# --- Unwritable database: the one write path for money --------------------------------------------------------


def set_writable(database: Database, writable: bool) -> None:
    """Make every later write through `database`'s own connection fail as a read-only database file does (or
    undo it).

    SQLite's `PRAGMA query_only` refuses every write with SQLITE_READONLY ("attempt to write a readonly
    database"), the error a read-only file gives, and it holds for root. `chmod` would not do: tests may run as
    root, whom file modes do not stop, and a connection opened before the chmod keeps writing anyway.
    """
    database.run_sync(lambda conn: conn.execute(f"PRAGMA query_only = {'OFF' if writable else 'ON'}"))


def committed_attempts(data_dir: Path) -> list[dict[str, Any]]:
    """The ledger's attempt rows as committed, read through a connection of their own."""
    database = open_database(data_dir)
    try:
        return database.run_sync(lambda conn: rows_as_dicts(conn.execute("SELECT * FROM attempts ORDER BY id")))
    finally:
        database.close()
