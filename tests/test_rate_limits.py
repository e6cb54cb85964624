"""Client-side rate limits as a caller meets them: a full `rpm` / `tpm` / `max_concurrent` makes the call
wait (up to `rate_limits.wait_s`) or move to the next model, and the attempt list says which limit it met.

The store is a real SQLite database; the rate gate's clock and sleep are injected, so a minute passes
without waiting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.accounting.attempts import AttemptBook
from server.accounting.rates import RateGate
from server.domain.registry import Registry
from server.errors import AllModelsFailed, ConfigError
from server.execution.fallback import FallbackChain
from server.execution.job import Limits
from server.execution.tool_loop import ToolLoop
from server.store import SqliteStore, open_store
from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS, make_registry
from tests.test_dispatch import ScriptedPool, chain, job

pytestmark = pytest.mark.anyio
T0 = 1_790_000_000.0


class Clock:
    """Wall-clock time for the rate gate; sleeping moves it on at once."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _registry(tmp_path: Path, toml: str) -> Registry:
    path = tmp_path / "router.toml"
    path.write_text(toml)
    return make_registry(ALL_KEYS, config_path=path)


async def _setup(tmp_path: Path, toml: str) -> tuple[FallbackChain, ScriptedPool, Clock, Registry, SqliteStore]:
    registry = _registry(tmp_path, toml)
    store = await open_store(tmp_path / "data")
    assert isinstance(store, SqliteStore)
    clock, pool = Clock(), ScriptedPool()
    rates = RateGate(store.rates, registry.config, clock=clock, sleep=clock.sleep)
    loop = ToolLoop(registry, pool, NoTools(), Limits(), rates=rates)
    book = AttemptBook(store.ledger, None, registry.config.price_table_version)
    return FallbackChain(loop, book), pool, clock, registry, store


async def test_a_full_rpm_moves_the_call_to_the_next_model_and_says_which_limit(tmp_path: Path) -> None:
    toml = '[rate_limits]\nwait_s = 2\n[[models]]\nid = "openai/gpt-4.1"\nrpm = 2\n'
    fallback, pool, clock, registry, store = await _setup(tmp_path, toml)
    try:
        route = chain(registry, "openai/gpt-4.1", "anthropic/claude-sonnet-4-6")
        answered = [await fallback.run(route, job()) for _ in range(2)]
        clock.now += 10
        third = await fallback.run(route, job())
        assert [a.model.id for a in answered] == ["openai/gpt-4.1"] * 2
        assert third.model.id == "anthropic/claude-sonnet-4-6"
        skipped = third.attempts[0]
        assert (skipped.model, skipped.outcome, skipped.error_type) == ("openai/gpt-4.1", "rate_limited",
                                                                         "RateLimitReached")  # fmt: skip
        assert skipped.error is not None
        assert "openai/gpt-4.1: rpm limit 2 reached (2 requests in the last 60 s" in skipped.error
        assert "moved to the next model" in skipped.error
        assert len(pool.get(route[0]).requests) == 2  # the third request was never sent
        assert clock.slept == []  # room frees in 50 s, past the 2 s wait: no point waiting
        rows = await store.ledger.attempts()
        assert sorted(r["model"] for r in rows) == ["anthropic/claude-sonnet-4-6", "openai/gpt-4.1", "openai/gpt-4.1"]
        clock.now += 60  # a minute later the window has room again
        assert (await fallback.run(route, job())).model.id == "openai/gpt-4.1"
    finally:
        await store.aclose()


async def test_a_call_waits_for_room_when_it_comes_within_wait_s(tmp_path: Path) -> None:
    toml = "[rate_limits]\nwait_s = 90\n[providers.openai]\nrpm = 1\n"
    fallback, _pool, clock, registry, store = await _setup(tmp_path, toml)
    try:
        route = chain(registry, "openai/gpt-4.1", "anthropic/claude-sonnet-4-6")
        await fallback.run(route, job())
        clock.now += 15
        second = await fallback.run(route, job())
        assert second.model.id == "openai/gpt-4.1" and [a.outcome for a in second.attempts] == ["ok"]
        assert clock.slept == [pytest.approx(45.0)]  # until the first request left the 60 s window
    finally:
        await store.aclose()


async def test_a_provider_limit_covers_all_its_models_and_the_last_refusal_is_clear(tmp_path: Path) -> None:
    toml = "[rate_limits]\nwait_s = 0\n[providers.openai]\ntpm = 500\n"
    fallback, _pool, _clock, registry, store = await _setup(tmp_path, toml)
    try:
        route = chain(registry, "openai/gpt-4.1", "openai/o3")
        await fallback.run(route, job())  # max_tokens 256 plus the input: room for one such call a minute
        with pytest.raises(AllModelsFailed) as info:
            await fallback.run(route, job())  # neither of the provider's models has room
        message = str(info.value)
        assert "provider openai: tpm limit 500 reached" in message and "[providers.openai]" in message
    finally:
        await store.aclose()


@pytest.mark.parametrize("key", ["rpm", "tpm", "max_concurrent"])
def test_a_limit_must_be_a_positive_whole_number(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"models\[id=openai/gpt-4.1\]\.{key}"):
        _registry(tmp_path, f'[[models]]\nid = "openai/gpt-4.1"\n{key} = 0\n')


def test_no_limit_is_the_default(registry_all_keys: Registry) -> None:
    config = registry_all_keys.config
    assert all((m.rpm, m.tpm, m.max_concurrent) == (None, None, None) for m in config.models)
    assert config.rate_limits.wait_s == 5.0
