"""Analyse + select: the decision that `route_task`, `complete` and the CLI share.

`Router` holds the loaded registry and the analyser chosen by the config; `decide` validates the task,
analyses it and calls the pure selector. `RouteResult` is the structured form every surface returns.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.analysis.analyzers import Analyzer, load_analyzer
from server.domain.config import ModelConfig
from server.domain.registry import Registry
from server.domain.tasks import TaskAnalysis
from server.errors import InvalidTask
from server.routing.selector import Preference, Route, RouteOptions, select_route

# ~250k tokens: above this a task is refused rather than analysed (MCP hosts are not file transfer).
MAX_TASK_CHARS = 1_000_000


class RouteResult(BaseModel):
    """Which model should do a task, why, with which fallbacks and at what estimated cost."""

    category: str = Field(description="Task category (one of the eight of the taxonomy)")
    complexity: int = Field(description="1 (trivial) to 5 (extremely complex)")
    strong_score: float = Field(description="0-1: how likely the task needs a frontier model")
    estimated_input_tokens: int
    estimated_output_tokens: int
    requires_tools: bool
    tool_kinds: list[str] = Field(description="Tool kinds the task asks for: code, search, fetch, memory")
    tools_offered: list[str] = Field(
        description="Tools `complete` offers the model for it (unless enable_tools is off)"
    )
    requires_long_context: bool
    primary_model: str = Field(description="Model id (provider/model) that would do the task")
    provider: str
    fallback_models: list[str] = Field(description="Tried in order if the primary fails")
    estimated_cost_usd: float | None = Field(description="On the primary model; null when it has no price")
    cost_preference: str
    threshold: float | None = Field(description="strong_score threshold the preference used")
    situation: str = Field(description="Decision-matrix column that applied")
    preferred_model: str = Field(description="The matrix's first choice before availability was applied")
    analyzer: str
    reasons: list[str]
    critical: bool = Field(
        default=False, description="The task asks for an action hard to undo; complete asks the human first"
    )
    critical_actions: list[str] = Field(default_factory=list, description="The task's requests that made it critical")
    role: str | None = Field(default=None, description="The agent-pattern role the model was chosen for, if any")


class Router:
    """The loaded registry plus the configured analyser."""

    def __init__(self, registry: Registry, analyzer: Analyzer | None = None) -> None:
        self.registry = registry
        self.analyzer: Analyzer = analyzer or load_analyzer(registry.config)

    @property
    def analyzer_version(self) -> str:
        return self.analyzer.version

    async def decide(self, task: str, options: RouteOptions, history_tokens: int = 0) -> tuple[TaskAnalysis, Route]:
        """Validate, analyse and select; raises `InvalidTask` or `RoutingError` with a fix in the message."""
        text = validate_task(task)
        analysis = await self.analyzer.analyze(text, history_tokens)
        return analysis, select_route(analysis, options, self.registry, self.analyzer.thresholds)

    async def route(self, task: str, options: RouteOptions) -> RouteResult:
        analysis, route = await self.decide(task, options)
        return to_result(analysis, route, options.preference)


def validate_task(task: object) -> str:
    if not isinstance(task, str):
        raise InvalidTask(f"task must be a string, got {type(task).__name__}")
    if not task.strip():
        raise InvalidTask("task is empty: pass the text of the task to route")
    if len(task) > MAX_TASK_CHARS:
        raise InvalidTask(
            f"task is {len(task):,} characters; the limit is {MAX_TASK_CHARS:,}. Send a shorter excerpt "
            "or split the document into parts"
        )
    return task


def to_result(analysis: TaskAnalysis, route: Route, preference: Preference) -> RouteResult:
    primary: ModelConfig = route.primary
    return RouteResult(
        category=analysis.category.value,
        complexity=analysis.complexity,
        strong_score=round(analysis.strong_score, 4),
        estimated_input_tokens=analysis.estimated_input_tokens,
        estimated_output_tokens=route.estimated_output_tokens,
        requires_tools=analysis.requires_tools,
        tool_kinds=list(analysis.tool_kinds),
        tools_offered=list(analysis.tools_offered),
        requires_long_context=analysis.requires_long_context,
        primary_model=primary.id,
        provider=primary.provider,
        fallback_models=[m.id for m in route.fallbacks],
        estimated_cost_usd=route.estimated_cost_usd,
        cost_preference=preference.value,
        threshold=route.threshold,
        situation=route.situation,
        preferred_model=route.preferred_model,
        analyzer=analysis.analyzer,
        reasons=[*analysis.reasons, *_critical_reasons(analysis), *route.reasons],
        critical=analysis.critical,
        critical_actions=list(analysis.critical_actions),
        role=None if route.role is None else route.role.value,
    )


def _critical_reasons(analysis: TaskAnalysis) -> list[str]:
    if not analysis.critical:
        return []
    asked = "; ".join(f'"{action}"' for action in analysis.critical_actions)
    return [f"critical: the task asks for an action that is hard to undo ({asked}); complete asks the human first"]


def model_rows(registry: Registry) -> list[dict[str, object]]:
    """The registry as plain rows, for `model-router models` and the `router://models` resource."""
    rows = []
    for model in registry.config.models:
        availability = registry.availability(model)
        rows.append(
            {
                "id": model.id,
                "display_name": model.display_name,
                "provider": model.provider,
                "api_model_id": model.api_model_id,
                "tier": model.tier,
                "self_hosted": registry.is_self_hosted(model),
                "open_weights": model.open_weights,
                "input_price_per_million": model.input_price,
                "cached_input_price_per_million": model.cached_input_price,
                "cache_write_price_per_million": model.cache_write_price,
                "output_price_per_million": model.output_price,
                "long_context_price_from_tokens": model.long_context_from,
                "price_source": model.price_source,
                "prices_as_of": registry.config.prices_as_of if "genai-prices" in (model.price_source or "") else None,
                "context_window": model.context_window,
                "max_output_tokens": model.max_output_tokens,
                "supports_tools": model.supports_tools,
                "supports_vision": model.supports_vision,
                "reasoning_model": model.reasoning_model,
                "release_date": model.release_date,
                "enabled": model.enabled,
                "available": availability.available,
                "availability": availability.detail,
                "aliases": list(model.aliases),
            }
        )
    return rows


def filter_rows(
    rows: list[dict[str, object]], *, provider: str | None = None, search: str | None = None, available: bool = False
) -> list[dict[str, object]]:
    """The rows of one provider, whose id, name, alias or strength contains `search`, callable here if asked."""
    needle = (search or "").lower()

    def keep(row: dict[str, object]) -> bool:
        if provider and row["provider"] != provider:
            return False
        if available and not row["available"]:
            return False
        aliases = row["aliases"] if isinstance(row["aliases"], list) else []
        text = " ".join(str(v) for v in (row["id"], row["display_name"], row["api_model_id"], *aliases))
        return needle in text.lower()

    return [row for row in rows if keep(row)]
