"""Rate policy: which client-side limits a provider call meets, and how long it may wait for room.

A model's call counts against its own `[[models]]` `rpm` / `tpm` / `max_concurrent` and its provider's
(`[providers.X]`), each a key of the store's `RateWindows` (`model:<id>`, `provider:<id>`): the store checks
and counts in one serialised transaction, so every process on one SQLite file and every replica on one
PostgreSQL database share the same windows. `tpm` counts each request's worst case (its input counted
conservatively plus `max_tokens`), as the budget does. A call with no room waits, polling the store, up to
`rate_limits.wait_s`, then raises `RateLimitReached` naming the limit it met; the fallback chain moves on.
A permit runs until `finish`; one left by a killed process stops running after `lease_s`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from server.domain.config import Config, ModelConfig, ProviderConfig
from server.errors import RateLimitReached
from server.store.interface import RATE_WINDOW_S, RateLimit, RateRefused, RateWindows

log = logging.getLogger(__name__)
_POLL_S = 0.05  # how often a waiting call asks again when the store cannot say when room frees up


class RatePermit:
    """One granted request: `finish` it when the call ends (or was never sent)."""

    def __init__(self, gate: RateGate, ids: tuple[int, ...]) -> None:
        self._gate, self._ids = gate, ids

    async def finish(self, *, sent: bool) -> None:
        """Never raises: an answer already paid for is not lost to a store that cannot mark the request
        ended; its `max_concurrent` slot then frees when the lease lapses."""
        if not self._ids:
            return
        try:
            with anyio.CancelScope(shield=True):  # a cancelled call still frees its slot
                await self._gate.windows.finish(self._ids, now=self._gate.clock(), sent=sent)
        except Exception as exc:
            log.warning("could not mark a rate-limited request as ended (%s); its slot frees after lease_s", exc)


class RateGate:
    """Grants provider calls against the configured rate limits, waiting up to `wait_s` for room."""

    def __init__(
        self,
        windows: RateWindows,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.windows = windows
        self.clock = clock
        self._sleep = sleep
        self._providers = config.providers
        self._wait_s = config.rate_limits.wait_s
        self._lease_s = config.rate_limits.lease_s

    def limits(self, model: ModelConfig) -> list[RateLimit]:
        """The limited keys a call to `model` counts against (none: the call is never held back)."""
        found = [_limit(f"model:{model.id}", model)]
        provider = self._providers.get(model.provider)
        if provider is not None:
            found.append(_limit(f"provider:{model.provider}", provider))
        return [limit for limit in found if (limit.rpm, limit.tpm, limit.max_concurrent) != (None, None, None)]

    async def acquire(self, model: ModelConfig, tokens: int) -> RatePermit:
        """A permit for one call of at most `tokens`; raises `RateLimitReached` after waiting `wait_s`."""
        limits = self.limits(model)
        if not limits:
            return RatePermit(self, ())
        give_up = self.clock() + self._wait_s
        while True:
            now = self.clock()
            granted = await self.windows.acquire(limits, tokens, now=now, lease_s=self._lease_s)
            if not isinstance(granted, RateRefused):
                return RatePermit(self, granted)
            pause = max(granted.retry_in_s or _POLL_S, _POLL_S)
            if now + pause > give_up:
                raise RateLimitReached(_message(model, granted, self._wait_s), limit=granted.limit)
            await self._sleep(pause)


def _limit(key: str, source: ModelConfig | ProviderConfig) -> RateLimit:
    return RateLimit(key, source.rpm, source.tpm, source.max_concurrent)


def _message(model: ModelConfig, refused: RateRefused, wait_s: float) -> str:
    whose = model.id if refused.key.startswith("model:") else f"provider {refused.key.split(':', 1)[1]}"
    table = "[[models]]" if refused.key.startswith("model:") else f"[providers.{model.provider}]"
    window = f"{RATE_WINDOW_S:g} s"
    held = {
        "rpm": f"{refused.used} requests in the last {window}",
        "tpm": f"{refused.used} tokens in the last {window}",
        "max_concurrent": f"{refused.used} requests running",
    }[refused.limit]
    return (
        f"{whose}: {refused.limit} limit {refused.allowed} reached ({held}; no room within {wait_s:g} s, "
        f"rate_limits.wait_s); not sent to {model.id}; moved to the next model of the route, if any "
        f"(raise {refused.limit} in {table} if the provider allows more)"
    )
