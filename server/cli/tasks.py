"""`model-router route` and `complete`: say which model should do a task, or run it there."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from server.cli.common import load_router, route_options, run_with_analyzer


def add_parsers(sub: Any) -> None:
    route = sub.add_parser(
        "route", help="say which model should do a task", description="Analyse a task and print its route."
    )
    route.add_argument("task", help="the task text, or - to read it from stdin")
    route_options(route)
    route.add_argument(
        "--role",
        choices=["orchestrator", "worker", "evaluator", "classifier", "summariser"],
        help="pick the model for one role of an agent pattern (orchestrator/evaluator: tier 1, worker: tier 2, "
        "classifier/summariser: tier 4)",
    )
    route.add_argument("--json", action="store_true", help="print the route as JSON")
    route.set_defaults(run=run_route)

    complete = sub.add_parser(
        "complete",
        help="route a task, run it on the chosen model, print the answer",
        description="Route a task, send it to the chosen model (falling back when one fails) and print the "
        "answer with the model used, tokens and cost.",
    )
    complete.add_argument("task", help="the task text, or - to read it from stdin")
    route_options(complete)
    complete.add_argument("--session-id", help="continue (or start) this conversation")
    complete.add_argument("--system", help="system prompt (default: one suited to the task's category)")
    complete.add_argument("--max-tokens", type=int, default=4096, help="upper bound on the answer (default 4096)")
    complete.add_argument("--no-tools", action="store_true", help="do not offer tools to the model")
    complete.add_argument(
        "--strategy",
        choices=["single", "cascade", "evaluate_optimise"],
        default="single",
        help="single: one routed model (default); cascade: cheap draft, graded, escalated below the threshold; "
        "evaluate_optimise: a generator revises on an evaluator's feedback ([strategies] in the config)",
    )
    complete.add_argument("--json", action="store_true", help="print the full result as JSON")
    complete.set_defaults(run=run_complete)


def run_route(args: argparse.Namespace) -> int:
    from server.routing.roles import Role
    from server.routing.selector import Preference, RouteOptions

    task = sys.stdin.read() if args.task == "-" else args.task
    options = RouteOptions(
        preference=Preference(args.preference),
        self_hosted_only=args.self_hosted_only,
        force_model=args.force_model,
        role=Role(args.role) if args.role else None,
    )
    router = load_router(args)
    result = run_with_analyzer(router, lambda: router.route(task, options))
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    cost = "unpriced" if result.estimated_cost_usd is None else f"${result.estimated_cost_usd:.6f}"
    print(f"primary:    {result.primary_model}  (estimated cost {cost})")
    print(f"fallbacks:  {', '.join(result.fallback_models) or '(none)'}")
    if result.critical:
        print(f"critical:   {'; '.join(result.critical_actions)} (complete asks a human first)")
    print(
        f"analysis:   {result.category}, complexity {result.complexity}, strong_score {result.strong_score:.2f}, "
        f"~{result.estimated_input_tokens} in / ~{result.estimated_output_tokens} out tokens"
    )
    kinds = f" (tool need: {', '.join(result.tool_kinds)})" if result.tool_kinds else ""
    print(f"tools:      {', '.join(result.tools_offered) or '(none)'}{kinds}")
    for reason in result.reasons:
        print(f"  - {reason}")
    return 0


def run_complete(args: argparse.Namespace) -> int:
    import anyio

    from server.execution.completion import CompleteRequest
    from server.execution.runtime import open_runtime
    from server.routing.selector import TOOLS_DROPPED, Preference, RouteOptions

    task = sys.stdin.read() if args.task == "-" else args.task
    request = CompleteRequest(
        task=task,
        options=RouteOptions(
            preference=Preference(args.preference),
            self_hosted_only=args.self_hosted_only,
            force_model=args.force_model,
        ),
        session_id=args.session_id,
        system=args.system,
        max_tokens=args.max_tokens,
        enable_tools=not args.no_tools,
        strategy=args.strategy,
    )
    router = load_router(args)

    async def progress(message: str) -> None:
        if not args.json:
            print(f"... {message}", file=sys.stderr)

    async def run() -> Any:
        async with open_runtime(router, os.environ, eager_tools=False) as runtime:
            return await runtime.completion.complete(request, progress)

    result = anyio.run(run)
    for reason in result.route.reasons:
        if reason.startswith(TOOLS_DROPPED):
            print(f"note: {reason}", file=sys.stderr)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(result.response)
    cost = "unpriced" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    print(
        f"\n[{result.model_used} · {result.input_tokens} in / {result.output_tokens} out tokens · {cost} · "
        f"{result.latency_ms / 1000:.1f}s · {len(result.attempts)} attempt(s)]",
        file=sys.stderr,
    )
    plan = result.strategy
    if plan.strategy != "single":
        verdict = "accepted" if plan.accepted else f"not accepted ({plan.stopped_by})"
        print(f"[{plan.strategy}: {plan.rounds} answer(s), {verdict}]", file=sys.stderr)
    return 0
