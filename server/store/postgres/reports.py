"""The rows `cost_report` is assembled from, read from PostgreSQL in one snapshot (REPEATABLE READ), so
every replica's report of the shared ledger adds up: sums through the rollup, equal to the raw rows'."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import AsyncConnection

from server.store.interface import Dimension, ReportRows, ReportWindow, Sums
from server.store.postgres.database import PgDatabase
from server.store.postgres.rollup import raw_filter, window_sums
from server.store.strategy_sums import strategy_sums, strategy_sums_sql


class PgReports:
    """The `ReportSource` protocol on PostgreSQL."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def report_rows(
        self, window: ReportWindow, dimensions: Sequence[Dimension], *, accuracy_samples: int
    ) -> ReportRows:
        async def read(conn: AsyncConnection) -> ReportRows:
            bounds = (window.since, window.until, window.session_id)
            sums: dict[str, dict[tuple[str, str], Sums]] = {
                dim: await window_sums(conn, dim, *bounds) for dim in dict.fromkeys(dimensions)
            }
            where, args = raw_filter(*bounds)
            cur = await conn.execute(
                "SELECT input_tokens, estimated_input_tokens, output_tokens, estimated_output_tokens FROM attempts "
                f"WHERE outcome = 'ok' AND tool_rounds = 0 AND estimated_input_tokens > 0 AND {where} "
                "ORDER BY id DESC LIMIT %s",
                [*args, accuracy_samples],
            )
            accuracy = [tuple(row) for row in await cur.fetchall()]
            cur = await conn.execute(strategy_sums_sql(where).encode(), args)
            return ReportRows(sums, accuracy, strategy_sums(await cur.fetchall()))

        return await self._db.read(read)
