"""The rate-window contract: rpm, tpm and max_concurrent counted atomically, on every backend.

Clocks are passed in (`now`), so windows slide and leases lapse without waiting; concurrency is real (many
tasks on two stores, i.e. two connections or pools: what two processes or replicas see).
"""

from __future__ import annotations

import anyio
import pytest

from server.store.interface import RateLimit, RateRefused, Store
from tests.contract.conftest import Backend

pytestmark = pytest.mark.anyio
NOW = 1_790_000_000.0


async def test_concurrent_requests_from_two_stores_never_exceed_rpm(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    limits = [RateLimit("model:openai/gpt-4.1", rpm=60)]
    granted: list[tuple[int, ...]] = []
    refused: list[RateRefused] = []

    async def acquire(store: Store, i: int) -> None:
        result = await store.rates.acquire(limits, 100, now=NOW + i * 0.01, lease_s=600)
        (refused if isinstance(result, RateRefused) else granted).append(result)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for i in range(90):
            tg.start_soon(acquire, one if i % 2 else two, i)
    assert len(granted) == 60 and len(refused) == 30
    assert {(r.key, r.limit, r.allowed, r.used) for r in refused} == {("model:openai/gpt-4.1", "rpm", 60, 60)}


async def test_the_rpm_window_slides_after_a_minute(store: Store) -> None:
    limits = [RateLimit("provider:openai", rpm=2)]
    for offset in (0.0, 10.0):
        assert isinstance(await store.rates.acquire(limits, 1, now=NOW + offset, lease_s=600), tuple)
    refused = await store.rates.acquire(limits, 1, now=NOW + 30, lease_s=600)
    assert isinstance(refused, RateRefused) and refused.limit == "rpm"
    assert refused.retry_in_s == pytest.approx(30.0)  # the oldest request leaves the window at NOW + 60
    assert isinstance(await store.rates.acquire(limits, 1, now=NOW + 60.5, lease_s=600), tuple)


async def test_tpm_counts_tokens_and_a_request_never_sent_stops_counting(store: Store) -> None:
    limits = [RateLimit("model:m/x", tpm=1000)]
    first = await store.rates.acquire(limits, 700, now=NOW, lease_s=600)
    assert isinstance(first, tuple)
    refused = await store.rates.acquire(limits, 400, now=NOW + 1, lease_s=600)
    assert isinstance(refused, RateRefused) and (refused.limit, refused.used) == ("tpm", 700)
    await store.rates.finish(first, now=NOW + 2, sent=False)
    assert isinstance(await store.rates.acquire(limits, 400, now=NOW + 3, lease_s=600), tuple)


async def test_max_concurrent_frees_a_slot_when_a_request_ends_or_its_lease_lapses(store: Store) -> None:
    limits = [RateLimit("model:m/x", max_concurrent=1)]
    first = await store.rates.acquire(limits, 1, now=NOW, lease_s=30)
    assert isinstance(first, tuple)
    busy = await store.rates.acquire(limits, 1, now=NOW + 1, lease_s=30)
    assert isinstance(busy, RateRefused) and (busy.limit, busy.used, busy.retry_in_s) == ("max_concurrent", 1, None)
    await store.rates.finish(first, now=NOW + 2, sent=True)
    second = await store.rates.acquire(limits, 1, now=NOW + 3, lease_s=30)
    assert isinstance(second, tuple)  # the first ended; it still counts for rpm, not for concurrency
    # The second's process dies without finishing: its slot comes back when the lease lapses.
    assert isinstance(await store.rates.acquire(limits, 1, now=NOW + 10, lease_s=30), RateRefused)
    assert isinstance(await store.rates.acquire(limits, 1, now=NOW + 34, lease_s=30), tuple)


async def test_a_request_counts_on_every_key_or_on_none(store: Store) -> None:
    model, provider = RateLimit("model:openai/a", rpm=5), RateLimit("provider:openai", rpm=1)
    assert isinstance(await store.rates.acquire([model, provider], 1, now=NOW, lease_s=600), tuple)
    refused = await store.rates.acquire([model, provider], 1, now=NOW + 1, lease_s=600)
    assert isinstance(refused, RateRefused) and refused.key == "provider:openai"
    # The refusal counted nothing on the model's key: four more fit there.
    for i in range(4):
        assert isinstance(await store.rates.acquire([model], 1, now=NOW + 2 + i, lease_s=600), tuple)
    assert isinstance(await store.rates.acquire([model], 1, now=NOW + 7, lease_s=600), RateRefused)
