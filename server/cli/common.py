"""What every command shares: exit codes, loading the router from `--config`, running async work.

Kept import-light (heavy modules load inside the functions): `model-router --help` and `serve` pay only
for what they use.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from server.errors import RouterError

EXIT_FAILURE = 1
EXIT_USAGE = 2


def route_options(parser: argparse.ArgumentParser) -> None:
    """The routing flags `route` and `complete` share."""
    parser.add_argument(
        "--preference",
        choices=["cheapest", "balanced", "best_quality"],
        default="balanced",
        help="cost versus quality trade-off (default balanced)",
    )
    parser.add_argument("--self-hosted-only", action="store_true", help="never use a cloud model")
    parser.add_argument("--force-model", metavar="ID", help="use this model id (see `model-router models`)")


def load_router(args: argparse.Namespace) -> Any:
    """The router for `--config`, with `--analyzer`/`--model` applied where the command has them."""
    from server.domain.config import load_config
    from server.domain.registry import Registry
    from server.providers.reachability import EndpointProbe
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
    return Router(Registry(config, os.environ, probe=EndpointProbe()))


def run_with_analyzer(router: Any, work: Any) -> Any:
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
