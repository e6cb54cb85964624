"""The PostgreSQL backend: one database that many `serve` replicas share, behind every `store.interface`
protocol, with the same semantics as SQLite (see `budgets` for how reservations stay atomic across
replicas). Opening connects once to migrate or check the schema (`schema`), then opens a pool.

Needs the `postgres` extra (psycopg 3 and psycopg_pool); imported only when a PostgreSQL URL is configured,
so the SQLite default needs neither.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from server.errors import SchemaTooNew, StoreError
from server.store.postgres.budgets import PgBudgetWindows
from server.store.postgres.conversations import PgDecisionLog, PgSessions
from server.store.postgres.database import PgDatabase, cannot, connect, open_pool, redact
from server.store.postgres.importer import import_sqlite
from server.store.postgres.ledger import PgLedger
from server.store.postgres.rates import PgRateWindows
from server.store.postgres.reports import PgReports
from server.store.postgres.schema import MIGRATIONS, migrate, schema_version


class PostgresStore:
    """The `Store` protocol on one PostgreSQL database."""

    def __init__(self, database: PgDatabase) -> None:
        self.database = database
        self._ledger = PgLedger(database)
        self._budgets = PgBudgetWindows(database)
        self._reports = PgReports(database)
        self._rates = PgRateWindows(database)
        self._sessions = PgSessions(database)

    @property
    def location(self) -> str:
        return self.database.location

    @property
    def ledger(self) -> PgLedger:
        return self._ledger

    @property
    def budgets(self) -> PgBudgetWindows:
        return self._budgets

    @property
    def reports(self) -> PgReports:
        return self._reports

    @property
    def rates(self) -> PgRateWindows:
        return self._rates

    @property
    def sessions(self) -> PgSessions:
        return self._sessions

    def decisions(self, *, analyzer_version: str, config_fingerprint: str, price_table_version: str) -> PgDecisionLog:
        return PgDecisionLog(self.database, analyzer_version=analyzer_version, config_fingerprint=config_fingerprint,
                             price_table_version=price_table_version)  # fmt: skip

    async def aclose(self) -> None:
        await self.database.aclose()


def too_new(url: str, exc: SchemaTooNew) -> StoreError:
    return StoreError(
        f"the database {redact(url)} has schema version {exc.version}, newer than this model-router "
        f"understands ({exc.known}); upgrade model-router on this replica to the release that migrated it"
    )


async def upgrade_schema(url: str) -> tuple[int, int]:
    """Apply missing migrations; (version before, after). `StoreError` if unreachable or too new."""
    conn = await connect(url)
    try:
        return await migrate(conn)
    except SchemaTooNew as exc:
        raise too_new(url, exc) from exc
    except psycopg.Error as exc:
        raise cannot("migrate", url, exc) from exc
    finally:
        await conn.close()


async def open_postgres_store(url: str) -> PostgresStore:
    """Migrate if behind, refuse a newer schema, open the pool; `StoreError` when it cannot be used."""
    await upgrade_schema(url)
    return PostgresStore(PgDatabase(url, await open_pool(url)))


async def import_into_postgres(url: str, source: Path) -> dict[str, int]:
    """Copy the SQLite ledger at `source` into the (migrated, empty) database at `url`; counts per table."""
    store = await open_postgres_store(url)
    try:
        return await import_sqlite(store.database, source)
    finally:
        await store.aclose()


async def check_postgres(url: str) -> tuple[int, int, float]:
    """(schema version, version this release knows, round-trip ms of `SELECT 1`), without migrating."""
    conn = await connect(url)
    try:
        version = await schema_version(conn)
        started = time.perf_counter()
        await conn.execute("SELECT 1")
        return version, len(MIGRATIONS), (time.perf_counter() - started) * 1000
    except psycopg.Error as exc:
        raise cannot("read", url, exc) from exc
    finally:
        await conn.close()


__all__ = ["PostgresStore", "check_postgres", "import_into_postgres", "open_postgres_store", "redact", "upgrade_schema"]
