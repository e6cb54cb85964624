"""What the rest of the router needs of storage: the protocols a backend implements and the plain records
that cross them. SQLite (`store.sqlite`) is the one backend today; a second one (PostgreSQL) implements
these protocols and passes the contract suite in `tests/contract/` without touching accounting/ or
execution/.

Invariants every backend keeps:
- Every write is one transaction, awaited: when the awaiting call returns, the row is committed; when it
  cannot commit, the call raises `StoreError` naming the store and what to check, and nothing of it stays.
- `AttemptLedger.record` commits the attempt, the deletion of the reservations it settles and the usage
  sums it adds to, together or not at all.
- `BudgetWindows.reserve` checks and holds in one serialised transaction, so concurrent callers, in one
  process or many, can never hold more than a limit allows. A hold counts until `now` passes its expiry.
- `RateWindows.acquire` checks and counts a request the same way: serialised, so concurrent callers in any
  number of processes or replicas are never granted more than a rate limit allows.
- Money is integer pico-USD (1e-12) in the store; `None` means unpriced, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, Protocol

PICO = Decimal(10) ** 12


def to_pico(cost: Decimal | None) -> int | None:
    return None if cost is None else int((cost * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_pico(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value) / PICO


# --- the ledger -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one attempt at one model did and cost."""

    task_id: str
    session_id: str | None
    attempt_no: int
    started_at: float
    latency_ms: float
    model: str
    provider: str
    category: str | None
    outcome: str  # ok | error | cancelled
    price_table_version: str
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    estimated_input_tokens: int | None = None
    estimated_output_tokens: int | None = None
    tool_rounds: int = 0
    tools_called: tuple[str, ...] = field(default=())
    role: str | None = None  # a strategy's role (draft, verifier, escalation, generator, evaluator); None: single


class AttemptLedger(Protocol):
    async def record(self, record: AttemptRecord, settle: tuple[int, ...] = ()) -> None:
        """Commit the attempt, delete the reservations `settle` names and add it to the usage sums, in one
        transaction; raises `StoreError` (and keeps none of it) when the store cannot write."""
        ...

    async def attempts(self, task_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Attempt rows (column name -> value): one task's in order, or the newest `limit` of all."""
        ...


# --- budgets ----------------------------------------------------------------------------------------------

ScopeKind = Literal["task", "session", "day", "month"]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a budget counts: one task's or one session's attempts, or everyone's in the UTC day or month
    that holds `now` (`key` is the task or session id; None for day and month)."""

    kind: ScopeKind
    key: str | None = None


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One scope's position at `now`: pico-USD spent by recorded attempts and held by live reservations."""

    scope: Scope
    spent_pusd: int
    held_pusd: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation to make: a call's worst-case cost, held until its attempt is recorded or it expires."""

    task_id: str
    session_id: str | None
    model: str
    amount_pusd: int


@dataclass(frozen=True, slots=True)
class Limit:
    scope: Scope
    limit_pusd: int


@dataclass(frozen=True, slots=True)
class Refused:
    """`reserve` held nothing: the hold would take this limit's scope past it."""

    limit: Limit
    usage: WindowUsage


def window_starts(now: float) -> tuple[float, float]:
    """Unix times of the start of the current UTC day and UTC month (the `day` and `month` scopes)."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


def fits(limit_pusd: int, usage: WindowUsage, amount_pusd: int) -> bool:
    """Whether `amount` fits in what the limit leaves (never less than nothing)."""
    return amount_pusd <= max(limit_pusd - usage.spent_pusd - usage.held_pusd, 0)


class BudgetWindows(Protocol):
    async def usage(self, scopes: Sequence[Scope], *, now: float) -> list[WindowUsage]:
        """Spent and held per scope, in the order given; holds that expired by `now` do not count."""
        ...

    async def reserve(
        self, hold: Hold, limits: Sequence[Limit], *, now: float, ttl_s: float, replacing: Sequence[int] = ()
    ) -> int | Refused:
        """Atomically: release the holds in `replacing`; then if the hold `fits` every limit, keep it until
        `now + ttl_s` and return its id; else hold nothing new, keep `replacing` as they were, and return the
        first limit it does not fit. (One attempt's growing hold replaces its previous one this way, with no
        moment at which neither counts.)"""
        ...

    async def release(self, reservation_id: int) -> None: ...


# --- rate windows ---------------------------------------------------------------------------------------

RATE_WINDOW_S = 60.0  # rpm and tpm count the requests granted in the last minute


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The client-side limits on one key (`model:<id>` or `provider:<id>`); None: that one is not limited."""

    key: str
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class RateRefused:
    """`acquire` granted nothing: `limit` (rpm | tpm | max_concurrent) of `key` is at `used` of `allowed`;
    `retry_in_s` is when the window next frees room (None for max_concurrent: when a request ends)."""

    key: str
    limit: str
    allowed: int
    used: int
    retry_in_s: float | None


class RateWindows(Protocol):
    async def acquire(
        self, limits: Sequence[RateLimit], tokens: int, *, now: float, lease_s: float
    ) -> tuple[int, ...] | RateRefused:
        """Atomically: if one more request of `tokens` fits every limit (the last `RATE_WINDOW_S` before `now`
        for rpm and tpm, the requests still running for max_concurrent), count it on every key and return the
        permits; else count nothing and return the first limit it does not fit. A permit is running until
        `finish` or until `now + lease_s` (a process killed mid-call frees its slot when the lease ends)."""
        ...

    async def finish(self, permits: Sequence[int], *, now: float, sent: bool) -> None:
        """The request ended at `now`: it stops running; when it was never `sent`, it stops counting at all."""
        ...


# --- reports ----------------------------------------------------------------------------------------------

Dimension = Literal["all", "model", "provider", "category", "session", "day"]


@dataclass
class Sums:
    """What a report needs of a set of attempts. Token sums split by priced/unpriced price the baseline."""

    attempts: int = 0
    failures: int = 0
    calls: int = 0
    ok_attempts: int = 0
    input: int = 0
    cached: int = 0
    output: int = 0
    reasoning: int = 0
    cost_pusd: int = 0
    priced_attempts: int = 0
    priced_input: int = 0
    priced_cached: int = 0
    priced_output: int = 0
    unpriced_input: int = 0
    unpriced_output: int = 0

    def add(self, values: Iterable[int | None]) -> None:
        for f, value in zip(fields(self), values, strict=True):
            setattr(self, f.name, getattr(self, f.name) + (value or 0))

    @property
    def unpriced_attempts(self) -> int:
        return self.attempts - self.priced_attempts


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """Attempts with since <= started_at < until (None: unbounded), of one session if given."""

    since: float | None = None
    until: float | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class StrategySums:
    """The tasks of one strategy and category in a window, from their attempts' roles: a task with a
    generator or evaluator row ran `evaluate_optimise`, any other task with a role ran `cascade`.
    `escalated`: tasks with an escalation attempt; `generations`: successful generator attempts; `cost_pusd`:
    all their attempts (priced ones); `unpriced_tasks`: tasks with an unpriced attempt that used tokens;
    `draft_*`: the tokens the successful draft attempts were billed (the basis of the always-strong estimate)."""

    strategy: str
    category: str
    tasks: int
    escalated: int
    generations: int
    cost_pusd: int
    unpriced_tasks: int
    draft_input: int
    draft_cached: int
    draft_output: int


@dataclass
class ReportRows:
    """What `cost_report` is assembled from.

    `sums[dimension][(key, price table version)]`: the sums of that group's attempts in the window; a task
    is a *call* once per group, at its first attempt in it. `accuracy`: the newest successful attempts
    without tool rounds that had an input estimate, as (input, estimated input, output, estimated output).
    `strategies`: the multi-model strategies' tasks per strategy and category.
    """

    sums: dict[str, dict[tuple[str, str], Sums]]
    accuracy: list[tuple[int, int, int, int | None]]
    strategies: list[StrategySums] = field(default_factory=list)


class ReportSource(Protocol):
    async def report_rows(
        self, window: ReportWindow, dimensions: Sequence[Dimension], *, accuracy_samples: int
    ) -> ReportRows: ...


# --- sessions and decisions -------------------------------------------------------------------------------


class SessionHistory(Protocol):
    async def history(self, session_id: str) -> list[tuple[str, str]]:
        """(role, text) pairs, oldest first; the newest N the store keeps per session."""
        ...

    async def append(self, session_id: str, turns: list[tuple[str, str]]) -> None:
        """Add turns in one transaction and drop what falls outside the newest N."""
        ...


@dataclass(frozen=True, slots=True)
class LoggedRoute:
    """The route a decision row keeps (built by the caller from the router's result)."""

    category: str
    complexity: int
    strong_score: float
    primary_model: str
    fallback_models: tuple[str, ...]
    estimated_cost_usd: float | None
    reasons: tuple[str, ...]


class DecisionRecorder(Protocol):
    async def record(
        self, kind: str, task: str, options: Mapping[str, Any], route: LoggedRoute, task_id: str | None = None
    ) -> None:
        """Commit one decision row (`kind` is route or complete; the task is kept as digest and length)."""
        ...

    async def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest decisions, newest first, with options, fallback_models and reasons decoded."""
        ...


# --- the whole store --------------------------------------------------------------------------------------


class Store(Protocol):
    """One opened backend. Opening checks the schema (a newer one than known is refused with `StoreError`)."""

    @property
    def location(self) -> str:
        """What error messages name: the database file, or the server and database."""
        ...

    @property
    def ledger(self) -> AttemptLedger: ...

    @property
    def budgets(self) -> BudgetWindows: ...

    @property
    def reports(self) -> ReportSource: ...

    @property
    def rates(self) -> RateWindows: ...

    @property
    def sessions(self) -> SessionHistory: ...

    def decisions(
        self, *, analyzer_version: str, config_fingerprint: str, price_table_version: str
    ) -> DecisionRecorder:
        """The decision log, each row stamped with these three versions."""
        ...

    async def aclose(self) -> None: ...
