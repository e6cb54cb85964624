"""Everything the router keeps: the attempt ledger, budget reservations, usage sums, sessions and decisions.

`interface` holds the protocols the rest of the code uses and the records that cross them; `sqlite` is the
backend (one file in the data dir). All SQL lives in this package. `open_store` is the one place that
chooses a backend, so a second one plugs in here without touching accounting/ or execution/.
"""

from pathlib import Path

from server.store.db import Database, open_database
from server.store.interface import AttemptRecord, Store
from server.store.ledger import Ledger
from server.store.sessions import SessionStore, validate_session_id
from server.store.sqlite import SqliteStore, open_sqlite_store


def open_store(data_dir: Path) -> Store:
    """Open the router's store for `data_dir`; raises `StoreError` when it cannot be opened or is too new."""
    return open_sqlite_store(data_dir)


__all__ = [
    "AttemptRecord",
    "Database",
    "Ledger",
    "SessionStore",
    "SqliteStore",
    "Store",
    "open_database",
    "open_store",
    "validate_session_id",
]
