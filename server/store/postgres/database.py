"""One PostgreSQL database behind a `psycopg_pool` connection pool, and the errors it can raise.

Invariants: every write is one transaction that has committed when `write` returns, or has been rolled back
and raised `StoreError` naming the server and database (never the password) and what to check. A caller's
cancellation does not cut a write short: the transaction runs to its commit or rollback first, as on
SQLite. A read runs in one REPEATABLE READ, READ ONLY transaction, so all its statements see one snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from server.errors import StoreError

T = TypeVar("T")
Txn = Callable[[AsyncConnection], Awaitable[T]]
CONNECT_TIMEOUT_S = 10  # how long opening waits for the server before it says it cannot be reached
POOL_MAX_SIZE = 10  # connections per replica; the server's max_connections must allow replicas x this


def redact(url: str) -> str:
    """What logs and errors may show of a connection string: user, host, port and database, never a password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparsable connection string)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    service = f" (service {parts['service']})" if parts.get("service") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}{service}"


def _scrub(text: str, url: str) -> str:
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return text
    return text.replace(str(password), "***") if password else text


def cannot(verb: str, url: str, exc: BaseException) -> StoreError:
    """The `StoreError` for a PostgreSQL failure: what failed, where, and what the operator can check."""
    kept = " (nothing of this write was kept)" if verb == "write to" else ""
    text = _scrub(str(exc).strip() or type(exc).__name__, url)
    hint = (
        "check that the PostgreSQL server is up and reachable from here, that its disk has free space, and "
        "that the database is writable by this role (not a read-only standby); [store] url or "
        "MODEL_ROUTER_DATABASE_URL chooses the database"
    )
    return StoreError(f"cannot {verb} the database {redact(url)}{kept}: {text}; {hint}")


class PgDatabase:
    """A connection pool on one database; `read` and `write` each run one function in one transaction."""

    def __init__(self, url: str, pool: AsyncConnectionPool) -> None:
        self.url = url
        self.location = redact(url)
        self._pool = pool

    async def read(self, fn: Txn[T]) -> T:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return await fn(conn)
        except psycopg.Error as exc:
            raise cannot("read", self.url, exc) from exc

    async def write(self, fn: Txn[T]) -> T:
        """Run `fn(connection)` in one READ COMMITTED transaction; committed when this returns."""
        with anyio.CancelScope(shield=True):  # like SQLite's worker thread: the transaction is never cut short
            result = await self._write(fn)
        return result

    async def _write(self, fn: Txn[T]) -> T:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                return await fn(conn)
        except psycopg.Error as exc:
            raise cannot("write to", self.url, exc) from exc

    async def aclose(self) -> None:
        await self._pool.close()


async def connect(url: str) -> AsyncConnection:
    """One autocommit connection (migrations, checks); `StoreError` when the server cannot be reached."""
    try:
        return await AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise cannot("open", url, exc) from exc


async def open_pool(url: str) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=POOL_MAX_SIZE,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,  # a server restart or failover leaves dead connections
        timeout=30,
        name="model-router",
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        await pool.close()
        raise cannot("open", url, exc) from exc
    return pool
