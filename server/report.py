"""`cost_report`: what was spent, grouped, against the budgets, and what routing saved.

Every figure comes from ledger rows in the window. Costs are summed as integer pico-USD in SQL and
converted once. Savings price exactly the same tokens (uncached input, cached input, output) at the
baseline model's prices; unpriced attempts are left out of both sides and listed. A *call* is one task
(one `complete`); an *attempt* is one model try within it.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from server.budgets import BudgetGuard, BudgetState
from server.config import ModelConfig
from server.pricing import token_cost
from server.registry import Registry
from server.store.db import Database
from server.store.ledger import from_pico

GroupBy = Literal["model", "provider", "category", "session", "day"]
_GROUP_SQL = {
    "model": "model",
    "provider": "provider",
    "category": "COALESCE(category, '(none)')",
    "session": "COALESCE(session_id, '(no session)')",
    "day": "strftime('%Y-%m-%d', started_at, 'unixepoch')",
}
_SUMS = (
    "COUNT(DISTINCT task_id), COUNT(*), SUM(outcome != 'ok'), SUM(input_tokens), SUM(cached_input_tokens), "
    "SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_pusd)"
)


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


@dataclass(frozen=True, slots=True)
class ReportQuery:
    since: float | None = None
    until: float | None = None
    group_by: GroupBy = "model"
    session_id: str | None = None


def _where(query: ReportQuery) -> tuple[str, list[object]]:
    clauses: list[str] = ["1=1"]
    args: list[object] = []
    if query.since is not None:
        clauses.append("started_at >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("started_at < ?")
        args.append(query.until)
    if query.session_id is not None:
        clauses.append("session_id = ?")
        args.append(query.session_id)
    return " AND ".join(clauses), args


def _usd(pusd: int | None) -> float:
    value = from_pico(pusd or 0)
    return float(value) if value is not None else 0.0


def _tokens(row: tuple) -> Tokens:
    return Tokens(input=row[0] or 0, cached_input=row[1] or 0, output=row[2] or 0, reasoning=row[3] or 0)


class ReportBuilder:
    """Reads the ledger and prices the baseline."""

    def __init__(self, db: Database, registry: Registry, budget: BudgetGuard | None = None) -> None:
        self._db = db
        self._registry = registry
        self._budget = budget

    @property
    def baseline(self) -> ModelConfig:
        model = self._registry.resolve(self._registry.config.routing.baseline_model)
        assert model is not None  # validated at config load
        return model

    async def build(self, query: ReportQuery) -> CostReport:
        sections = await self._db.run(lambda conn: self._read(conn, query))
        budgets = await self._budget.states(session_id=query.session_id) if self._budget else []
        return self._assemble(query, sections, budgets)

    def _read(self, conn: sqlite3.Connection, query: ReportQuery) -> dict[str, list[tuple]]:
        where, args = _where(query)
        key = _GROUP_SQL[query.group_by]
        priced = f"{where} AND cost_pusd IS NOT NULL"
        return {
            "totals": conn.execute(f"SELECT {_SUMS} FROM attempts WHERE {where}", args).fetchall(),
            "groups": conn.execute(
                f"SELECT {key} AS k, {_SUMS} FROM attempts WHERE {where} GROUP BY k ORDER BY SUM(cost_pusd) DESC, k",
                args,
            ).fetchall(),
            "priced_groups": conn.execute(
                f"SELECT {key} AS k, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens) "
                f"FROM attempts WHERE {priced} GROUP BY k",
                args,
            ).fetchall(),
            "unpriced": conn.execute(
                f"SELECT model, COUNT(*), SUM(input_tokens), SUM(output_tokens) FROM attempts "
                f"WHERE {where} AND cost_pusd IS NULL GROUP BY model ORDER BY model",
                args,
            ).fetchall(),
            "final_models": conn.execute(
                f"SELECT model, COUNT(*) FROM attempts WHERE {where} AND outcome = 'ok' GROUP BY model", args
            ).fetchall(),
            "accuracy": conn.execute(
                f"SELECT input_tokens, estimated_input_tokens, output_tokens, estimated_output_tokens FROM attempts "
                f"WHERE {where} AND outcome = 'ok' AND tool_rounds = 0 AND estimated_input_tokens > 0 "
                "ORDER BY id DESC LIMIT 10000",
                args,
            ).fetchall(),
            "versions": conn.execute(
                f"SELECT DISTINCT price_table_version FROM attempts WHERE {where} ORDER BY 1", args
            ).fetchall(),
        }

    def _baseline_cost(self, input_tokens: int, cached: int, output: int) -> Decimal | None:
        return token_cost(self.baseline, input_tokens=input_tokens, output_tokens=output, cached_input_tokens=cached)

    def _assemble(self, query: ReportQuery, s: dict[str, list[tuple]], budgets: list[BudgetState]) -> CostReport:
        total = s["totals"][0]
        baseline_by_key = {k: self._baseline_cost(i or 0, c or 0, o or 0) for k, i, c, o in s["priced_groups"]}
        groups = [
            Group(
                key=str(row[0]),
                calls=row[1],
                attempts=row[2],
                failures=row[3] or 0,
                tokens=_tokens(row[4:8]),
                cost_usd=_usd(row[8]),
                baseline_cost_usd=_float(baseline_by_key.get(row[0])),
            )
            for row in s["groups"]
        ]
        unpriced = [
            Unpriced(model=m, attempts=n, input_tokens=i or 0, output_tokens=o or 0) for m, n, i, o in s["unpriced"]
        ]
        actual = Decimal(total[7] or 0) / Decimal(10**12)
        baseline = sum((v for v in baseline_by_key.values() if v is not None), Decimal(0))
        return CostReport(
            since=_iso(query.since),
            until=_iso(query.until),
            group_by=query.group_by,
            session_id=query.session_id,
            totals=Totals(
                calls=total[0] or 0,
                attempts=total[1] or 0,
                failures=total[2] or 0,
                tokens=_tokens(total[3:7]),
                cost_usd=float(actual),
                unpriced_attempts=sum(u.attempts for u in unpriced),
            ),
            groups=groups,
            savings=Savings(
                baseline_model=self.baseline.id,
                baseline_cost_usd=float(baseline),
                actual_cost_usd=float(actual),
                saved_usd=float(baseline - actual),
                saved_pct=float((baseline - actual) / baseline * 100) if baseline else None,
            ),
            tier1_share=self._tier1_share(s["final_models"]),
            budgets=budget_lines(budgets),
            unpriced=unpriced,
            estimate_accuracy=_accuracy(s["accuracy"]),
            price_table_versions=[v for (v,) in s["versions"]],
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
    """ISO date/datetime (UTC if no zone) or a relative span like `7d`, `24h`, `30m` before now."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    now = time.time() if now is None else now
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[-1:] in units and text[:-1].isdigit():
        return now - int(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use an ISO date like 2026-11-01, or a span like 7d / 24h"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
