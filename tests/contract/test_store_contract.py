"""The store contract: what every backend must do, checked through the `store.interface` protocols only.

Run against each backend of `conftest.BACKENDS`, on a real database per test. Clocks are passed in (`now`),
so expiry is tested without waiting; concurrency is real (tasks in one loop, two stores on one database).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anyio
import pytest

from server.errors import StoreError
from server.store.interface import (
    AttemptRecord,
    Hold,
    Limit,
    LoggedRoute,
    Refused,
    ReportWindow,
    Scope,
    Store,
    StrategySums,
    to_pico,
)
from tests.contract.conftest import Backend
from tests.helpers import attempt_record

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 9, 21, 15, 30, tzinfo=UTC).timestamp()  # a Monday afternoon, UTC
DAY = 86_400.0


def _hold(task_id: str = "t", usd: str = "0.10", session_id: str | None = None) -> Hold:
    return Hold(task_id, session_id, "openai/gpt-4.1", to_pico(Decimal(usd)) or 0)


def _limit(kind: str, usd: str, key: str | None = None) -> Limit:
    return Limit(Scope(kind, key), to_pico(Decimal(usd)) or 0)  # type: ignore[arg-type]


async def test_an_attempt_and_its_settlement_commit_together(store: Store) -> None:
    held = await store.budgets.reserve(_hold("t1"), [_limit("day", "1.00")], now=NOW, ttl_s=600)
    assert isinstance(held, int)
    [before] = await store.budgets.usage([Scope("day")], now=NOW)
    assert (before.spent_pusd, before.held_pusd) == (0, to_pico(Decimal("0.10")))
    await store.ledger.record(attempt_record("t1", cost="0.04", when=NOW), settle=(held,))
    [after] = await store.budgets.usage([Scope("day")], now=NOW)
    assert (after.spent_pusd, after.held_pusd) == (to_pico(Decimal("0.04")), 0)
    [row] = await store.ledger.attempts("t1")
    assert (row["task_id"], row["cost_pusd"], row["outcome"]) == ("t1", to_pico(Decimal("0.04")), "ok")


async def test_concurrent_reservations_never_exceed_a_limit_even_from_two_stores(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()  # two connections: what two processes see
    limits = [_limit("day", "1.00")]
    granted: list[int] = []
    refused: list[Refused] = []

    async def reserve(store: Store, i: int) -> None:
        result = await store.budgets.reserve(_hold(f"t{i}"), limits, now=NOW, ttl_s=600)
        (refused if isinstance(result, Refused) else granted).append(result)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(reserve, one if i % 2 else two, i)
    assert len(granted) == 10 and len(refused) == 50
    [usage] = await one.budgets.usage([Scope("day")], now=NOW)
    assert usage.held_pusd == to_pico(Decimal("1.00"))
    assert all(r.usage.held_pusd + to_pico(Decimal("0.10")) > r.limit.limit_pusd for r in refused)


async def test_a_refusal_names_the_limit_that_has_no_room_and_holds_nothing(store: Store) -> None:
    await store.ledger.record(attempt_record("old", cost="0.95", when=NOW - 3600, session_id="s"))
    limits = [_limit("task", "5.00", "t2"), _limit("session", "1.00", "s"), _limit("month", "9.00")]
    result = await store.budgets.reserve(_hold("t2", session_id="s"), limits, now=NOW, ttl_s=600)
    assert isinstance(result, Refused)
    assert result.limit == limits[1] and result.usage.spent_pusd == to_pico(Decimal("0.95"))
    positions = await store.budgets.usage([limit.scope for limit in limits], now=NOW)
    assert [p.held_pusd for p in positions] == [0, 0, 0]


async def test_stale_reservations_stop_counting_after_their_ttl(store: Store) -> None:
    limits = [_limit("month", "1.00")]
    assert isinstance(await store.budgets.reserve(_hold("a", "1.00"), limits, now=NOW, ttl_s=60), int)
    assert isinstance(await store.budgets.reserve(_hold("b", "0.50"), limits, now=NOW + 59, ttl_s=60), Refused)
    [still] = await store.budgets.usage([Scope("month")], now=NOW + 59.9)
    assert still.held_pusd == to_pico(Decimal("1.00"))
    [lapsed] = await store.budgets.usage([Scope("month")], now=NOW + 60)  # its holder died: the hold lapses
    assert lapsed.held_pusd == 0
    assert isinstance(await store.budgets.reserve(_hold("c", "0.50"), limits, now=NOW + 61, ttl_s=60), int)


async def test_a_released_reservation_stops_counting(store: Store) -> None:
    held = await store.budgets.reserve(_hold("a"), [], now=NOW, ttl_s=600)
    assert isinstance(held, int)
    await store.budgets.release(held)
    [task] = await store.budgets.usage([Scope("task", "a")], now=NOW)
    assert task.held_pusd == 0


async def test_a_reservation_replaces_earlier_holds_in_one_step_and_a_refusal_keeps_them(store: Store) -> None:
    limits = [_limit("day", "1.00")]
    first = await store.budgets.reserve(_hold("a", "0.30"), limits, now=NOW, ttl_s=600)
    assert isinstance(first, int)
    assert isinstance(await store.budgets.reserve(_hold("b", "0.50"), limits, now=NOW, ttl_s=600), int)
    # "a" grows from 0.30 to 0.50: it fits only because its own 0.30 stops counting as it does.
    grown = await store.budgets.reserve(_hold("a", "0.50"), limits, now=NOW, ttl_s=600, replacing=[first])
    assert isinstance(grown, int)
    [day] = await store.budgets.usage([Scope("day")], now=NOW)
    assert day.held_pusd == to_pico(Decimal("1.00"))
    refused = await store.budgets.reserve(_hold("a", "0.60"), limits, now=NOW, ttl_s=600, replacing=[grown])
    assert isinstance(refused, Refused)
    [task, day] = await store.budgets.usage([Scope("task", "a"), Scope("day")], now=NOW)
    assert task.held_pusd == to_pico(Decimal("0.50"))  # the refused step kept the hold it would have replaced
    assert day.held_pusd == to_pico(Decimal("1.00"))


async def test_spent_per_scope_equals_the_sum_of_the_raw_rows(store: Store) -> None:
    day_start = datetime(2026, 9, 21, tzinfo=UTC).timestamp()
    month_start = datetime(2026, 9, 1, tzinfo=UTC).timestamp()
    moments = [month_start - 1, month_start, month_start + 5 * DAY + 7, day_start - 0.5, day_start, NOW - 1, NOW]
    records = []
    for i, when in enumerate(moments * 3):  # several per hour bucket, across the day and month edges
        cost = None if i % 5 == 4 else f"0.00{i + 1}"
        task, session = f"t{i % 4}", ("s1", "s2", None)[i % 3]
        records.append(attempt_record(task, cost=cost, when=when, session_id=session, attempt_no=i))
    for record in records:
        await store.ledger.record(record)

    def spent(keep: object) -> int:
        return sum(to_pico(r.cost_usd) or 0 for r in records if keep(r))  # type: ignore[operator]

    scopes = [Scope("day"), Scope("month"), Scope("task", "t1"), Scope("session", "s2"), Scope("session", "none")]
    positions = await store.budgets.usage(scopes, now=NOW)
    assert [p.spent_pusd for p in positions] == [
        spent(lambda r: r.started_at >= day_start),
        spent(lambda r: r.started_at >= month_start),
        spent(lambda r: r.task_id == "t1"),
        spent(lambda r: r.session_id == "s2"),
        0,
    ]
    assert [p.scope for p in positions] == scopes


async def test_report_rows_equal_the_sums_of_the_raw_rows(store: Store) -> None:
    records = [
        attempt_record("a", cost="0.010", when=NOW - 2 * DAY, input_tokens=100, output_tokens=10),
        attempt_record("b", cost="0.020", when=NOW - 3600, outcome="error", model="openai/o3"),
        attempt_record("b", cost="0.030", when=NOW - 3000, attempt_no=2, estimated_input_tokens=80),
        attempt_record("c", cost=None, when=NOW - 10, model="ollama/qwen3:1.7b", provider="ollama",
                       estimated_input_tokens=120, estimated_output_tokens=20),
    ]  # fmt: skip
    for record in records:
        await store.ledger.record(record)
    rows = await store.reports.report_rows(
        ReportWindow(since=NOW - DAY, until=NOW + 1), ["all", "model"], accuracy_samples=10
    )
    [(key, version)] = rows.sums["all"]
    total = rows.sums["all"][(key, version)]
    assert (key, version) == ("", "test")
    assert (total.attempts, total.calls, total.failures, total.ok_attempts) == (3, 2, 1, 2)
    assert (total.cost_pusd, total.priced_attempts, total.unpriced_input) == (to_pico(Decimal("0.05")), 2, 100)
    models = {k: s.attempts for (k, _), s in rows.sums["model"].items()}
    assert models == {"openai/o3": 1, "openai/gpt-4.1-mini": 1, "ollama/qwen3:1.7b": 1}
    assert rows.accuracy == [(100, 120, 10, 20), (100, 80, 10, None)]  # newest first


async def test_strategy_rows_count_tasks_escalations_and_rounds_by_their_roles(store: Store) -> None:
    def step(task: str, role: str | None, no: int, cost: str | None = "0.001", **fields: Any) -> AttemptRecord:
        return attempt_record(task, cost=cost, when=NOW - 60 + no, attempt_no=no, role=role, **fields)

    coding = {"category": "complex_coding"}
    records = [
        step("c1", "draft", 1, input_tokens=1000, output_tokens=100),
        step("c1", "verifier", 2, cost="0.0001"),
        step("c2", "draft", 1, input_tokens=500, cached_input_tokens=100, output_tokens=50),
        step("c2", "verifier", 2, cost="0.0001"),
        step("c2", "escalation", 3, cost="0.01"),
        step("e1", "generator", 1, **coding),
        step("e1", "evaluator", 2, **coding),
        step("e1", "generator", 3, outcome="error", **coding),
        step("e1", "generator", 4, **coding),
        step("e1", "evaluator", 5, **coding),
        step("single", None, 1),  # no role: not a strategy task
        attempt_record("old", when=NOW - 3 * DAY, role="draft"),  # outside the window
    ]
    for record in records:
        await store.ledger.record(record)
    rows = await store.reports.report_rows(ReportWindow(since=NOW - DAY), ["all"], accuracy_samples=1)
    assert rows.strategies == [
        StrategySums("cascade", "qa_retrieval", tasks=2, escalated=1, generations=0,
                     cost_pusd=to_pico(Decimal("0.0122")) or 0, unpriced_tasks=0,
                     draft_input=1500, draft_cached=100, draft_output=150),
        StrategySums("evaluate_optimise", "complex_coding", tasks=1, escalated=0, generations=2,
                     cost_pusd=to_pico(Decimal("0.005")) or 0, unpriced_tasks=0,
                     draft_input=0, draft_cached=0, draft_output=0),
    ]  # fmt: skip
    rows = await store.reports.report_rows(ReportWindow(session_id="nobody"), ["all"], accuracy_samples=1)
    assert rows.strategies == []


async def test_concurrent_records_all_commit(store: Store) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(store.ledger.record, attempt_record(f"t{i}", when=NOW + i))
    rows = await store.ledger.attempts(limit=1000)
    assert sorted(row["task_id"] for row in rows) == sorted(f"t{i}" for i in range(100))


async def test_sessions_keep_the_newest_turns(store: Store) -> None:
    for i in range(0, 60, 2):
        await store.sessions.append("s1", [("user", f"q{i}"), ("assistant", f"a{i + 1}")])
    await store.sessions.append("s2", [("user", "other")])
    history = await store.sessions.history("s1")
    assert len(history) == 50
    assert history[0] == ("user", "q10") and history[-1] == ("assistant", "a59")
    assert await store.sessions.history("s2") == [("user", "other")]
    assert await store.sessions.history("never") == []


async def test_decisions_round_trip(store: Store) -> None:
    log = store.decisions(analyzer_version="an-1", config_fingerprint="cfg-1", price_table_version="p-1")
    route = LoggedRoute("qa_retrieval", 2, 0.25, "openai/gpt-4.1-mini", ("openai/gpt-4.1",), 0.0012, ("cheap",))
    await log.record("route", "What is the capital of France?", {"cost_preference": "balanced"}, route)
    await log.record("complete", "Say hello", {"force_model": None}, route, "task-7")
    newest, oldest = await log.latest(10)
    assert (newest["kind"], newest["task_id"]) == ("complete", "task-7")
    assert (oldest["kind"], oldest["task_id"]) == ("route", None)
    assert oldest["options"] == {"cost_preference": "balanced"}
    assert (oldest["fallback_models"], oldest["reasons"], oldest["primary_model"]) == (
        ["openai/gpt-4.1"], ["cheap"], "openai/gpt-4.1-mini"
    )  # fmt: skip
    assert (oldest["analyzer_version"], oldest["config_fingerprint"], oldest["price_table_version"]) == (
        "an-1", "cfg-1", "p-1"
    )  # fmt: skip
    assert oldest["task_chars"] == 30 and len(oldest["task_sha256"]) == 64  # the digest, never the text
    assert "France" not in str(oldest)


async def test_a_schema_newer_than_known_is_refused(backend: Backend) -> None:
    await backend.open()
    backend.mark_too_new()
    with pytest.raises(StoreError, match="newer than this model-router"):
        await backend.open()


async def test_an_unwritable_store_fails_loudly_and_keeps_nothing_of_the_write(backend: Backend) -> None:
    store = await backend.open()
    held = await store.budgets.reserve(_hold("t1"), [], now=NOW, ttl_s=600)
    assert isinstance(held, int)
    backend.refuse_writes(store)
    with pytest.raises(StoreError) as info:
        await store.ledger.record(attempt_record("t1", when=NOW), settle=(held,))
    message = str(info.value)
    assert store.location in message and "free space" in message and "writable" in message
    with pytest.raises(StoreError):
        await store.sessions.append("s1", [("user", "hello")])
    other = await backend.open()  # a fresh connection sees only what was committed
    assert await other.ledger.attempts("t1") == []
    [task] = await other.budgets.usage([Scope("task", "t1")], now=NOW)
    assert (task.spent_pusd, task.held_pusd) == (0, to_pico(Decimal("0.10")))  # the settlement did not happen
    assert await other.sessions.history("s1") == []
