"""Which model plays each role of a multi-model strategy: a pure function of the analysis, options and registry.

- `cascade`: the **draft** is the category's `cost_optimized` matrix model; the **escalation** steps are the
  category's `default` model, then its most capable tier-1 model (a step whose model an earlier step already
  used is dropped). The **verifier** is a cheap model of another family: the cheapest callable tier-2 or
  tier-3 chat model (not a reasoning model) whose vendor differs from the draft's. Why another family: a
  grader shares fewer blind spots with an answer it did not write, and models rate their own family's text
  higher; why cheap: grading reads the task and the answer but writes ~50 tokens, so it costs a fraction of
  the draft. Its fallbacks are the next cheapest such models, then the draft model itself. When no such
  model can be called here (self_hosted_only, one provider's key), the draft model grades itself with the
  grading prompt, and the reasons say so. "Family" is the vendor as the id shows it (the provider, or the
  vendor segment of an aggregator's id), so an open-weight model on a second host counts as that host's.
- `evaluate_optimise`: the **generator** is the `cost_optimized` model, the **evaluator** the category's
  `default` model (the seeds: a cheaper generator, a stronger evaluator).

Every role's chain comes from the selector, so self_hosted_only, context fit, tool support and the budget
hold for every role exactly as for a single route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from server.domain.config import ModelConfig
from server.domain.registry import Registry
from server.domain.tasks import TaskAnalysis
from server.routing.selector import TIER1, Route, RouteOptions, select_route


class Strategy(StrEnum):
    SINGLE = "single"
    CASCADE = "cascade"
    EVALUATE_OPTIMISE = "evaluate_optimise"


@dataclass(frozen=True, slots=True)
class Role:
    """One role of a strategy and the chain of models that plays it (fallbacks within the role)."""

    name: str  # draft | verifier | escalation | generator | evaluator
    chain: tuple[ModelConfig, ...]

    @property
    def model(self) -> ModelConfig:
        return self.chain[0]


@dataclass(frozen=True, slots=True)
class Plan:
    """A strategy's roles in the order they run; `route` is the first role's route (the answer's first model)."""

    strategy: Strategy
    route: Route
    roles: tuple[Role, ...]
    reasons: tuple[str, ...]

    def role(self, name: str) -> Role:
        return next(r for r in self.roles if r.name == name)

    def all(self, name: str) -> list[Role]:
        return [r for r in self.roles if r.name == name]


class RoleModels(BaseModel):
    """Which model plays a role, and its fallbacks within the role."""

    role: str = Field(description="draft | verifier | escalation (cascade); generator | evaluator (evaluate_optimise)")
    model: str
    fallback_models: list[str]


def role_rows(plan: Plan) -> list[RoleModels]:
    return [RoleModels(role=r.name, model=r.model.id, fallback_models=[m.id for m in r.chain[1:]]) for r in plan.roles]


def plan_strategy(
    strategy: Strategy,
    analysis: TaskAnalysis,
    options: RouteOptions,
    registry: Registry,
    thresholds: Mapping[str, float] | None = None,
) -> Plan:
    """The roles of `strategy` (not `single`) for one analysed task; raises `RoutingError` as the selector does."""

    def route(situation: str) -> Route:
        return select_route(analysis, options, registry, thresholds, situation=situation)

    first = route("cost_optimized")
    if strategy is Strategy.EVALUATE_OPTIMISE:
        evaluator = route("default")
        roles = (Role("generator", first.chain), Role("evaluator", evaluator.chain))
        why = f"evaluate_optimise: {first.primary.id} generates, {evaluator.primary.id} evaluates"
        return Plan(strategy, first, roles, (why,))
    verifier, verifier_why = _verifier(first.primary, analysis, options, registry)
    escalations, used = [], {first.primary.id}
    for situation in ("default", TIER1):
        step = route(situation)
        if step.primary.id not in used:
            escalations.append(Role("escalation", step.chain))
            used.add(step.primary.id)
    steps = " then ".join(r.model.id for r in escalations) or "nothing (no stronger model is available here)"
    why = f"cascade: {first.primary.id} drafts, {verifier_why}; below the threshold it escalates to {steps}"
    return Plan(strategy, first, (Role("draft", first.chain), Role("verifier", verifier), *escalations), (why,))


def family(model: ModelConfig) -> str:
    """The vendor behind a model: the provider, or the vendor segment of an aggregator's id
    (`openrouter/anthropic/claude-…` is Anthropic's)."""
    parts = model.id.split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def _verifier(
    draft: ModelConfig, analysis: TaskAnalysis, options: RouteOptions, registry: Registry
) -> tuple[tuple[ModelConfig, ...], str]:
    """The verifier's chain (cheapest first) and the reason for it."""
    need = analysis.estimated_input_tokens + 2 * analysis.estimated_output_tokens
    candidates = [
        m
        for m in registry.models
        if m.tier in (2, 3)
        and not m.reasoning_model
        and family(m) != family(draft)
        and m.context_window >= need
        and registry.is_available(m)
        and (registry.is_self_hosted(m) or not options.self_hosted_only)
        and registry.price_rank(m) != float("inf")
    ]
    candidates.sort(key=lambda m: (registry.price_rank(m), -registry.capability(m, analysis.category.value)))
    chain = tuple(candidates[: 1 + registry.config.routing.max_fallbacks])
    if not chain:
        return (
            (draft,),
            f"{draft.id} verifies its own draft with a grading prompt (no cheap model of another family is "
            "available here)",
        )
    return (*chain, draft), f"{chain[0].id} verifies (a cheap model of another family than the draft's)"
