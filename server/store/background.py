"""Work a reply need not wait for (audit and ledger rows already queued), finished before the runtime closes.

`Background.spawn` awaits an awaitable in the runtime's task group, shielded from cancellation so that a
shutdown cannot cut it in half; a failure is logged to stderr and never reaches the caller that spawned it.
Leaving the task group waits for everything spawned, which is why the database closes after it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger(__name__)


class Background:
    def __init__(self, group: TaskGroup) -> None:
        self._group = group

    def spawn(self, work: Awaitable[Any], *, what: str) -> None:
        self._group.start_soon(self._run, work, what)

    @staticmethod
    async def _run(work: Awaitable[Any], what: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await work
            except Exception:
                log.exception("background work failed: %s", what)
