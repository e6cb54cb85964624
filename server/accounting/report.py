"""`cost_report`: what was spent, grouped, against the budgets, and what routing saved.

This module assembles the report; every figure comes from the rows the store returns for the window
(`ReportSource.report_rows`: sums per group and the estimate-accuracy sample). Costs are summed as
integer pico-USD by the store and converted once. Savings price exactly the same tokens (uncached input,
cached input, output) at the baseline model's prices; unpriced attempts are left out of both sides and
listed. A *call* is one task (one `complete`), counted at its first attempt in the window and group; an
*attempt* is one model try. The strategy section reads the attempts' roles: per strategy and category,
how many tasks, how many a cascade escalated, evaluate_optimise's rounds, and a cascade's cost against
always sending the task to the strong model, estimated on the tokens its draft was billed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.accounting.budget import BudgetGuard, BudgetState
from server.domain.config import ModelConfig
from server.domain.pricing import token_cost
from server.domain.registry import Registry
from server.errors import InvalidTimeWindow
from server.store.interface import Dimension, ReportSource, ReportWindow, StrategySums, Sums, from_pico

GroupBy = Literal["model", "provider", "category", "session", "day"]


ACCURACY_SAMPLES = 2_000  # the newest comparable attempts: bounded work however large the ledger


class Tokens(BaseModel):
    input: int = Field(description="All input tokens, cached included")
    cached_input: int
    output: int = Field(description="All output tokens, reasoning included")
    reasoning: int


class Totals(BaseModel):
    calls: int
    attempts: int
    failures: int
    tokens: Tokens
    cost_usd: float = Field(description="Sum over priced attempts")
    unpriced_attempts: int


class Group(BaseModel):
    key: str
    calls: int
    attempts: int
    failures: int
    tokens: Tokens
    cost_usd: float
    baseline_cost_usd: float | None


class Savings(BaseModel):
    baseline_model: str
    baseline_cost_usd: float
    actual_cost_usd: float
    saved_usd: float
    saved_pct: float | None


class BudgetLine(BaseModel):
    name: str = Field(description="per_task | per_session | daily | monthly")
    limit_usd: float
    spent_usd: float
    reserved_usd: float = Field(description="Held by calls still in flight")
    remaining_usd: float


class Unpriced(BaseModel):
    model: str
    attempts: int
    input_tokens: int
    output_tokens: int


class Accuracy(BaseModel):
    samples: int = Field(description="Successful single-round attempts compared")
    input_ratio_median: float | None = Field(description="actual / estimated input tokens")
    output_ratio_median: float | None = Field(description="actual / estimated output tokens")


class StrategyLine(BaseModel):
    strategy: str = Field(description="cascade | evaluate_optimise")
    category: str
    tasks: int
    escalated_tasks: int = Field(description="Cascade tasks that escalated past the draft")
    escalation_rate: float | None = Field(description="escalated_tasks / tasks (cascade)")
    mean_rounds: float | None = Field(description="Answers generated per task (evaluate_optimise)")
    cost_usd: float = Field(description="Every step's attempts (verifier and evaluator included), priced ones")
    always_strong_usd: float | None = Field(
        description="Cascade: the drafts' billed tokens priced at the strong model (see strategy_basis)"
    )
    saved_usd: float | None = Field(description="always_strong_usd - cost_usd; null with unpriced tasks")
    saved_pct: float | None
    unpriced_tasks: int


class CostReport(BaseModel):
    since: str | None
    until: str | None
    group_by: str
    session_id: str | None
    totals: Totals
    groups: list[Group]
    savings: Savings
    tier1_share: float | None = Field(description="Share of successful calls answered by a tier-1 model")
    budgets: list[BudgetLine]
    unpriced: list[Unpriced]
    estimate_accuracy: Accuracy
    price_table_versions: list[str]
    strategies: list[StrategyLine] = Field(description="cascade and evaluate_optimise tasks, per category")
    strategy_basis: str = Field(description="How always_strong_usd is estimated")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    since: float | None = None
    until: float | None = None
    group_by: GroupBy = "model"
    session_id: str | None = None


def _usd(pusd: int | None) -> float:
    value = from_pico(pusd or 0)
    return float(value) if value is not None else 0.0


def _tokens(sums: Sums) -> Tokens:
    return Tokens(input=sums.input, cached_input=sums.cached, output=sums.output, reasoning=sums.reasoning)


def _by_key(sums: dict[tuple[str, str], Sums]) -> dict[str, Sums]:
    """Merge the per-price-table-version sums of each key."""
    merged: dict[str, Sums] = {}
    for (key, _), part in sums.items():
        merged.setdefault(key, Sums()).add(astuple(part))
    return merged


class ReportBuilder:
    """Reads the store's report rows, prices the baseline and assembles the report."""

    def __init__(self, source: ReportSource, registry: Registry, budget: BudgetGuard | None = None) -> None:
        self._source = source
        self._registry = registry
        self._budget = budget

    @property
    def baseline(self) -> ModelConfig:
        model = self._registry.resolve(self._registry.config.routing.baseline_model)
        assert model is not None  # validated at config load
        return model

    async def build(self, query: ReportQuery) -> CostReport:
        dimensions: list[Dimension] = ["all", query.group_by, "model"]
        rows = await self._source.report_rows(
            ReportWindow(query.since, query.until, query.session_id), dimensions, accuracy_samples=ACCURACY_SAMPLES
        )
        budgets = await self._budget.states(session_id=query.session_id) if self._budget else []
        sections = {
            "totals": rows.sums["all"],
            "groups": _by_key(rows.sums[query.group_by]),
            "models": _by_key(rows.sums["model"]),
            "accuracy": rows.accuracy,
            "strategies": rows.strategies,
        }
        return self._assemble(query, sections, budgets)

    def _baseline_cost(self, sums: Sums) -> Decimal | None:
        if not sums.priced_attempts:
            return None
        return token_cost(
            self.baseline,
            input_tokens=sums.priced_input,
            output_tokens=sums.priced_output,
            cached_input_tokens=sums.priced_cached,
        )

    def _assemble(self, query: ReportQuery, s: dict[str, Any], budgets: list[BudgetState]) -> CostReport:
        total = _by_key(s["totals"]).get("", Sums())
        groups = [
            Group(
                key=key,
                calls=g.calls,
                attempts=g.attempts,
                failures=g.failures,
                tokens=_tokens(g),
                cost_usd=_usd(g.cost_pusd),
                baseline_cost_usd=_float(self._baseline_cost(g)),
            )
            for key, g in sorted(s["groups"].items(), key=lambda kv: (-kv[1].cost_pusd, kv[0]))
        ]
        unpriced = [
            Unpriced(
                model=m, attempts=g.unpriced_attempts, input_tokens=g.unpriced_input, output_tokens=g.unpriced_output
            )
            for m, g in sorted(s["models"].items())
            if g.unpriced_attempts
        ]
        actual = Decimal(total.cost_pusd) / Decimal(10**12)
        baseline = self._baseline_cost(total) or Decimal(0)
        return CostReport(
            since=_iso(query.since),
            until=_iso(query.until),
            group_by=query.group_by,
            session_id=query.session_id,
            totals=Totals(
                calls=total.calls,
                attempts=total.attempts,
                failures=total.failures,
                tokens=_tokens(total),
                cost_usd=float(actual),
                unpriced_attempts=total.unpriced_attempts,
            ),
            groups=groups,
            savings=Savings(
                baseline_model=self.baseline.id,
                baseline_cost_usd=float(baseline),
                actual_cost_usd=float(actual),
                saved_usd=float(baseline - actual),
                saved_pct=float((baseline - actual) / baseline * 100) if baseline else None,
            ),
            tier1_share=self._tier1_share([(m, g.ok_attempts) for m, g in s["models"].items()]),
            budgets=budget_lines(budgets),
            unpriced=unpriced,
            estimate_accuracy=_accuracy(s["accuracy"]),
            price_table_versions=sorted({version for _, version in s["totals"]}),
            strategies=[self._strategy_line(row) for row in s["strategies"]],
            strategy_basis=(
                f"always_strong_usd prices the tokens each cascade's draft was billed (input, cached input, "
                f"output) at {self.baseline.id} (routing.baseline_model), as if that model had answered at once "
                "with an answer of the draft's length; cost_usd is what every step cost, grading included"
            ),
        )

    def _strategy_line(self, row: StrategySums) -> StrategyLine:
        cost = Decimal(row.cost_pusd) / Decimal(10**12)
        cascade = row.strategy == "cascade"
        strong = (
            token_cost(
                self.baseline,
                input_tokens=row.draft_input,
                output_tokens=row.draft_output,
                cached_input_tokens=row.draft_cached,
            )
            if cascade
            else None
        )
        saved = None if strong is None or row.unpriced_tasks else strong - cost
        return StrategyLine(
            strategy=row.strategy,
            category=row.category,
            tasks=row.tasks,
            escalated_tasks=row.escalated,
            escalation_rate=row.escalated / row.tasks if cascade and row.tasks else None,
            mean_rounds=None if cascade or not row.tasks else row.generations / row.tasks,
            cost_usd=float(cost),
            always_strong_usd=_float(strong),
            saved_usd=_float(saved),
            saved_pct=float(saved / strong * 100) if saved is not None and strong else None,
            unpriced_tasks=row.unpriced_tasks,
        )

    def _tier1_share(self, finals: list[tuple]) -> float | None:
        total = sum(n for _, n in finals)
        if not total:
            return None
        tier1 = sum(n for model_id, n in finals if (m := self._registry.resolve(model_id)) and m.tier == 1)
        return tier1 / total


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def budget_lines(states: list[BudgetState]) -> list[BudgetLine]:
    return [
        BudgetLine(
            name=s.name,
            limit_usd=float(s.limit_usd),
            spent_usd=float(s.spent_usd),
            reserved_usd=float(s.reserved_usd),
            remaining_usd=float(s.remaining_usd),
        )
        for s in states
    ]


def _accuracy(rows: list[tuple]) -> Accuracy:
    inputs = [a / e for a, e, _, _ in rows if e]
    outputs = [a / e for _, _, a, e in rows if e]
    return Accuracy(
        samples=len(rows),
        input_ratio_median=round(statistics.median(inputs), 3) if inputs else None,
        output_ratio_median=round(statistics.median(outputs), 3) if outputs else None,
    )


def parse_time(text: str | None, *, now: float | None = None) -> float | None:
    """ISO date/datetime (UTC if no zone) or a relative span like `7d`, `24h`, `30m` before now.

    Raises `InvalidTimeWindow` for text it cannot read or a moment outside years 1970-9999.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    now = time.time() if now is None else now
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[-1:] in units and text[:-1].isdigit():
        moment = now - int(text[:-1]) * units[text[-1]]
        if moment < 0:
            raise InvalidTimeWindow(f"{text!r} reaches back before 1970: use a shorter span or an ISO date")
        return moment
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTimeWindow(
            f"cannot read time {text!r}: use an ISO date like 2026-11-01, or a span like 7d / 24h"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year < 1970:
        raise InvalidTimeWindow(f"{text!r} is before 1970: use a later ISO date")
    return parsed.timestamp()
