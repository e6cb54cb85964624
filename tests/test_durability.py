"""Killing the host with SIGKILL in the middle of 50 concurrent calls leaves a readable, honest ledger."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from server.accounting.budget import BudgetGuard
from server.domain.config import BudgetConfig
from server.store import open_store
from tests.fakes import providers as f

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _pid_with_home(home: Path) -> int:
    """The host process: the one whose environment names this test's data dir and runs `serve`."""
    needle = f"MODEL_ROUTER_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and b"serve" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError("host process not found")


async def test_sigkill_mid_flight(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "router.toml"
    with f.FakeProviders() as fake:
        fake.default = f.text("done", prompt=30, completion=3, delay_s=0.4)
        config.write_text(f'[providers.openai]\nbase_url = "{fake.openai_url}"\n[budgets]\ndaily_usd = 100.0\n')
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "server", "serve"],
            env={"MODEL_ROUTER_HOME": str(home), "MODEL_ROUTER_CONFIG": str(config), "OPENAI_API_KEY": "k-123456"},
        )
        finished: list[str] = []
        some_answered = anyio.Event()

        async def one(client: Client, i: int) -> None:
            result = await client.call_tool("complete", {"task": f"Say hello #{i}", "force_model": "openai/gpt-4.1",
                                                          "enable_tools": False})  # fmt: skip
            if not result.is_error:
                finished.append(result.structured_content["task_id"])
                if len(finished) >= 5:
                    some_answered.set()

        try:  # the connection dies with the host: whatever the client raises then is expected
            with anyio.fail_after(120):  # bounds a hang; the kill comes as soon as 5 calls have answered
                async with Client(params, mode="legacy") as client, anyio.create_task_group() as tg:
                    for i in range(50):
                        tg.start_soon(one, client, i)
                    await some_answered.wait()  # some calls have answered; the others are in flight
                    os.kill(_pid_with_home(home), signal.SIGKILL)
        except (Exception, BaseExceptionGroup):
            pass
    db_path = home / "router.sqlite3"
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT task_id, outcome, input_tokens, cost_pusd FROM attempts").fetchall()
    conn.close()
    recorded_ok = {task for task, outcome, _, _ in rows if outcome == "ok"}
    assert finished and set(finished) <= recorded_ok  # every call that answered is counted
    assert all(tokens > 0 and cost is not None for _, outcome, tokens, cost in rows if outcome == "ok")
    store = await open_store(home)
    try:
        guard = BudgetGuard(store.budgets, BudgetConfig(daily_usd=100.0), clock=lambda: 10**10)  # far in the future
        [daily] = await guard.states()
        assert daily.reserved_usd == Decimal(0)  # holds left by the killed host have expired
        live = BudgetGuard(store.budgets, BudgetConfig(daily_usd=100.0))
        [now] = await live.states()
        assert now.spent_usd > 0
    finally:
        await store.aclose()
