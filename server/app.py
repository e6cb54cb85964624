"""The host MCP server: tools, resources and the instructions the calling model reads.

`build_server(router)` wires an `MCPServer` around an already-loaded `Router`; nothing happens at import.
Every anticipated failure reaches the caller as a `ToolError` whose text says what to do next.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from server import __version__
from server.errors import RouterError
from server.routing import MAX_TASK_CHARS, Router, RouteResult, model_rows
from server.selection import Preference, RouteOptions

log = logging.getLogger("model_router")

INSTRUCTIONS = """\
model-router sends LLM work to the smallest model that can do it well, and accounts for the cost.
- route_task: ask which model should do a task, why, with which fallbacks and at what estimated cost.
  Read-only: nothing is sent to any model.
- Resource router://models lists every model with tier, prices (USD per 1M tokens), context window,
  tool support and whether it is callable here.
Prefer cost_preference "balanced"; use "cheapest" for bulk or low-stakes work and "best_quality" when a
wrong answer is expensive. Set self_hosted_only when the task's data must not leave the user's machines.
"""

TaskArg = Annotated[
    str,
    Field(
        description="The task to route, as you would give it to a model (instructions plus any input text).",
        min_length=1,
        max_length=MAX_TASK_CHARS,
    ),
]
PreferenceArg = Annotated[
    Literal["cheapest", "balanced", "best_quality"],
    Field(description="Cost versus quality trade-off: cheapest, balanced (default) or best_quality."),
]
SelfHostedArg = Annotated[
    bool,
    Field(description="Guarantee: only models on self-hosted providers, no cloud model anywhere in the chain."),
]
ForceModelArg = Annotated[
    str | None,
    Field(
        description="Skip selection and use this model id (provider/model, see router://models).",
        max_length=200,
    ),
]


def build_server(router: Router) -> MCPServer:
    """An MCPServer exposing the router's tools and resources."""
    mcp = MCPServer(name="model-router", instructions=INSTRUCTIONS, version=__version__)

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Route a task", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    def route_task(
        task: TaskArg,
        cost_preference: PreferenceArg = "balanced",
        self_hosted_only: SelfHostedArg = False,
        force_model: ForceModelArg = None,
    ) -> RouteResult:
        """Say which model should do a task, why, its fallbacks and the estimated cost. Sends nothing to any model."""
        options = RouteOptions(
            preference=Preference(cost_preference),
            self_hosted_only=self_hosted_only,
            force_model=force_model or None,
        )
        try:
            result = router.route(task, options)
        except RouterError as exc:
            raise ToolError(str(exc)) from exc
        log.info("route %s -> %s (%s)", result.category, result.primary_model, result.situation)
        return result

    @mcp.resource(
        "router://models",
        name="models",
        description="Every model in the registry: tier, prices per 1M tokens, context window, availability.",
        mime_type="application/json",
    )
    def models_resource() -> str:
        return json.dumps(model_rows(router.registry), indent=1)

    return mcp
