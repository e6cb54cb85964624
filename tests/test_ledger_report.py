"""Ledger exactness, budgets and the cost report, against a real SQLite file."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from server.accounting.budget import BudgetGuard, window_starts
from server.accounting.report import ReportBuilder, ReportQuery, parse_time
from server.domain.config import BudgetConfig
from server.domain.pricing import token_cost
from server.domain.registry import Registry
from server.errors import BudgetExceeded, InvalidTimeWindow, StoreError
from server.store import AttemptRecord, Store, open_store
from server.store.migrations import MIGRATIONS

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path):
    opened = await open_store(tmp_path)
    yield opened
    await opened.aclose()


def attempt(model: str, *, task: str = "t", inp=0, cached=0, out=0, reasoning=0, outcome="ok", registry=None,
            cost: Decimal | str | None = "auto", session: str | None = None, when: float | None = None,
            est_in: int | None = None, est_out: int | None = None) -> AttemptRecord:  # fmt: skip
    if cost == "auto":
        spec = registry.resolve(model)
        cost = token_cost(spec, input_tokens=inp, output_tokens=out, cached_input_tokens=cached)
    return AttemptRecord(
        task_id=task,
        session_id=session,
        attempt_no=1,
        started_at=time.time() if when is None else when,
        latency_ms=10.0,
        model=model,
        provider=model.split("/")[0],
        category="qa_retrieval",
        outcome=outcome,
        price_table_version="test",
        input_tokens=inp,
        cached_input_tokens=cached,
        output_tokens=out,
        reasoning_tokens=reasoning,
        cost_usd=cost,  # type: ignore[arg-type]
        estimated_input_tokens=est_in,
        estimated_output_tokens=est_out,
    )


def test_cost_is_exact_for_cached_and_reasoning_tokens(registry_all_keys: Registry) -> None:
    # OpenAI-style usage: 12,345 prompt tokens of which 10,000 cached; 4,321 completion of which 4,000 reasoning.
    o3 = registry_all_keys.resolve("openai/o3")
    cost = token_cost(o3, input_tokens=12_345, cached_input_tokens=10_000, output_tokens=4_321)
    # genai-prices' o3 prices: 2,345 x $2 + 10,000 x $0.50 + 4,321 x $8, per 1M tokens
    assert cost == Decimal("0.00469") + Decimal("0.005") + Decimal("0.034568")
    assert cost == Decimal("0.044258")
    # Anthropic-style (normalised): 1,000 new + 30,000 cache-read input, 700 output on Sonnet 4
    sonnet = registry_all_keys.resolve("anthropic/claude-sonnet-4")
    assert token_cost(sonnet, input_tokens=31_000, cached_input_tokens=30_000, output_tokens=700) == Decimal("0.0225")
    # Kimi K2: cache hit $0.15, miss $0.60, output $2.50
    kimi = registry_all_keys.resolve("moonshot/kimi-k2")
    # 600,000 misses x $0.60 + 400,000 hits x $0.15 + 100,000 x $2.50, per 1M
    assert token_cost(kimi, input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000) == Decimal(
        "0.67"
    )


async def test_report_totals_groups_and_savings_reproduce_by_hand(store: Store, registry_all_keys: Registry) -> None:
    ledger = store.ledger
    r = registry_all_keys
    await ledger.record(attempt("google/gemini-2.5-flash", task="a", inp=1000, out=200, registry=r))
    await ledger.record(attempt("openai/gpt-4.1-nano", task="b", inp=5000, cached=4000, out=100, registry=r))
    await ledger.record(attempt("openai/o3", task="c", inp=100, out=0, outcome="error", registry=r))
    await ledger.record(attempt("anthropic/claude-sonnet-4", task="c", inp=2000, out=500, registry=r))
    await ledger.record(attempt("openai/mystery", task="d", inp=50, out=5, cost=None))
    report = await ReportBuilder(store.reports, r).build(ReportQuery())
    t = report.totals
    assert (t.calls, t.attempts, t.failures, t.unpriced_attempts) == (4, 5, 1, 1)
    assert (t.tokens.input, t.tokens.cached_input, t.tokens.output) == (8150, 4000, 805)
    # by hand: flash 1000*.30+200*2.50 = 800; nano 1000*.10+4000*.025+100*.40 = 240; o3 100*2 = 200;
    # sonnet 2000*3+500*15 = 13500 (all per 1M) -> 14,740 / 1e6
    assert t.cost_usd == pytest.approx(0.01474, abs=1e-12)
    # baseline Claude Opus 5.5 ($4 in, $0.20 cached, $20 out) on the same priced tokens:
    # input uncached 1000+1000+100+2000 = 4100 * 4 = 16,400; cached 4000 * 0.2 = 800;
    # output 200+100+0+500 = 800 * 20 = 16,000 -> 33,200 / 1e6
    assert report.savings.baseline_cost_usd == pytest.approx(0.0332, abs=1e-12)
    assert report.savings.saved_usd == pytest.approx(0.0332 - 0.01474, abs=1e-12)
    assert report.savings.saved_pct == pytest.approx((0.0332 - 0.01474) / 0.0332 * 100)
    assert [u.model for u in report.unpriced] == ["openai/mystery"]
    assert report.tier1_share == pytest.approx(1 / 4)  # sonnet among ok attempts (flash, nano, sonnet, mystery)
    by_model = {g.key: g for g in report.groups}
    assert by_model["openai/o3"].failures == 1
    assert by_model["openai/mystery"].baseline_cost_usd is None


async def test_report_filters_by_window_session_and_groups_by_day(store: Store, registry_all_keys: Registry) -> None:
    ledger = store.ledger
    old = parse_time("2026-01-15T12:00:00")
    await ledger.record(attempt("openai/gpt-4.1", inp=10, out=10, registry=registry_all_keys, when=old))
    await ledger.record(attempt("openai/gpt-4.1", inp=10, out=10, registry=registry_all_keys, session="s1"))
    builder = ReportBuilder(store.reports, registry_all_keys)
    recent = await builder.build(ReportQuery(since=parse_time("7d"), group_by="day"))
    assert recent.totals.attempts == 1
    assert recent.groups[0].key == time.strftime("%Y-%m-%d", time.gmtime())
    assert (await builder.build(ReportQuery(session_id="s1"))).totals.attempts == 1
    everything = await builder.build(ReportQuery(group_by="session"))
    assert {g.key for g in everything.groups} == {"s1", "(no session)"}


async def test_estimate_accuracy_compares_actual_to_estimated(store: Store, registry_all_keys: Registry) -> None:
    ledger = store.ledger
    for actual in (90, 100, 130):
        await ledger.record(
            attempt("openai/gpt-4.1", inp=actual, out=50, est_in=100, est_out=100, registry=registry_all_keys)
        )
    accuracy = (await ReportBuilder(store.reports, registry_all_keys).build(ReportQuery())).estimate_accuracy
    assert (accuracy.samples, accuracy.input_ratio_median, accuracy.output_ratio_median) == (3, 1.0, 0.5)


async def test_budget_refusal_names_budget_spent_and_remaining(store: Store, registry_all_keys: Registry) -> None:
    ledger = store.ledger
    await ledger.record(attempt("openai/gpt-4.1", inp=0, out=0, cost=Decimal("4.99")))
    guard = BudgetGuard(store.budgets, BudgetConfig(daily_usd=5.0))
    with pytest.raises(BudgetExceeded) as info:
        await guard.reserve("t2", None, "openai/o3", Decimal("0.02"))
    message = str(info.value)
    assert "daily budget of $5.0000" in message and "$0.010000 left" in message and "spent $4.990000" in message


async def test_concurrent_reservations_never_overspend(store: Store) -> None:
    guard = BudgetGuard(store.budgets, BudgetConfig(daily_usd=1.0))
    granted: list[int] = []
    refused = 0

    async def one(i: int) -> None:
        nonlocal refused
        try:
            granted.append(await guard.reserve(f"t{i}", None, "m/x", Decimal("0.1")))
        except BudgetExceeded:
            refused += 1

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(one, i)
    assert len(granted) == 10 and refused == 90


async def test_stale_reservations_expire(store: Store) -> None:
    clock = [1_000_000.0]
    guard = BudgetGuard(store.budgets, BudgetConfig(monthly_usd=1.0), ttl_s=60, clock=lambda: clock[0])
    await guard.reserve("t", None, "m/x", Decimal("1.0"))
    with pytest.raises(BudgetExceeded):
        await guard.reserve("t2", None, "m/x", Decimal("0.5"))
    clock[0] += 61  # the process holding it died; its hold lapses
    await guard.reserve("t3", None, "m/x", Decimal("0.5"))


def test_windows_are_utc_day_and_month() -> None:
    day, month = window_starts(parse_time("2026-11-24T15:30:00"))
    assert day == parse_time("2026-11-24") and month == parse_time("2026-11-01")


async def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "router.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this model-router"):
        await open_store(tmp_path)


def test_parse_time_rejects_garbage_clearly() -> None:
    with pytest.raises(InvalidTimeWindow, match="ISO date"):
        parse_time("last tuesday")
