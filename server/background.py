"""Work a reply need not wait for (audit rows), finished before the runtime closes.

`Background.spawn` runs a coroutine in the runtime's task group, shielded from cancellation so that a
shutdown cannot cut it in half; a failure is logged to stderr and never reaches the caller that spawned it.
Leaving the task group waits for everything spawned, which is why the database closes after it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger(__name__)


class Background:
    def __init__(self, group: TaskGroup) -> None:
        self._group = group

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, what: str) -> None:
        self._group.start_soon(self._run, fn, args, what)

    @staticmethod
    async def _run(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], what: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await fn(*args)
            except Exception:
                log.exception("background work failed: %s", what)
