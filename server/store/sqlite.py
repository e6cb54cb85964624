"""The SQLite backend: one database file in the data dir behind every `store.interface` protocol."""

from __future__ import annotations

from pathlib import Path

from server.store.budgets import SqliteBudgetWindows
from server.store.db import Database, open_database
from server.store.decisions import DecisionLog
from server.store.ledger import Ledger
from server.store.rates import SqliteRateWindows
from server.store.reports import SqliteReports
from server.store.sessions import SessionStore


class SqliteStore:
    """The `Store` protocol on one SQLite `Database` (opened, migrated and schema-checked by `Database`)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._ledger = Ledger(database)
        self._budgets = SqliteBudgetWindows(database)
        self._reports = SqliteReports(database)
        self._rates = SqliteRateWindows(database)
        self._sessions = SessionStore(database)

    @property
    def location(self) -> str:
        return str(self.database.path)

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def budgets(self) -> SqliteBudgetWindows:
        return self._budgets

    @property
    def reports(self) -> SqliteReports:
        return self._reports

    @property
    def rates(self) -> SqliteRateWindows:
        return self._rates

    @property
    def sessions(self) -> SessionStore:
        return self._sessions

    def decisions(self, *, analyzer_version: str, config_fingerprint: str, price_table_version: str) -> DecisionLog:
        return DecisionLog(self.database, analyzer_version=analyzer_version, config_fingerprint=config_fingerprint,
                           price_table_version=price_table_version)  # fmt: skip

    async def aclose(self) -> None:
        self.database.close()


def open_sqlite_store(data_dir: Path) -> SqliteStore:
    """Open (creating and migrating if needed) the data dir's database; `StoreError` if it cannot be used."""
    return SqliteStore(open_database(data_dir))
