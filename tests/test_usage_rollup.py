"""The daily usage rollup: reports through it equal a brute-force pass over the raw attempts, for any window."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from server.accounting.report import ReportBuilder, ReportQuery
from server.domain.registry import Registry
from server.store import AttemptRecord, SqliteStore, open_store, usage
from server.store.db import DB_FILENAME
from server.store.migrations import MIGRATIONS, run_script
from server.store.usage import DAY

pytestmark = pytest.mark.anyio
MODELS = ["openai/gpt-4.1-nano", "google/gemini-2.5-flash", "openai/o3", "ollama/qwen3:1.7b"]
START = 1_790_000_000.0  # 2026-09-21, a fixed clock so day edges are reproducible
DAY_KEY = {"model": "model", "provider": "provider", "category": "category", "session": "session_id"}


def _records(count: int, seed: int = 7) -> list[AttemptRecord]:
    """Tasks of one to three attempts over five days; some unpriced, some failed, some crossing midnight."""
    rng = random.Random(seed)
    records = []
    for t in range(count):
        when = START + rng.uniform(0, 5 * DAY)
        session = rng.choice([None, "s1", "s2", "s3"])
        category = rng.choice(["qa_retrieval", "complex_coding", None])
        for n in range(rng.randint(1, 3)):
            model = rng.choice(MODELS)
            inp, out = rng.randint(10, 5000), rng.randint(1, 900)
            priced = not model.startswith("ollama/") and rng.random() > 0.1
            records.append(AttemptRecord(
                task_id=f"t{t}", session_id=session, attempt_no=n + 1, started_at=when + n * rng.uniform(0, 3600),
                latency_ms=5.0, model=model, provider=model.split("/")[0], category=category,
                outcome=rng.choice(["ok", "ok", "error"]), price_table_version=rng.choice(["v1", "v2"]),
                input_tokens=inp, cached_input_tokens=rng.randint(0, inp), output_tokens=out,
                reasoning_tokens=rng.randint(0, out),
                cost_usd=Decimal(rng.randint(1, 10**6)) / 10**9 if priced else None,
            ))  # fmt: skip
    return records


def _key(record: AttemptRecord, group_by: str) -> str:
    if group_by == "day":
        import datetime as dt

        return dt.datetime.fromtimestamp(record.started_at, dt.UTC).strftime("%Y-%m-%d")
    if group_by == "category":
        return record.category or "(none)"
    if group_by == "session":
        return record.session_id or "(no session)"
    return str(getattr(record, DAY_KEY[group_by]))


def _brute_force(records: list[AttemptRecord], group_by: str, since: float, until: float) -> dict[str, tuple]:
    """Per group: calls (tasks whose first attempt in the group lies in the window), attempts, failures,
    tokens and priced cost, straight from the records."""
    first: dict[tuple[str, str], int] = {}
    for index, r in enumerate(records):
        first.setdefault((r.task_id, _key(r, group_by)), index)
    out: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, Decimal(0)])
    for index, r in enumerate(records):
        if not since <= r.started_at < until:
            continue
        g = out[_key(r, group_by)]
        g[0] += first[(r.task_id, _key(r, group_by))] == index
        g[1] += 1
        g[2] += r.outcome != "ok"
        g[3] += r.input_tokens
        g[4] += r.cached_input_tokens
        g[5] += r.output_tokens
        g[6] += r.reasoning_tokens
        g[7] += r.cost_usd or 0
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize("group_by", ["model", "provider", "category", "session", "day"])
async def test_report_through_the_rollup_equals_the_raw_rows(tmp_path: Path, registry_all_keys: Registry,
                                                             group_by: str) -> None:  # fmt: skip
    store = await open_store(tmp_path)
    records = _records(120)
    for record in records:
        await store.ledger.record(record)
    builder = ReportBuilder(store.reports, registry_all_keys)
    windows = [
        (START + 0.3 * DAY, START + 3.7 * DAY),
        (START - DAY, START + 9 * DAY),
        (START + 1.2 * DAY, START + 1.9 * DAY),
        (START + 2 * DAY - START % DAY, START + 4 * DAY - START % DAY),
        (START - 9.5 * DAY, START + 12.25 * DAY),
    ]  # the last one holds whole weeks
    for since, until in windows:
        report = await builder.build(ReportQuery(since=since, until=until, group_by=group_by))  # type: ignore[arg-type]
        expected = _brute_force(records, group_by, since, until)
        got = {g.key: (g.calls, g.attempts, g.failures, g.tokens.input, g.tokens.cached_input, g.tokens.output,
                       g.tokens.reasoning, Decimal(str(g.cost_usd))) for g in report.groups}  # fmt: skip
        assert set(got) == set(expected)
        for key, row in expected.items():
            assert got[key][:7] == row[:7], (since, until, key)
            assert got[key][7] == pytest.approx(row[7], abs=Decimal("1e-12"))
        in_window = [r for r in records if since <= r.started_at < until]
        assert report.totals.calls == len({r.task_id for r in in_window if r.attempt_no == 1})
        assert report.totals.attempts == len(in_window)
        assert report.totals.unpriced_attempts == sum(r.cost_usd is None for r in in_window)
        assert report.price_table_versions == sorted({r.price_table_version for r in in_window})
    await store.aclose()


async def test_a_version_3_ledger_is_migrated_and_backfilled(tmp_path: Path, registry_all_keys: Registry) -> None:
    records = _records(40, seed=3)
    # Build the ledger as version 3 of the schema left it, rows included.
    conn = sqlite3.connect(tmp_path / DB_FILENAME, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:3], start=1):
        run_script(conn, migration.script)
        conn.execute(f"PRAGMA user_version = {number}")
    for r in records:
        conn.execute(
            "INSERT INTO attempts (task_id, session_id, attempt_no, started_at, latency_ms, model, provider, category, "
            "outcome, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd, "
            "price_table_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.task_id, r.session_id, r.attempt_no, r.started_at, r.latency_ms, r.model, r.provider, r.category,
             r.outcome, r.input_tokens, r.cached_input_tokens, r.output_tokens, r.reasoning_tokens,
             None if r.cost_usd is None else int(r.cost_usd * 10**12), r.price_table_version),
        )  # fmt: skip
    conn.close()
    store = await open_store(tmp_path)  # migrates to the current version, backfilling flags and rollup
    assert isinstance(store, SqliteStore)
    db = store.database
    assert db.run_sync(lambda c: c.execute("PRAGMA user_version").fetchone()[0]) == len(MIGRATIONS)
    backfilled = db.run_sync(_snapshot)
    db.run_sync(usage.rebuild)  # the frozen backfill computes what today's code computes
    assert db.run_sync(_snapshot) == backfilled
    builder = ReportBuilder(store.reports, registry_all_keys)
    since, until = START + 0.5 * DAY, START + 4.5 * DAY
    report = await builder.build(ReportQuery(since=since, until=until, group_by="model"))
    expected = _brute_force(records, "model", since, until)
    assert {g.key: (g.calls, g.attempts) for g in report.groups} == {k: v[:2] for k, v in expected.items()}
    # New attempts after the migration keep adding to the same rollup.
    await store.ledger.record(records[0])
    again = await builder.build(ReportQuery(since=None, until=None, group_by="model"))
    assert again.totals.attempts == len(records) + 1
    await store.aclose()


async def test_concurrent_writes_give_the_rollup_and_flags_a_rebuild_gives(tmp_path: Path) -> None:
    """Concurrent records (a task's attempts often interleaved with others'): the per-attempt summing and
    first-attempt flags must equal recomputing everything from the raw rows."""
    store = await open_store(tmp_path)
    assert isinstance(store, SqliteStore)
    async with anyio.create_task_group() as tg:
        for record in _records(300, seed=11):  # started in order, so each task's attempts commit in order
            tg.start_soon(store.ledger.record, record)
    db = store.database
    written = db.run_sync(_snapshot)
    db.run_sync(usage.rebuild)
    assert db.run_sync(_snapshot) == written
    assert sum(flags[1] for flags in written[1]) == 300  # one new task per task
    await store.aclose()


def _snapshot(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    rollup = conn.execute("SELECT * FROM usage_rollup ORDER BY dim, bucket, key, price_table_version").fetchall()
    flags = conn.execute(
        "SELECT id, new_task, new_model, new_provider, new_category, new_session, new_day FROM attempts ORDER BY id"
    ).fetchall()
    return rollup, flags
