"""The `model-router` command line: serve the MCP server, route, list models, analyse files.

Every command loads the configuration once (`--config` or `$MODEL_ROUTER_CONFIG` over the shipped
defaults). Data goes to stdout (`--json` where it is data); diagnostics and errors go to stderr with a
non-zero exit code and a message saying what to fix — never a traceback for an anticipated problem.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server import __version__
from server.errors import RouterError
from server.logs import configure_logging

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-router",
        description="An MCP server that sends each LLM task to the smallest model that can do it well.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file (default: $MODEL_ROUTER_CONFIG)")
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the MCP server",
        description="Run the MCP server over stdio (for one host) or streamable HTTP at /mcp (a shared service; "
        "set MODEL_ROUTER_TOKEN to require 'Authorization: Bearer <token>').",
    )
    serve.add_argument(
        "--transport", choices=["stdio", "streamable-http"], default="stdio", help="MCP transport (default stdio)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")

    route = sub.add_parser(
        "route", help="say which model should do a task", description="Analyse a task and print its route."
    )
    route.add_argument("task", help="the task text, or - to read it from stdin")
    _route_options(route)
    route.add_argument("--json", action="store_true", help="print the route as JSON")

    complete = sub.add_parser(
        "complete",
        help="route a task, run it on the chosen model, print the answer",
        description="Route a task, send it to the chosen model (falling back when one fails) and print the "
        "answer with the model used, tokens and cost.",
    )
    complete.add_argument("task", help="the task text, or - to read it from stdin")
    _route_options(complete)
    complete.add_argument("--session-id", help="continue (or start) this conversation")
    complete.add_argument("--system", help="system prompt (default: one suited to the task's category)")
    complete.add_argument("--max-tokens", type=int, default=4096, help="upper bound on the answer (default 4096)")
    complete.add_argument("--no-tools", action="store_true", help="do not offer tools to the model")
    complete.add_argument("--json", action="store_true", help="print the full result as JSON")

    models = sub.add_parser("models", help="list the model registry", description="List every model.")
    models.add_argument("--json", action="store_true", help="print a JSON list")

    analyze = sub.add_parser(
        "analyze",
        help="analyse a JSONL file of prompts",
        description="For each input line with `id` and `prompt`, write one JSON line with id, category, "
        "complexity, strong_score and token estimates.",
    )
    analyze.add_argument("input", type=Path, help="input JSONL file (- for stdin)")
    analyze.add_argument("--out", type=Path, help="output JSONL file (default stdout)")
    _analyzer_options(analyze)

    evaluate = sub.add_parser(
        "eval",
        help="measure the analyser on a labelled JSONL file",
        description="Lines with {id, prompt, category}: accuracy, macro-F1 and the confusion matrix of the "
        "analyser's category. Lines with {id, prompt, scores: {strong, weak}} (and optional source): APGR, "
        "CPT(50%%) and CPT(80%%) of strong_score per source prefix (before '/'), beside the random and "
        "prompt-length baselines. APGR 0.5 is random routing; CPT is the share of strong calls needed.",
    )
    evaluate.add_argument("input", type=Path, help="labelled JSONL file")
    _analyzer_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    train = sub.add_parser(
        "train",
        help="fit the learned router on labelled outcomes",
        description="Fit the learned router from a JSONL file of {prompt, category} and/or {prompt, scores: "
        "{strong, weak}} lines and store it (default: learned_router.json.gz in the data dir, or "
        '[routing] learned_model). Set [routing] analyzer = "learned" to use it.',
    )
    train.add_argument("input", type=Path, help="labelled JSONL file")
    train.add_argument("--out", type=Path, help="where to write the model")
    train.add_argument("--epochs", type=int, default=6, help="SGD passes over the data (default 6)")
    train.add_argument("--json", action="store_true", help="print the training summary as JSON")
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

    decisions = sub.add_parser(
        "decisions",
        help="list logged routing decisions",
        description="The latest route_task and complete decisions, with the analyser version, config "
        "fingerprint and price table version they were made under, and a SHA-256 of the task.",
    )
    decisions.add_argument("--last", type=int, default=20, help="how many (default 20)")
    decisions.add_argument("--json", action="store_true", help="print JSON")

    doctor = sub.add_parser(
        "doctor",
        help="check the installation and say how to fix what is broken",
        description="Check the config, data dir, each provider (key present, never its value; local endpoints "
        "reachable), the embedded model (installed, and a 4-token test generation in a separate process, which "
        "finds a llama.cpp build that crashes on this CPU), the configured analyser, and each tool sub-server. "
        "Exit code 1 when something the config needs is broken.",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument(
        "--no-generate", action="store_true", help="skip the embedded model's test generation (a few seconds)"
    )

    claude = sub.add_parser(
        "claude-config",
        help="print or install the Claude Desktop entry",
        description="Print a ready mcpServers entry for Claude Desktop (absolute command path, env placeholders "
        "for the keys in use), or merge it into claude_desktop_config.json with --install (keeps every other "
        "entry, writes a backup first, refuses a file it cannot parse).",
    )
    claude.add_argument("--install", action="store_true", help="merge the entry into the config file")
    claude.add_argument("--config-file", type=Path, help="Claude Desktop config file (default: the platform's)")
    return parser


def _analyzer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--analyzer", metavar="NAME", help="local | learned | llm:<model id> (default: [routing] analyzer)"
    )
    parser.add_argument("--model", type=Path, metavar="PATH", help="learned model file (implies --analyzer learned)")


def _route_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preference",
        choices=["cheapest", "balanced", "best_quality"],
        default="balanced",
        help="cost versus quality trade-off (default balanced)",
    )
    parser.add_argument("--self-hosted-only", action="store_true", help="never use a cloud model")
    parser.add_argument("--force-model", metavar="ID", help="use this model id (see `model-router models`)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `model-router` console script."""
    args = _build_parser().parse_args(argv)
    configure_logging(args.log_level)
    # A native crash (llama.cpp, SQLite) ends the process with no Python error; this leaves the Python stack
    # of every thread on stderr, the log, so the report says which call it was.
    faulthandler.enable(file=sys.stderr)
    try:
        return _COMMANDS[args.command](args)
    except RouterError as exc:
        print(f"model-router: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _load_router(args: argparse.Namespace) -> Any:
    from server.domain.config import load_config
    from server.domain.registry import Registry
    from server.routing.router import Router

    config = load_config(args.config)
    analyzer = getattr(args, "analyzer", None)
    model = getattr(args, "model", None)
    if analyzer or model:
        chosen = "learned" if model else analyzer
        routing = config.routing.model_copy(
            update={"analyzer": chosen, "learned_model": str(model.resolve()) if model else ""}
        )
        config = config.model_copy(update={"routing": routing})
        if config.routing.analyzer not in ("local", "learned") and not config.routing.analyzer.startswith("llm:"):
            raise RouterError(f"--analyzer {analyzer!r}: use local, learned or llm:<model id>")
    return Router(Registry(config, os.environ))


def _run_with_analyzer(router: Any, work: Any) -> Any:
    """Run `work()` (a coroutine factory) in an event loop; an LLM analyser gets its provider connected."""
    import anyio

    from server.analysis.llm import LlmAnalyzer

    async def run() -> Any:
        if not isinstance(router.analyzer, LlmAnalyzer):
            return await work()
        from server.execution.runtime import open_runtime
        from server.tools.toolbox import NoTools

        async with open_runtime(router, os.environ, toolbox=NoTools()):
            return await work()

    return anyio.run(run)


def _cmd_serve(args: argparse.Namespace) -> int:
    from server.mcp.app import build_server

    server = build_server(_load_router(args))
    # Everything loaded so far (the SDK's types, the registry, the analyser's tables) lives as long as the
    # process: leaving it out of the cyclic collector turns its full collections (pauses of 50-80 ms, which
    # stalled every request in flight) into a few ms.
    gc.freeze()
    if args.transport == "stdio":
        server.run("stdio")  # the SDK's transport: fd 1 points at stderr while serving, stray prints miss the wire
        return 0
    from server.mcp.http_service import TOKEN_ENV, serve_http

    serve_http(server, host=args.host, port=args.port, token=os.environ.get(TOKEN_ENV) or None)
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from server.routing.selector import Preference, RouteOptions

    task = sys.stdin.read() if args.task == "-" else args.task
    options = RouteOptions(
        preference=Preference(args.preference),
        self_hosted_only=args.self_hosted_only,
        force_model=args.force_model,
    )
    router = _load_router(args)
    result = _run_with_analyzer(router, lambda: router.route(task, options))
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    cost = "unpriced" if result.estimated_cost_usd is None else f"${result.estimated_cost_usd:.6f}"
    print(f"primary:    {result.primary_model}  (estimated cost {cost})")
    print(f"fallbacks:  {', '.join(result.fallback_models) or '(none)'}")
    print(
        f"analysis:   {result.category}, complexity {result.complexity}, strong_score {result.strong_score:.2f}, "
        f"~{result.estimated_input_tokens} in / ~{result.estimated_output_tokens} out tokens"
    )
    for reason in result.reasons:
        print(f"  - {reason}")
    return 0


def _cmd_complete(args: argparse.Namespace) -> int:
    import anyio

    from server.execution.completion import CompleteRequest
    from server.execution.runtime import open_runtime
    from server.routing.selector import Preference, RouteOptions

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
    )
    router = _load_router(args)

    async def progress(message: str) -> None:
        if not args.json:
            print(f"... {message}", file=sys.stderr)

    async def run() -> Any:
        async with open_runtime(router, os.environ, eager_tools=False) as runtime:
            return await runtime.completion.complete(request, progress)

    result = anyio.run(run)
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
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from server.routing.router import model_rows

    rows = model_rows(_load_router(args).registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':32} {'tier':>4} {'in $/1M':>8} {'out $/1M':>9} {'context':>10} tools available")
    for row in rows:
        available = "yes" if row["available"] else f"no — {row['availability']}"
        print(
            f"{row['id']:32} {row['tier']:>4} {_price(row['input_price_per_million']):>8} "
            f"{_price(row['output_price_per_million']):>9} {row['context_window']:>10,} "
            f"{'yes' if row['supports_tools'] else 'no':>5} {available}"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import anyio

    from server.accounting.report import ReportQuery, parse_time
    from server.execution.runtime import open_runtime
    from server.tools.toolbox import NoTools

    try:
        query = ReportQuery(parse_time(args.since), parse_time(args.until), args.group_by, args.session_id)
    except ValueError as exc:
        raise RouterError(str(exc)) from None
    router = _load_router(args)

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


def _cmd_decisions(args: argparse.Namespace) -> int:
    import anyio

    from server.domain.config import fingerprint
    from server.store import open_database
    from server.store.decisions import DecisionLog

    router = _load_router(args)
    config = router.registry.config

    async def run() -> Any:
        db = open_database(config.data_dir)
        try:
            log = DecisionLog(db, analyzer_version=router.analyzer_version, config_fingerprint=fingerprint(config),
                              price_table_version=config.price_table_version)  # fmt: skip
            return await log.latest(max(1, args.last))
        finally:
            db.close()

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


def _cmd_doctor(args: argparse.Namespace) -> int:
    from server.cli.doctor import checks_json, describe, exit_code, run_doctor

    checks = run_doctor(args.config, generate=not args.no_generate)
    if args.json:
        print(json.dumps(checks_json(checks), indent=2))
    else:
        for check in checks:
            print(describe(check))
    return exit_code(checks)


def _cmd_claude_config(args: argparse.Namespace) -> int:
    from server.cli.host_config import default_claude_config_path, install, server_entry
    from server.domain.config import load_config

    entry = server_entry(load_config(args.config), os.environ)
    if not args.install:
        print(json.dumps({"mcpServers": {"model-router": entry}}, indent=2))
        return 0
    path = args.config_file or default_claude_config_path()
    backup = install(path, entry)
    print(f"model-router: added 'model-router' to {path}" + (f" (backup: {backup})" if backup else ""), file=sys.stderr)
    missing = [k for k, v in entry["env"].items() if v.startswith("<")]
    if missing:
        print(f"model-router: replace the placeholders for {', '.join(missing)} with your keys", file=sys.stderr)
    return 0


def _price(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _cmd_analyze(args: argparse.Namespace) -> int:
    router = _load_router(args)
    source = sys.stdin if str(args.input) == "-" else _open_input(args.input)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout

    async def work() -> int:
        errors = 0
        with source, out if args.out else _NoClose(out) as sink:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    if not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
                        raise ValueError("'prompt' must be a non-empty string")
                    analysis = await router.analyzer.analyze(item["prompt"])
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    errors += 1
                    print(f"model-router: {args.input}:{number}: skipped: {_describe(exc)}", file=sys.stderr)
                    continue
                sink.write(json.dumps(_analysis_row(item.get("id"), analysis)) + "\n")
        return errors

    errors = _run_with_analyzer(router, work)
    return EXIT_FAILURE if errors else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from server.analysis.evaluate import evaluate, print_evaluation
    from server.analysis.metrics import load_labelled

    router = _load_router(args)
    data = load_labelled(args.input)
    result = _run_with_analyzer(router, lambda: evaluate(router.analyzer, data))
    result["file"] = str(args.input)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_evaluation(result)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import time as clock

    from server.analysis.analyzers import learned_model_path
    from server.analysis.learned import save, train
    from server.analysis.metrics import load_labelled

    router = _load_router(args)
    data = load_labelled(args.input)
    started = clock.perf_counter()
    model = train(data.categories, data.pairs, epochs=max(1, args.epochs))
    path = args.out or learned_model_path(router.registry.config)
    try:
        model = save(model, path)
    except OSError as exc:
        raise RouterError(f"cannot write the learned model to {path}: {exc.strerror or exc}; pass --out PATH") from None
    summary = {
        "path": str(path),
        "version": model.version,
        "bytes": path.stat().st_size,
        "seconds": round(clock.perf_counter() - started, 2),
        "category_rows": len(data.categories),
        "pair_rows": len(data.pairs),
        "categories": [c.value for c in model.classes],
        "thresholds": model.thresholds,
        "calibration": model.info.get("calibration", {}),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    parts = [p for p, on in (("category", model.has_categories), ("strong_score", model.has_strong)) if on]
    print(f"trained {' + '.join(parts)} on {len(data.categories)} category and {len(data.pairs)} outcome lines "
          f"in {summary['seconds']} s")  # fmt: skip
    for preference, threshold in model.thresholds.items():
        share = summary["calibration"].get(preference, {}).get("strong_share")
        print(f"  {preference}: strong_score >= {threshold} goes strong ({share:.0%} of held-out prompts)")
    print(f"wrote {path} ({summary['bytes']:,} bytes, {model.version})")
    print('use it with [routing] analyzer = "learned"' + ("" if args.out is None else f' and learned_model = "{path}"'))
    return 0


def _open_input(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise RouterError(f"cannot read {path}: {exc.strerror}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) or type(exc).__name__


def _analysis_row(item_id: Any, analysis: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "category": analysis.category.value,
        "complexity": analysis.complexity,
        "strong_score": round(analysis.strong_score, 4),
        "estimated_input_tokens": analysis.estimated_input_tokens,
        "estimated_output_tokens": analysis.estimated_output_tokens,
        "requires_tools": analysis.requires_tools,
        "requires_long_context": analysis.requires_long_context,
    }


class _NoClose:
    """Context manager around stdout that does not close it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __enter__(self) -> Any:
        return self._stream

    def __exit__(self, *exc: object) -> None:
        self._stream.flush()


_COMMANDS = {
    "serve": _cmd_serve,
    "route": _cmd_route,
    "complete": _cmd_complete,
    "models": _cmd_models,
    "analyze": _cmd_analyze,
    "eval": _cmd_eval,
    "train": _cmd_train,
    "claude-config": _cmd_claude_config,
    "report": _cmd_report,
    "decisions": _cmd_decisions,
    "doctor": _cmd_doctor,
}

if __name__ == "__main__":
    sys.exit(main())
