"""The host MCP server: tools, resources and the instructions the calling model reads.

`build_server(router)` wires an `MCPServer` around an already-loaded `Router`; nothing happens at import.
Every anticipated failure reaches the caller as a `ToolError` whose text says what to do next.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Annotated, Any, Literal, cast

from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from server import __version__
from server.accounting.report import CostReport, GroupBy, ReportQuery, parse_time
from server.errors import RouterError
from server.execution.completion import (
    MAX_OUTPUT_TOKENS,
    MAX_SYSTEM_CHARS,
    CompleteRequest,
    CompleteResult,
    logged_options,
    logged_route,
)
from server.execution.confirmation import HumanAnswer, Verdict
from server.execution.runtime import Runtime, open_runtime
from server.routing.roles import Role
from server.routing.router import MAX_TASK_CHARS, Router, RouteResult, filter_rows, model_rows
from server.routing.selector import Preference, RouteOptions
from tool_servers._strict_args import strict_arguments

log = logging.getLogger("model_router")

# From this protocol revision on, a tool call's elicitation rides an input-required result (SDK: resolve.py).
INPUT_REQUIRED_VERSION = "2026-07-28"

INSTRUCTIONS = """\
model-router sends LLM work to the smallest model that can do it well, and accounts for the cost.
- route_task: ask which model should do a task, why, with which fallbacks and at what estimated cost.
  Read-only: nothing is sent to any model.
- complete: hand a self-contained sub-task to the router; it picks the model, runs it (with web search,
  code execution and memory tools where the task needs them), falls back when a provider fails, and
  returns the answer with the model used, tokens and cost. Pass session_id to continue a conversation.
  strategy="cascade" lets a cheap model answer first and escalates only when a grader rejects the answer;
  strategy="evaluate_optimise" has a stronger model critique a cheaper one's answer for a few rounds.
- cost_report: read-only; what was spent (by model, provider, category, session or day), budgets left,
  and the savings against always using the baseline frontier model on the same tokens.
- Resource router://models lists every model with tier, prices (USD per 1M tokens) with their source
  and date, context window, tool support and whether it is callable here; router://models?provider=groq,
  ?search=TEXT or ?available=true narrow it.
Prefer cost_preference "balanced"; use "cheapest" for bulk or low-stakes work and "best_quality" when a
wrong answer is expensive. Set self_hosted_only when the task's data must not leave the user's machines.
- route_task's role (orchestrator, worker, evaluator, classifier, summariser) picks the model for that role
  when you run an agent pattern yourself.
- A critical task (deleting production data, moving money, changing credentials, deploying to production)
  or a call above the configured cost threshold is confirmed by the user before complete runs it; if they
  decline, complete returns an error saying so and nothing is sent: do not retry unless they ask.
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
RoleArg = Annotated[
    Literal["orchestrator", "worker", "evaluator", "classifier", "summariser"] | None,
    Field(
        description="Pick the model for one role of an agent pattern you run yourself: orchestrator or evaluator "
        "(tier 1), worker (tier 2), classifier or summariser (tier 4). Omit for the task as a whole."
    ),
]


class Approval(BaseModel):
    """The confirmation form: nothing to fill in, accepting it is the yes."""


SessionArg = Annotated[
    str | None,
    Field(
        description="Conversation id (letters, digits, . _ : -; up to 128). The same id continues a conversation.",
        max_length=128,
    ),
]
SystemArg = Annotated[
    str | None,
    Field(
        description="Optional system prompt; by default one suited to the task's category.", max_length=MAX_SYSTEM_CHARS
    ),
]
MaxTokensArg = Annotated[int, Field(description="Upper bound on the answer's tokens.", ge=1, le=MAX_OUTPUT_TOKENS)]
EnableToolsArg = Annotated[bool, Field(description="Offer web search, code execution and memory tools when useful.")]
StrategyArg = Annotated[
    Literal["single", "cascade", "evaluate_optimise"],
    Field(
        description="single (default): one routed model. cascade: the cheap model answers, a cheap model of "
        "another family grades it, and below [strategies] cascade_threshold the task escalates to the "
        "category's default model, then a tier-1 model. evaluate_optimise: a cheaper generator revises its "
        "answer on a stronger evaluator's feedback until accepted or [strategies] max_rounds."
    ),
]


async def confirmation_question(
    task: str,
    session_id: str | None,
    system: str | None,
    cost_preference: str,
    self_hosted_only: bool,
    force_model: str | None,
    max_tokens: int,
    enable_tools: bool,
    strategy: str,
    ctx: Context,
) -> str | None:
    """What the human must confirm before `complete` runs (routes only: nothing is sent), or None."""
    runtime = cast(Runtime, ctx.request_context.lifespan_context)
    request = _complete_request(
        task, session_id, system, cost_preference, self_hosted_only, force_model, max_tokens, enable_tools, strategy
    )
    with errors_for_caller("complete"):
        confirmation = await runtime.completion.confirmation_for(request)
    return None if confirmation is None else confirmation.question


async def ask_human(
    question: Annotated[str | None, Resolve(confirmation_question)], ctx: Context
) -> Elicit[Approval] | None:
    """Ask through MCP elicitation when there is a question and the client can show it. The SDK sends it
    as an `elicitation/create` request mid-call, or (protocol 2026-07-28) as an input-required result
    the client answers by calling again; either way before the tool body, so before any paid call."""
    if question is None or not _can_elicit(ctx):
        return None  # complete applies [safety] allow_unattended_critical, or refuses saying how to allow
    return Elicit(question, Approval)


def _complete_request(
    task: str,
    session_id: str | None,
    system: str | None,
    cost_preference: str,
    self_hosted_only: bool,
    force_model: str | None,
    max_tokens: int,
    enable_tools: bool,
    strategy: str,
) -> CompleteRequest:
    options = RouteOptions(
        preference=Preference(cost_preference), self_hosted_only=self_hosted_only, force_model=force_model or None
    )
    return CompleteRequest(
        task=task, options=options, session_id=session_id, system=system, max_tokens=max_tokens,
        enable_tools=enable_tools, strategy=strategy,
    )  # fmt: skip


def _can_elicit(ctx: Context) -> bool:
    """Whether the client declared form elicitation (a bare `elicitation: {}` predates modes and means form) and
    the question can reach it: as an input-required result (protocol 2026-07-28 on), or as a request over a
    connection that carries server requests (not a JSON-response-only HTTP one)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    return (version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)) or bool(
        ctx.session.can_send_request
    )


def _human_answer(question: str | None, answer: ElicitationResult[Approval]) -> HumanAnswer | None:
    """The user's answer to `question`, or None when nobody was asked."""
    if question is None:
        return None
    if isinstance(answer, AcceptedElicitation):
        return HumanAnswer(question, Verdict.ACCEPTED) if isinstance(answer.data, Approval) else None
    verdict = Verdict.DECLINED if isinstance(answer, DeclinedElicitation) else Verdict.CANCELLED
    return HumanAnswer(question, verdict)


@contextmanager
def errors_for_caller(tool: str) -> Iterator[None]:
    """Every failure reaches the MCP caller as a `ToolError` it can read, never a bare "Error executing tool".

    A `RouterError` carries its own advice; anything else is a bug: its traceback goes to the log (stderr)
    and the caller learns what kind of failure it was and where to look.
    """
    try:
        yield
    except ToolError:
        raise
    except RouterError as exc:
        raise ToolError(str(exc)) from exc
    except Exception as exc:
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"{tool} failed with an internal error ({type(exc).__name__}: {str(exc)[:200]}); "
            "the server's log (stderr) has the details. Please report it."
        ) from exc


RuntimeFactory = Callable[[Router], AbstractAsyncContextManager[Runtime]]


def build_server(
    router: Router,
    env: Mapping[str, str] | None = None,
    runtime_factory: RuntimeFactory | None = None,
) -> MCPServer:
    """An MCPServer exposing the router's tools; the runtime (database, providers) lives in its lifespan."""
    environment = os.environ if env is None else env

    def default_factory(r: Router) -> AbstractAsyncContextManager[Runtime]:
        return open_runtime(r, environment)

    factory = runtime_factory or default_factory

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Runtime]:
        async with factory(router) as runtime:
            yield runtime

    mcp: MCPServer = MCPServer(
        name="model-router",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=cast(Any, logging.getLevelName(logging.getLogger().getEffectiveLevel())),  # the CLI's --log-level
    )

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Route a task", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    async def route_task(
        task: TaskArg,
        ctx: Context,
        cost_preference: PreferenceArg = "balanced",
        self_hosted_only: SelfHostedArg = False,
        force_model: ForceModelArg = None,
        role: RoleArg = None,
    ) -> RouteResult:
        """Say which model should do a task (or one role of it), why, its fallbacks and the estimated cost, and
        whether it is critical. Sends nothing to any model."""
        options = RouteOptions(
            preference=Preference(cost_preference),
            self_hosted_only=self_hosted_only,
            force_model=force_model or None,
            role=None if role is None else Role(role),
        )
        with errors_for_caller("route_task"):
            result = await router.route(task, options)
        runtime = cast(Runtime, ctx.request_context.lifespan_context)
        with errors_for_caller("route_task"):  # the audit row is committed before the answer goes out
            await runtime.decisions.record("route", task, logged_options(options), logged_route(result))
        log.info("route %s -> %s (%s)", result.category, result.primary_model, result.situation)
        return result

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Complete a task on the routed model",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        )
    )
    async def complete(
        task: TaskArg,
        ctx: Context,
        question: Annotated[str | None, Resolve(confirmation_question)],
        answer: Annotated[ElicitationResult[Approval], Resolve(ask_human)],
        session_id: SessionArg = None,
        system: SystemArg = None,
        cost_preference: PreferenceArg = "balanced",
        self_hosted_only: SelfHostedArg = False,
        force_model: ForceModelArg = None,
        max_tokens: MaxTokensArg = 4096,
        enable_tools: EnableToolsArg = True,
        strategy: StrategyArg = "single",
    ) -> CompleteResult:
        """Route the task to the smallest capable model, run it (with tools when useful), and return the answer,
        the route, every attempt, tokens and cost. A critical task, or one above the configured cost threshold,
        is first confirmed by the user; a declined one ends in an error and nothing is sent."""
        runtime = cast(Runtime, ctx.request_context.lifespan_context)
        request = _complete_request(
            task,
            session_id,
            system,
            cost_preference,
            self_hosted_only,
            force_model,
            max_tokens,
            enable_tools,
            strategy,
        )
        step = 0

        async def progress(message: str) -> None:
            nonlocal step
            step += 1
            await ctx.report_progress(step, None, message)

        human = _human_answer(question, answer)
        if human is not None:
            log.info("complete: the user's confirmation: %s", human.verdict.value)
        with errors_for_caller("complete"):
            result = await runtime.completion.complete(request, progress, human)
        log.info("complete %s -> %s cost=%s", result.route.category, result.model_used, result.cost_usd)
        return result

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Cost report", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    async def cost_report(
        ctx: Context,
        since: Annotated[
            str | None,
            Field(description="Start: ISO date/time (UTC) or a span back from now like 7d, 24h.", max_length=40),
        ] = None,
        until: Annotated[str | None, Field(description="End (exclusive), same forms as since.", max_length=40)] = None,
        group_by: Annotated[GroupBy, Field(description="model | provider | category | session | day")] = "model",
        session_id: SessionArg = None,
    ) -> CostReport:
        """What was spent and on what, budgets left, and what routing saved against the baseline model."""
        runtime = cast(Runtime, ctx.request_context.lifespan_context)
        with errors_for_caller("cost_report"):
            query = ReportQuery(
                since=parse_time(since), until=parse_time(until), group_by=group_by, session_id=session_id
            )
            return await runtime.reports.build(query)

    @mcp.resource(
        "router://models",
        name="models",
        description="Every model in the registry: tier, prices per 1M tokens, context window, availability.",
        mime_type="application/json",
    )
    def models_resource() -> str:
        return json.dumps(model_rows(router.registry), indent=1)

    @mcp.resource(
        "router://models{?provider,search,available}",
        name="models_filtered",
        description="The registry's models of one provider, matching a search text, or only those callable here.",
        mime_type="application/json",
    )
    def models_filtered(provider: str = "", search: str = "", available: str = "") -> str:
        rows = filter_rows(
            model_rows(router.registry),
            provider=provider or None,
            search=search or None,
            available=available.lower() in ("1", "true", "yes"),
        )
        return json.dumps(rows, indent=1)

    return strict_arguments(mcp)  # no coercion, no unknown arguments: see tool_servers/_strict_args.py
