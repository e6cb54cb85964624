"""The usage rollup on PostgreSQL: the same buckets, flags and window plan as `store.usage` (SQLite), in
PostgreSQL's SQL. Each attempt adds to its buckets in the transaction that inserts it; a window reads
whole buckets from the rollup and only its cut edges from the attempts, so a report equals the raw sums.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import AsyncConnection

from server.store.interface import Sums
from server.store.usage import FLAG, GRAINS, SUM_NAMES, mark_first, plan_window, rollup_increments

KEY_SQL = {
    "all": "''",
    "model": "model",
    "provider": "provider",
    "category": "COALESCE(category, '(none)')",
    "session": "COALESCE(session_id, '(no session)')",
    "day": "to_char(to_timestamp(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
_GROUP_COLUMNS = (
    "model, provider, COALESCE(category, '(none)'), COALESCE(session_id, '(no session)'), "
    "floor(started_at / 86400)::bigint"
)
_UPSERT = (
    f"INSERT INTO usage_rollup (dim, bucket, key, price_table_version, {', '.join(SUM_NAMES)}) "
    f"VALUES ({', '.join('%s' for _ in range(4 + len(SUM_NAMES)))}) "
    "ON CONFLICT (dim, bucket, key, price_table_version) DO UPDATE SET "
    + ", ".join(f"{n} = usage_rollup.{n} + excluded.{n}" for n in SUM_NAMES)
)


def raw_sums(flag: str) -> str:
    """Aggregates over `attempts` in the order of `Sums` (never NULL)."""
    priced, unpriced = "cost_pusd IS NOT NULL", "cost_pusd IS NULL"
    parts = [
        "1", "CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END", flag, "CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END",
        "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_pusd",
        f"CASE WHEN {priced} THEN 1 ELSE 0 END", f"CASE WHEN {priced} THEN input_tokens END",
        f"CASE WHEN {priced} THEN cached_input_tokens END", f"CASE WHEN {priced} THEN output_tokens END",
        f"CASE WHEN {unpriced} THEN input_tokens END", f"CASE WHEN {unpriced} THEN output_tokens END",
    ]  # fmt: skip
    return ", ".join(f"COALESCE(SUM({part}), 0)::bigint" for part in parts)


async def add_attempts(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Set the rows' first-of-task flags from the attempts already kept, then add them to the rollup.

    The caller inserts the rows and owns the transaction.
    """
    task_ids = list({str(row["task_id"]) for row in rows})
    earlier: dict[object, list[tuple[object, ...]]] = {task_id: [] for task_id in task_ids}
    cur = await conn.execute(
        f"SELECT task_id, {_GROUP_COLUMNS} FROM attempts WHERE task_id = ANY(%s) ORDER BY id", (task_ids,)
    )
    for task_id, *group in await cur.fetchall():
        earlier[task_id].append(tuple(group))
    mark_first(rows, earlier)
    async with conn.cursor() as cursor:
        await cursor.executemany(_UPSERT, rollup_increments(rows))


async def window_sums(
    conn: AsyncConnection, dim: str, since: float | None, until: float | None, session_id: str | None = None
) -> dict[tuple[str, str], Sums]:
    """Sums per (key, price table version) of the attempts with since <= started_at < until."""
    result: dict[tuple[str, str], Sums] = {}

    def take(rows: Iterable[tuple]) -> None:
        for key, version, *values in rows:
            result.setdefault((str(key), version), Sums()).add(values)

    if session_id is not None:
        take(await _raw(conn, dim, since, until, session_id))
        return result
    for piece in plan_window(dim, GRAINS[dim], since, until):
        if piece.rollup_dim is None:
            take(await _raw(conn, dim, piece.since, piece.until))
            continue
        clauses: list[str] = ["dim = %s"]
        args: list[object] = [piece.rollup_dim]
        for clause, value in (("bucket >= %s", piece.first), ("bucket < %s", piece.end)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        cur = await conn.execute(
            f"SELECT key, price_table_version, {', '.join(f'SUM({n})::bigint' for n in SUM_NAMES)} "
            f"FROM usage_rollup WHERE {' AND '.join(clauses)} GROUP BY key, price_table_version",
            args,
        )
        take(await cur.fetchall())
    return result


def raw_filter(since: float | None, until: float | None, session_id: str | None = None) -> tuple[str, list[object]]:
    clauses: list[str] = ["TRUE"]
    args: list[object] = []
    for clause, value in (("started_at >= %s", since), ("started_at < %s", until), ("session_id = %s", session_id)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return " AND ".join(clauses), args


async def _raw(
    conn: AsyncConnection, dim: str, since: float | None, until: float | None, session_id: str | None = None
) -> list[tuple]:
    where, args = raw_filter(since, until, session_id)
    cur = await conn.execute(
        f"SELECT {KEY_SQL[dim]} AS k, price_table_version, {raw_sums(FLAG[dim])} FROM attempts "
        f"WHERE {where} GROUP BY k, price_table_version",
        args,
    )
    return list(await cur.fetchall())
