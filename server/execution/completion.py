"""`complete`: route a task, confirm it when it needs a human, assemble its context, run it on the fallback chain,
keep the session, report cost.

The MCP tool and the CLI both call `CompletionService.complete`; its result is the structured output
they return. It is built only from an `Outcome`, whose attempts' ledger rows are already committed. A task
that needs confirming (`confirmation.needed`) gets its verdict before the decision row and any paid call;
a declined one leaves only its decision row.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from server.accounting.budget import BudgetGuard, BudgetState
from server.accounting.report import BudgetLine, budget_lines
from server.domain.messages import ToolSpec
from server.domain.tasks import TaskAnalysis
from server.errors import InvalidStrategy, InvalidTask
from server.execution.confirmation import Confirmation, HumanAnswer, Verdict, refusal, settle
from server.execution.confirmation import needed as confirmation_needed
from server.execution.context import build_messages
from server.execution.fallback import FallbackChain, Outcome
from server.execution.job import Job, Progress, no_progress
from server.execution.roles import Plan, RoleModels, Strategy, plan_strategy, role_rows
from server.execution.strategies import StrategyReport, StrategyRunner
from server.routing.router import Router, RouteResult, to_result
from server.routing.selector import BudgetLeft, Route, RouteOptions
from server.store.interface import DecisionRecorder, LoggedRoute, SessionHistory
from server.store.sessions import validate_session_id
from server.tools.toolbox import ToolBox

log = logging.getLogger(__name__)
MAX_OUTPUT_TOKENS = 128_000
MAX_SYSTEM_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class CompleteRequest:
    task: str
    options: RouteOptions
    session_id: str | None = None
    system: str | None = None
    max_tokens: int = 4096
    enable_tools: bool = True
    strategy: str = Strategy.SINGLE.value


class CompleteRoute(RouteResult):
    """The route `complete` took: `route_task`'s fields (for the first role's model) plus the strategy and
    every role's model."""

    strategy: str = Field(description="single | cascade | evaluate_optimise")
    roles: list[RoleModels] = Field(
        description="Each role's model and fallbacks, in the order they run; empty for single"
    )


class AttemptSummary(BaseModel):
    model: str
    provider: str
    outcome: str = Field(
        description="ok | error | cancelled | refused (a budget had no room) | rate_limited (a configured rpm, tpm "
        "or max_concurrent had no room; not sent) | skipped (its provider was unreachable moments ago)"
    )
    error_type: str | None
    error: str | None
    latency_ms: float
    cost_usd: float | None
    role: str | None = Field(
        default=None,
        description="The strategy role of this attempt (draft, verifier, escalation, generator, "
        "evaluator); null for single",
    )


class CompleteResult(BaseModel):
    """The answer, the route that produced it, and everything it cost."""

    response: str
    model_used: str
    provider: str
    finish_reason: str
    route: CompleteRoute
    strategy: StrategyReport = Field(description="What the strategy did: steps, scores, acceptance, rounds")
    attempts: list[AttemptSummary]
    tools_called: list[str]
    input_tokens: int = Field(description="All input tokens over all attempts, cached ones included")
    cached_input_tokens: int
    output_tokens: int = Field(description="All output tokens over all attempts, reasoning ones included")
    reasoning_tokens: int
    cost_usd: float | None = Field(description="Total over all attempts; null if an attempt had no price")
    latency_ms: float
    session_id: str | None
    task_id: str
    budgets: list[BudgetLine] = Field(description="Each configured budget after this call")


class CompletionService:
    """Everything `complete` needs, wired once at start-up."""

    def __init__(
        self,
        router: Router,
        fallback: FallbackChain,
        sessions: SessionHistory,
        toolbox: ToolBox,
        budget: BudgetGuard | None = None,
        decisions: DecisionRecorder | None = None,
        strategies: StrategyRunner | None = None,
    ) -> None:
        self.router = router
        self.fallback = fallback
        self.sessions = sessions
        self.toolbox = toolbox
        self.budget = budget
        self.decisions = decisions
        self.strategies = strategies or StrategyRunner(fallback, budget)

    async def confirmation_for(self, request: CompleteRequest) -> Confirmation | None:
        """What a human must confirm before this request runs, or None; routes it, sends and writes nothing."""
        _validate(request)
        history = await self.sessions.history(request.session_id) if request.session_id else []
        _, _, _, route_result, _ = await self._route(request, history, _new_task_id())
        return confirmation_needed(request.task, route_result, self.router.registry.config.budgets)

    async def complete(
        self, request: CompleteRequest, progress: Progress = no_progress, human: HumanAnswer | None = None
    ) -> CompleteResult:
        """Route, confirm, run and record one task. `human` is the answer to `confirmation_for`'s question,
        when a human could be asked; without it a task that needs confirming runs only if the config allows."""
        _validate(request)
        started = time.monotonic()
        history = await self.sessions.history(request.session_id) if request.session_id else []
        task_id = _new_task_id()
        options, analysis, route, route_result, plan = await self._route(request, history, task_id)
        config = self.router.registry.config
        confirmation = confirmation_needed(request.task, route_result, config.budgets)
        verdict = settle(confirmation, human, config.safety)  # before anything is sent or charged
        if confirmation is not None and verdict in (Verdict.DECLINED, Verdict.CANCELLED):
            await self._record(request, options, route_result, task_id, verdict)
            raise refusal(verdict, confirmation)
        await progress(f"routed to {route.primary.id} ({analysis.category.value}, complexity {analysis.complexity})")
        tools: tuple[ToolSpec, ...] = ()
        if request.enable_tools and analysis.tools_offered:
            # Only the tools of the predicted kinds: a model offered execute_python for a search task may run
            # code it was not asked to, and every definition sent is input tokens paid for on every round.
            tools = tuple(await self.toolbox.list_tools(analysis.tools_offered))
        job = Job(
            task_id=task_id,
            session_id=request.session_id,
            category=analysis.category.value,
            messages=build_messages(request.task, category=analysis.category, history=history, system=request.system),
            tools=tools,
            max_tokens=request.max_tokens,
            estimated_input_tokens=analysis.estimated_input_tokens,
            estimated_output_tokens=route.estimated_output_tokens,
        )
        # Before any paid request: a store that cannot write fails the call while it has cost nothing.
        await self._record(request, options, route_result, task_id, verdict)
        if plan is None:
            outcome = await self.fallback.run(route.chain, job, progress)
            report = StrategyReport(
                strategy="single", accepted=None, threshold=None, rounds=1, escalations=0, stopped_by=None, steps=[]
            )
        else:
            outcome, report = await self.strategies.run(plan, job, request.task, progress)
        if request.session_id:
            await self.sessions.append(request.session_id, [("user", request.task), ("assistant", outcome.text)])
        budgets = await self._budget_summary(task_id, request.session_id)
        return _result(outcome, route_result, report, job, (time.monotonic() - started) * 1000, budgets)

    async def _route(
        self, request: CompleteRequest, history: list[tuple[str, str]], task_id: str
    ) -> tuple[RouteOptions, TaskAnalysis, Route, CompleteRoute, Plan | None]:
        """The options, analysis, route (the first role's, for a strategy) and its plan; sends nothing."""
        tightest = await self.budget.tightest(task_id, request.session_id) if self.budget else None
        options = RouteOptions(
            preference=request.options.preference,
            self_hosted_only=request.options.self_hosted_only,
            force_model=request.options.force_model,
            enable_tools=request.enable_tools,
            max_output_tokens=request.max_tokens,
            budget=_budget_left(tightest),
        )
        history_tokens = sum(len(text) for _, text in history) // 4
        analysis, route = await self.router.decide(request.task, options, history_tokens=history_tokens)
        strategy = Strategy(request.strategy)
        plan = None
        if strategy is not Strategy.SINGLE:
            plan = plan_strategy(strategy, analysis, options, self.router.registry, self.router.analyzer.thresholds)
            route = dataclasses.replace(plan.route, reasons=(*plan.route.reasons, *plan.reasons))
        route_result = CompleteRoute(
            **to_result(analysis, route, options.preference).model_dump(),
            strategy=strategy.value,
            roles=role_rows(plan) if plan else [],
        )
        return options, analysis, route, route_result, plan

    async def _record(
        self, request: CompleteRequest, options: RouteOptions, route: RouteResult, task_id: str, verdict: Verdict
    ) -> None:
        """The decision row, with how its confirmation ended (not_needed, accepted, declined, unattended…)."""
        if self.decisions is not None:
            logged = {**logged_options(options), "confirmation": verdict.value}
            if request.strategy != Strategy.SINGLE.value:
                logged["strategy"] = request.strategy
            await self.decisions.record("complete", request.task, logged, logged_route(route), task_id)

    async def _budget_summary(self, task_id: str, session_id: str | None) -> list[BudgetLine]:
        return budget_lines(await self.budget.states(task_id, session_id)) if self.budget else []


def logged_options(options: RouteOptions) -> dict[str, Any]:
    """The caller's options as the decision log keeps them."""
    return {
        "cost_preference": options.preference.value,
        "self_hosted_only": options.self_hosted_only,
        "force_model": options.force_model,
        "enable_tools": options.enable_tools,
        "max_output_tokens": options.max_output_tokens,
        "budget_left_usd": None if options.budget is None else options.budget.remaining_usd,
        "role": None if options.role is None else options.role.value,
    }


def logged_route(result: RouteResult) -> LoggedRoute:
    """The route as the decision log keeps it."""
    return LoggedRoute(
        category=result.category,
        complexity=result.complexity,
        strong_score=result.strong_score,
        primary_model=result.primary_model,
        fallback_models=tuple(result.fallback_models),
        estimated_cost_usd=result.estimated_cost_usd,
        reasons=tuple(result.reasons),
    )


def _new_task_id() -> str:
    return uuid.uuid4().hex


def _validate(request: CompleteRequest) -> None:
    if request.session_id is not None:
        validate_session_id(request.session_id)
    if request.strategy not in {s.value for s in Strategy}:
        allowed = ", ".join(s.value for s in Strategy)
        raise InvalidStrategy(f"strategy must be one of {allowed}, got {request.strategy!r}")
    if not 1 <= request.max_tokens <= MAX_OUTPUT_TOKENS:
        raise InvalidTask(f"max_tokens must be between 1 and {MAX_OUTPUT_TOKENS:,}, got {request.max_tokens}")
    if request.system is not None and len(request.system) > MAX_SYSTEM_CHARS:
        raise InvalidTask(f"system is {len(request.system):,} characters; the limit is {MAX_SYSTEM_CHARS:,}")


def _budget_left(state: BudgetState | None) -> BudgetLeft | None:
    """What the selector needs of the tightest budget (spent includes what calls in flight hold)."""
    if state is None:
        return None
    spent = state.spent_usd + state.reserved_usd
    return BudgetLeft(state.name, float(state.limit_usd), float(spent), float(state.remaining_usd))


def _result(
    outcome: Outcome,
    route: CompleteRoute,
    report: StrategyReport,
    job: Job,
    latency_ms: float,
    budgets: list[BudgetLine],
) -> CompleteResult:
    usage = outcome.usage
    cost = outcome.cost_usd
    attempts: list[Any] = [
        AttemptSummary(
            model=a.model,
            provider=a.provider,
            outcome=a.outcome,
            error_type=a.error_type,
            error=a.error,
            latency_ms=round(a.latency_ms, 2),
            cost_usd=None if a.cost_usd is None else float(a.cost_usd),
            role=a.role,
        )
        for a in outcome.attempts
    ]
    return CompleteResult(
        response=outcome.text,
        model_used=outcome.model.id,
        provider=outcome.model.provider,
        finish_reason=outcome.finish_reason.value,
        route=route,
        strategy=report,
        attempts=attempts,
        tools_called=outcome.tools_called,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=None if cost is None else float(cost),
        latency_ms=round(latency_ms, 2),
        session_id=job.session_id,
        task_id=job.task_id,
        budgets=budgets,
    )
