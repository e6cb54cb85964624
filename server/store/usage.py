"""Usage rollups: per-day and per-hour (and per-week for sessions) sums of the attempts ledger.

`usage_rollup` holds, per time bucket and per dimension (all, model, provider, category, session, day), the
sums a report needs, in UTC days and hours (sessions, which are many, also in weeks; see `GRAINS`). Each
attempt updates the rollup in the same transaction that inserts it, so the two can never disagree. A
report reads whole buckets from the rollup and only the cut buckets at the window's edges from the
attempts themselves, with the same sums: the result is exactly what summing the raw rows would give.

A *call* is counted once per group, at the first attempt of its task in that group (flags `new_*` on
each attempt): a task that tried two models counts as a call for each model but once in the totals.

The table itself is created by migration 4 (frozen SQL); its sum columns are the fields of `Sums`, in order.
"""

from __future__ import annotations

import math
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from datetime import date, timedelta
from typing import NamedTuple

from server.store.interface import Sums

DAY = 86_400
HOUR = 3_600
_EPOCH = date(1970, 1, 1)
DIMENSIONS = ("all", "model", "provider", "category", "session", "day")
WEEK = 7 * DAY
# Bucket sizes per dimension, coarsest first: a window reads whole days (weeks for the many sessions)
# from the coarse buckets and only its edges from finer ones, so no read is large.
GRAINS: dict[str, tuple[int, ...]] = {dim: (DAY, HOUR) for dim in DIMENSIONS} | {"session": (WEEK, DAY, HOUR)}


def rollup_dim(dim: str, size: int) -> str:
    """The rollup rows' `dim` value: the dimension, suffixed with the bucket size when it is not the coarsest."""
    return dim if size == GRAINS[dim][0] else f"{dim}/{size}"


KEY_SQL = {
    "all": "''",
    "model": "model",
    "provider": "provider",
    "category": "COALESCE(category, '(none)')",
    "session": "COALESCE(session_id, '(no session)')",
    "day": "strftime('%Y-%m-%d', started_at, 'unixepoch')",
}
FLAG = {"all": "new_task", "model": "new_model", "provider": "new_provider", "category": "new_category",
        "session": "new_session", "day": "new_day"}  # fmt: skip


SUM_NAMES = [f.name for f in fields(Sums)]


def _raw_sums(flag: str) -> str:
    """SQL aggregates over `attempts` in the order of `Sums` (never NULL)."""
    priced, unpriced = "cost_pusd IS NOT NULL", "cost_pusd IS NULL"
    parts = [
        "1", "outcome != 'ok'", flag, "outcome = 'ok'", "input_tokens", "cached_input_tokens", "output_tokens",
        "reasoning_tokens", "cost_pusd", priced, f"CASE WHEN {priced} THEN input_tokens END",
        f"CASE WHEN {priced} THEN cached_input_tokens END", f"CASE WHEN {priced} THEN output_tokens END",
        f"CASE WHEN {unpriced} THEN input_tokens END", f"CASE WHEN {unpriced} THEN output_tokens END",
    ]  # fmt: skip
    return ", ".join(f"COALESCE(SUM({part}), 0)" for part in parts)


_UPSERT = (
    f"INSERT INTO usage_rollup (dim, bucket, key, price_table_version, {', '.join(SUM_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in range(4 + len(SUM_NAMES)))}) "
    "ON CONFLICT (dim, bucket, key, price_table_version) DO UPDATE SET "
    + ", ".join(f"{n} = {n} + excluded.{n}" for n in SUM_NAMES)
)


_GROUP_COLUMNS = (
    "model, provider, COALESCE(category, '(none)'), COALESCE(session_id, '(no session)'), "
    "CAST(started_at / 86400 AS INTEGER)"
)
_CHUNK = 500  # bound parameters per IN (...) query


def set_first_flags(conn: sqlite3.Connection, rows: list[dict[str, object]]) -> None:
    """Set each row's `new_*` flags: whether it is its task's first attempt in each group.

    Read before the rows are inserted; rows earlier in `rows` count as earlier attempts.
    """
    task_ids = list({row["task_id"] for row in rows})
    earlier: dict[object, list[tuple[object, ...]]] = {task_id: [] for task_id in task_ids}
    for at in range(0, len(task_ids), _CHUNK):
        chunk = task_ids[at : at + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for task_id, *group in conn.execute(
            f"SELECT task_id, {_GROUP_COLUMNS} FROM attempts WHERE task_id IN ({marks})", chunk
        ):
            earlier[task_id].append(tuple(group))
    mark_first(rows, earlier)


def mark_first(rows: list[dict[str, object]], earlier: dict[object, list[tuple[object, ...]]]) -> None:
    """Set the `new_*` flags of `rows` given each task's earlier attempts' groups (model, provider,
    category, session, UTC day number), which this extends with the rows' own."""
    for row in rows:
        mine = (row["model"], row["provider"], row["category"] or "(none)", row["session_id"] or "(no session)",
                int(float(row["started_at"]) // DAY))  # type: ignore[arg-type]  # fmt: skip
        seen = earlier.setdefault(row["task_id"], [])
        row["new_task"] = int(not seen)
        for index, name in enumerate(("new_model", "new_provider", "new_category", "new_session", "new_day")):
            row[name] = int(all(previous[index] != mine[index] for previous in seen))
        seen.append(mine)


def add_to_rollup(conn: sqlite3.Connection, rows: Iterable[dict[str, object]]) -> None:
    """Add inserted attempts (their column values, flags included) to every dimension's bucket sums."""
    conn.executemany(_UPSERT, rollup_increments(rows))


def rollup_increments(rows: Iterable[dict[str, object]]) -> list[tuple[object, ...]]:
    """(dim, bucket, key, price table version, *sums) to add per bucket the rows touch, in key order.

    Rows landing in the same bucket are summed here first, so a batch costs one upsert per bucket touched;
    the fixed order lets concurrent writers lock the same buckets in the same order (no deadlock).
    """
    sums: dict[tuple[object, ...], list[int]] = {}
    for row in rows:
        for key, values in _rollup_entries(row):
            total = sums.get(key)
            sums[key] = values if total is None else list(map(operator.add, total, values))
    return [(*key, *values) for key, values in sorted(sums.items(), key=lambda item: repr(item[0]))]


def _rollup_entries(row: dict[str, object]) -> Iterator[tuple[tuple[object, ...], list[int]]]:
    cost = row["cost_pusd"]
    priced = cost is not None
    started = float(row["started_at"])  # type: ignore[arg-type]
    keys = {
        "all": "",
        "model": row["model"],
        "provider": row["provider"],
        "category": row["category"] or "(none)",
        "session": row["session_id"] or "(no session)",
        "day": _iso_day(int(started // DAY)),
    }
    inp, cached, out = row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]
    ok = row["outcome"] == "ok"
    common = [1, int(not ok), 0, int(ok), inp, cached, out, row["reasoning_tokens"], cost or 0, int(priced),
              inp if priced else 0, cached if priced else 0, out if priced else 0, 0 if priced else inp,
              0 if priced else out]  # fmt: skip
    for dim in DIMENSIONS:
        values = list(common)
        values[2] = row[FLAG[dim]]
        for size in GRAINS[dim]:
            yield (rollup_dim(dim, size), int(started // size), keys[dim], row["price_table_version"]), values  # type: ignore[misc]


def _iso_day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every attempt's flags and the whole rollup from the attempts (migration, bulk loads)."""
    # Flags into a keyed temporary table first: an UPDATE ... FROM a window subquery has no index to join on.
    conn.execute("DROP TABLE IF EXISTS temp.first_flags")
    conn.execute("CREATE TEMP TABLE first_flags (id INTEGER PRIMARY KEY, t, m, p, c, s, d)")
    conn.execute(
        """
        INSERT INTO temp.first_flags
        SELECT id,
            ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id) = 1,
            ROW_NUMBER() OVER (PARTITION BY task_id, model ORDER BY id) = 1,
            ROW_NUMBER() OVER (PARTITION BY task_id, provider ORDER BY id) = 1,
            ROW_NUMBER() OVER (PARTITION BY task_id, COALESCE(category, '(none)') ORDER BY id) = 1,
            ROW_NUMBER() OVER (PARTITION BY task_id, COALESCE(session_id, '(no session)') ORDER BY id) = 1,
            ROW_NUMBER() OVER (PARTITION BY task_id, CAST(started_at / 86400 AS INTEGER) ORDER BY id) = 1
        FROM attempts
        """
    )
    conn.execute(
        "UPDATE attempts SET new_task = f.t, new_model = f.m, new_provider = f.p, new_category = f.c, "
        "new_session = f.s, new_day = f.d FROM temp.first_flags AS f WHERE attempts.id = f.id"
    )
    conn.execute("DROP TABLE temp.first_flags")
    conn.execute("DELETE FROM usage_rollup")
    for dim in DIMENSIONS:
        for size in GRAINS[dim]:
            conn.execute(
                f"INSERT INTO usage_rollup (dim, bucket, key, price_table_version, {', '.join(SUM_NAMES)}) "
                f"SELECT '{rollup_dim(dim, size)}', CAST(started_at / {size} AS INTEGER) AS b, {KEY_SQL[dim]} AS k, "
                f"price_table_version, {_raw_sums(FLAG[dim])} FROM attempts GROUP BY b, k, price_table_version"
            )


def window_sums(
    conn: sqlite3.Connection, dim: str, since: float | None, until: float | None, session_id: str | None = None
) -> dict[tuple[str, str], Sums]:
    """Sums per (key, price table version) of the attempts with since <= started_at < until.

    Whole buckets come from the rollup; the partial buckets at either edge (and any query for one session,
    which is small and has its own index) from the attempts.
    """
    result: dict[tuple[str, str], Sums] = {}

    def take(rows: Iterable[tuple]) -> None:
        for key, version, *values in rows:
            result.setdefault((str(key), version), Sums()).add(values)

    if session_id is not None:
        take(_raw(conn, dim, since, until, session_id))
        return result
    _collect(conn, dim, GRAINS[dim], since, until, take)
    return result


def _collect(
    conn: sqlite3.Connection,
    dim: str,
    sizes: tuple[int, ...],
    since: float | None,
    until: float | None,
    take: Callable[[Iterable[tuple]], None],
) -> None:
    for piece in plan_window(dim, sizes, since, until):
        if piece.rollup_dim is None:
            take(_raw(conn, dim, piece.since, piece.until))
            continue
        clauses: list[str] = ["dim = ?"]
        args: list[object] = [piece.rollup_dim]
        for clause, value in (("bucket >= ?", piece.first), ("bucket < ?", piece.end)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        take(
            conn.execute(
                f"SELECT key, price_table_version, {', '.join(f'SUM({n})' for n in SUM_NAMES)} FROM usage_rollup "
                f"WHERE {' AND '.join(clauses)} GROUP BY key, price_table_version",
                args,
            ).fetchall()
        )


class Piece(NamedTuple):
    """One read of a window: rollup rows `rollup_dim` with first <= bucket < end (None: unbounded), or,
    when `rollup_dim` is None, the raw attempts with since <= started_at < until."""

    rollup_dim: str | None
    first: int | None = None
    end: int | None = None
    since: float | None = None
    until: float | None = None


def plan_window(dim: str, sizes: tuple[int, ...], since: float | None, until: float | None) -> list[Piece]:
    """Whole buckets of the first size from the rollup; the cut edges from finer buckets, then raw rows."""
    if not sizes:
        return [Piece(None, since=since, until=until)]
    size, finer = sizes[0], sizes[1:]
    first = None if since is None else math.ceil(since / size)
    end = None if until is None else math.floor(until / size)
    if first is not None and end is not None and first >= end:
        return plan_window(dim, finer, since, until)
    pieces: list[Piece] = []
    if first is not None and since is not None and since < first * size:
        pieces += plan_window(dim, finer, since, first * size)
    if end is not None and until is not None and until > end * size:
        pieces += plan_window(dim, finer, end * size, until)
    return [*pieces, Piece(rollup_dim(dim, size), first, end)]


def _raw(
    conn: sqlite3.Connection, dim: str, since: float | None, until: float | None, session_id: str | None = None
) -> list[tuple]:
    clauses: list[str] = ["1=1"]
    args: list[object] = []
    if since is not None:
        clauses.append("started_at >= ?")
        args.append(since)
    if until is not None:
        clauses.append("started_at < ?")
        args.append(until)
    if session_id is not None:
        clauses.append("session_id = ?")
        args.append(session_id)
    return conn.execute(
        f"SELECT {KEY_SQL[dim]} AS k, price_table_version, {_raw_sums(FLAG[dim])} FROM attempts "
        f"WHERE {' AND '.join(clauses)} GROUP BY k, price_table_version",
        args,
    ).fetchall()
