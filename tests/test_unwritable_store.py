"""When the store cannot write, `complete` fails and says so: no paid answer goes out unrecorded, and no
further paid request follows one whose row could not be written. Driven through the MCP tools in process,
against the fake provider APIs on loopback and a real SQLite file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client

from server.domain.config import load_config
from server.domain.registry import Registry
from server.execution.runtime import Runtime, open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from server.store import open_store
from server.tools.toolbox import NoTools
from tests.conftest import ALL_KEYS
from tests.fakes import providers as f
from tests.helpers import set_writable

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[f.FakeProviders]:
    with f.FakeProviders() as providers:
        yield providers


def _server(tmp_path: Path, fake: f.FakeProviders) -> tuple[Any, list[Runtime], Path]:
    """The host server, the runtimes it opens (to break their store) and its data dir."""
    env = {**os.environ, **ALL_KEYS}
    config = load_config(f.write_config(tmp_path, fake), env=env)
    runtimes: list[Runtime] = []

    @asynccontextmanager
    async def runtime_factory(router: Router) -> AsyncIterator[Runtime]:
        async with open_runtime(router, env, toolbox=NoTools()) as runtime:
            runtimes.append(runtime)
            yield runtime

    router = Router(Registry(config, env, local_runtime=lambda: False))
    return build_server(router, env=env, runtime_factory=runtime_factory), runtimes, config.data_dir


async def _ledger(data_dir: Path) -> list[dict[str, Any]]:
    store = open_store(data_dir)
    try:
        return await store.ledger.attempts(limit=10_000)
    finally:
        await store.aclose()


async def test_an_unwritable_store_fails_every_complete_and_leaves_no_paid_answer_unrecorded(
    tmp_path: Path, fake: f.FakeProviders
) -> None:
    fake.default = f.text("done", prompt=30, completion=3)
    server, runtimes, data_dir = _server(tmp_path, fake)
    answered: list[str] = []
    errors: list[str] = []
    async with Client(server) as client:

        async def one(i: int) -> None:
            arguments = {"task": f"Say hello #{i}", "force_model": "openai/gpt-4.1", "enable_tools": False}
            result = await client.call_tool("complete", arguments)
            if result.is_error:
                errors.append(result.content[0].text)  # type: ignore[union-attr]
            else:
                answered.append(result.structured_content["task_id"])  # type: ignore[index]

        await one(0)
        set_writable(runtimes[0].store, False)  # the disk turns read-only (or fills) while the server runs
        requests_before = len(fake.requests)
        async with anyio.create_task_group() as tg:
            for i in range(1, 6):
                tg.start_soon(one, i)
    assert len(answered) == 1 and len(errors) == 5
    assert all("cannot write to the database" in e and str(data_dir) in e for e in errors)
    assert len(fake.requests) - requests_before <= 5  # at most one paid request per failed call
    recorded = {row["task_id"] for row in await _ledger(data_dir) if row["outcome"] == "ok"}
    assert set(answered) <= recorded  # 0 unrecorded paid answers


async def test_a_ledger_row_that_cannot_be_written_stops_the_fallback_chain(
    tmp_path: Path, fake: f.FakeProviders
) -> None:
    fake.default = f.server_error()  # every model fails: without the store error the chain would go on
    server, runtimes, data_dir = _server(tmp_path, fake)
    async with Client(server) as client:
        store = runtimes[0].store
        # Decision rows still land; attempt rows are refused, as a table on a full disk page would be.
        store.database.run_sync(  # type: ignore[attr-defined]
            lambda conn: conn.execute(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.attempts BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        )
        result = await client.call_tool("complete", {"task": "What is the capital of France?", "enable_tools": False})
        route = (await client.call_tool("route_task", {"task": "What is the capital of France?"})).structured_content
    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert "cannot write to the database" in message and "disk full" in message
    assert route is not None and route["fallback_models"]  # there were models left to fall back to
    assert len(fake.requests) == 1  # one paid request, then the call stopped
    assert await _ledger(data_dir) == []
