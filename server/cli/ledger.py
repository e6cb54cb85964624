"""`model-router report` and `decisions`: what was spent, and how each task was routed, from the ledger."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from server.cli.common import load_router
from server.errors import RouterError


def add_parsers(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="what was spent, budgets left, savings",
        description="Totals and groups from the ledger, budgets with spent/remaining, savings against the "
        "baseline model on the same tokens, unpriced calls and the router's token-estimate accuracy.",
    )
    report.add_argument("--since", help="ISO date/time (UTC) or a span like 7d, 24h")
    report.add_argument("--until", help="end (exclusive), same forms as --since")
    report.add_argument(
        "--group-by", choices=["model", "provider", "category", "session", "day"], default="model", help="grouping"
    )
    report.add_argument("--session-id", help="only this session")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(run=run_report)

    decisions = sub.add_parser(
        "decisions",
        help="list logged routing decisions",
        description="The latest route_task and complete decisions, with the analyser version, config "
        "fingerprint and price table version they were made under, and a SHA-256 of the task.",
    )
    decisions.add_argument("--last", type=int, default=20, help="how many (default 20)")
    decisions.add_argument("--json", action="store_true", help="print JSON")
    decisions.set_defaults(run=run_decisions)


def run_report(args: argparse.Namespace) -> int:
    import anyio

    from server.accounting.report import ReportQuery, parse_time
    from server.execution.runtime import open_runtime
    from server.tools.toolbox import NoTools

    try:
        query = ReportQuery(parse_time(args.since), parse_time(args.until), args.group_by, args.session_id)
    except ValueError as exc:
        raise RouterError(str(exc)) from None
    router = load_router(args)

    async def run() -> Any:
        async with open_runtime(router, os.environ, toolbox=NoTools()) as runtime:
            return await runtime.reports.build(query)

    report = anyio.run(run)
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    _print_report(report)
    return 0


def _print_report(report: Any) -> None:
    t = report.totals
    print(f"calls {t.calls}, attempts {t.attempts}, failures {t.failures}, cost ${t.cost_usd:.6f}")
    print(
        f"tokens: {t.tokens.input} in ({t.tokens.cached_input} cached), {t.tokens.output} out "
        f"({t.tokens.reasoning} reasoning)"
    )
    s = report.savings
    pct = "n/a" if s.saved_pct is None else f"{s.saved_pct:.1f}%"
    print(f"savings vs {s.baseline_model}: ${s.saved_usd:.6f} ({pct}; baseline ${s.baseline_cost_usd:.6f})")
    if report.tier1_share is not None:
        print(f"calls answered by tier-1 models: {report.tier1_share:.1%}")
    print(f"\nby {report.group_by}:")
    for g in report.groups:
        print(f"  {g.key:32} calls {g.calls:>6} attempts {g.attempts:>6} failures {g.failures:>4} ${g.cost_usd:.6f}")
    for b in report.budgets:
        print(f"budget {b.name}: ${b.spent_usd:.6f} of ${b.limit_usd:.2f} spent, ${b.remaining_usd:.6f} left")
    for u in report.unpriced:
        print(f"unpriced: {u.model}: {u.attempts} attempts, {u.input_tokens} in / {u.output_tokens} out tokens")
    for line in report.strategies:
        if line.strategy == "cascade":
            rate = "n/a" if line.escalation_rate is None else f"{line.escalation_rate:.0%}"
            saved = "n/a" if line.saved_usd is None else f"${line.saved_usd:.6f}"
            print(f"cascade {line.category}: {line.tasks} tasks, {rate} escalated, ${line.cost_usd:.6f} "
                  f"(always-strong ${line.always_strong_usd or 0:.6f}, saved {saved})")  # fmt: skip
        else:
            print(f"evaluate_optimise {line.category}: {line.tasks} tasks, {line.mean_rounds or 0:.1f} rounds "
                  f"per task, ${line.cost_usd:.6f}")  # fmt: skip


def run_decisions(args: argparse.Namespace) -> int:
    import anyio

    from server.domain.config import fingerprint
    from server.store import open_store

    router = load_router(args)
    config = router.registry.config

    async def run() -> Any:
        store = await open_store(config.data_dir, config.store.url or None)
        try:
            log = store.decisions(analyzer_version=router.analyzer_version, config_fingerprint=fingerprint(config),
                                  price_table_version=config.price_table_version)  # fmt: skip
            return await log.latest(max(1, args.last))
        finally:
            await store.aclose()

    rows = anyio.run(run)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in reversed(rows):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        print(
            f"{when} {row['kind']:8} {row['category']:17} -> {row['primary_model']:28} "
            f"task {row['task_sha256'][:12]} analyzer {row['analyzer_version']} config {row['config_fingerprint']}"
        )
    return 0
