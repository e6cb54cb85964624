"""What one `complete` call hands to execution: the assembled `Job`, its `Limits`, and a progress callback.

Shared by the fallback chain (which walks models) and the tool loop (which runs one model).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.accounting.attempts import TaskAccount
from server.domain.messages import Message, ToolSpec

Progress = Callable[[str], Awaitable[None]]


async def no_progress(message: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound of one `complete` call (documented in the README)."""

    max_rounds: int = 10
    max_tool_calls: int = 25
    deadline_s: float = 300.0
    max_cost_usd: float | None = None
    retries_per_model: int = 1
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    max_retry_after_s: float = 20.0
    # A provider that refused the connection is skipped this long (unless it is the last hope).
    unreachable_skip_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    """One task, assembled and ready to send."""

    task_id: str
    session_id: str | None
    category: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    max_tokens: int
    estimated_input_tokens: int
    estimated_output_tokens: int
    role: str | None = None  # the strategy role this job plays; its attempts' rows carry it

    @property
    def account(self) -> TaskAccount:
        """Who its attempts are charged to, for the ledger."""
        return TaskAccount(
            self.task_id,
            self.session_id,
            self.category,
            self.estimated_input_tokens,
            self.estimated_output_tokens,
            self.role,
        )
