"""The running router: configuration loaded once, then every long-lived part wired together.

`open_runtime` is an async context manager so that the HTTP client, the store and (later) the tool
sub-servers are started inside the event loop that uses them and closed when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx2

from server.accounting.attempts import AttemptBook
from server.accounting.budget import BudgetGuard
from server.accounting.rates import RateGate
from server.accounting.report import ReportBuilder
from server.analysis.llm import LlmAnalyzer
from server.domain.config import Config, fingerprint
from server.domain.registry import Registry
from server.execution.ask import metered_ask
from server.execution.completion import CompletionService
from server.execution.fallback import FallbackChain
from server.execution.job import Limits
from server.execution.strategies import StrategyRunner
from server.execution.tool_loop import ToolLoop
from server.providers.pool import ProviderPool
from server.routing.router import Router
from server.store import Store, open_store
from server.store.interface import AttemptLedger, DecisionRecorder, SessionHistory
from server.tools.hub import open_tool_hub
from server.tools.toolbox import ToolBox


@dataclass
class Runtime:
    """Handles every MCP tool and CLI command needs."""

    config: Config
    router: Router
    store: Store
    ledger: AttemptLedger
    sessions: SessionHistory
    toolbox: ToolBox
    completion: CompletionService
    budget: BudgetGuard
    reports: ReportBuilder
    decisions: DecisionRecorder


@asynccontextmanager
async def open_runtime(
    router: Router,
    env: Mapping[str, str],
    *,
    toolbox: ToolBox | None = None,
    limits: Limits | None = None,
    http_client: httpx2.AsyncClient | None = None,
    eager_tools: bool = True,
) -> AsyncIterator[Runtime]:
    """Open the store, HTTP client and tool sub-servers, wire the fallback chain, close everything on exit.

    `toolbox` replaces the sub-server hub (tests); `eager_tools=False` starts the sub-servers only when a
    task first needs a tool (one-shot CLI commands).
    """
    config = router.registry.config
    registry: Registry = router.registry
    store = await open_store(config.data_dir, config.store.url or None)
    pool = ProviderPool(registry, env, http_client, config.data_dir)
    stack = AsyncExitStack()
    tools: ToolBox = (
        toolbox
        if toolbox is not None
        else await stack.enter_async_context(
            open_tool_hub(config.tool_servers, env, config.data_dir, eager=eager_tools)
        )
    )
    ledger = store.ledger
    budget = BudgetGuard(store.budgets, config.budgets)
    decisions = store.decisions(
        analyzer_version=router.analyzer_version,
        config_fingerprint=fingerprint(config),
        price_table_version=config.price_table_version,
    )
    book = AttemptBook(ledger, budget, config.price_table_version)
    if isinstance(router.analyzer, LlmAnalyzer):
        _connect_llm_analyzer(router.analyzer, registry, pool, book)
    rates = RateGate(store.rates, config)
    fallback = FallbackChain(ToolLoop(registry, pool, tools, limits, rates=rates), book)
    try:
        yield Runtime(
            config=config,
            router=router,
            store=store,
            ledger=ledger,
            sessions=store.sessions,
            toolbox=tools,
            completion=CompletionService(
                router,
                fallback,
                store.sessions,
                tools,
                budget,
                decisions,
                StrategyRunner(fallback, budget, config.strategies),
            ),
            budget=budget,
            reports=ReportBuilder(store.reports, registry, budget),
            decisions=decisions,
        )
    finally:
        await stack.aclose()
        await pool.aclose()
        await store.aclose()


def _connect_llm_analyzer(analyzer: LlmAnalyzer, registry: Registry, pool: ProviderPool, book: AttemptBook) -> None:
    model = registry.resolve(analyzer.model_id)
    if model is None:
        close = ", ".join(registry.close_matches(analyzer.model_id)) or "see `model-router models`"
        analyzer.disable(f"unknown model id {analyzer.model_id!r} in [routing] analyzer (close: {close})")
        return
    availability = registry.availability(model)
    if not availability.available:
        analyzer.disable(f"{model.id} is not available: {availability.detail}")
        return
    analyzer.connect(metered_ask(pool.get(model), model, book), model)
