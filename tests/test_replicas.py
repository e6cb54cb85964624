"""Three `serve --transport streamable-http` replicas sharing one PostgreSQL database and one fake provider,
as a team runs model-router behind a load balancer: the daily budget holds across them, every answer is in
the ledger once, `cost_report` adds up, a session continues on another replica, and a replica killed with
SIGKILL mid-load costs nothing but its own in-flight calls (its holds expire, no duplicate rows). An `rpm`
limit on a model holds across the three: the fake never receives more than it allows in any minute, and
the excess moves to the next model, each saying which limit it met.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import anyio
import httpx2
import psycopg
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from server.accounting.budget import BudgetGuard
from server.domain.config import BudgetConfig
from server.store import open_store
from tests.fakes import providers as f
from tests.helpers import accepting, free_port, wait_until
from tests.pgserver import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TOKEN = "replica-token-77"
CALLS = 300  # 100 per replica, all at once
MAX_TOKENS = 50
# openai/gpt-4.1 is $2 / $8 per 1M tokens: a call holds about 20 input + 50 output tokens' worth (~$0.00044)
# and spends 5 input + 50 output ($0.00041), so this daily budget allows about 30 of the 300 calls.
DAILY_USD = 0.0132
MODEL = "openai/gpt-4.1"


class Replica:
    def __init__(self, index: int, proc: subprocess.Popen[str], port: int) -> None:
        self.index, self.proc, self.port = index, proc, port
        self.url = f"http://127.0.0.1:{port}/mcp"

    def client(self) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        return Client(streamable_http_client(self.url, http_client=http))


@contextmanager
def _replicas(url: str, config: Path, tmp_path: Path) -> Iterator[list[Replica]]:
    """Three `serve` replicas on loopback sharing the database at `url`; nothing else shared on disk."""
    replicas: list[Replica] = []
    for index in range(3):
        port = free_port()
        env = {**os.environ, "MODEL_ROUTER_HOME": str(tmp_path / f"replica{index}"),  # nothing shared on disk
               "MODEL_ROUTER_CONFIG": str(config), "MODEL_ROUTER_DATABASE_URL": url,
               "MODEL_ROUTER_TOKEN": TOKEN, "OPENAI_API_KEY": "sk-test-replicas"}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--transport", "streamable-http", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        replicas.append(Replica(index, proc, port))
    try:
        for replica in replicas:  # all three started at once: they migrate the empty database together
            wait_until(accepting(replica.port, replica.proc), within=90, what=f"replica {replica.index} listening")
        yield replicas
    finally:
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.proc.terminate()
                replica.proc.wait(timeout=15)


@pytest.fixture
def shared(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, f.FakeProviders, list[Replica]]]:
    url = postgres_server.create_database()
    with f.FakeProviders() as fake:
        fake.default = f.text("done", prompt=5, completion=MAX_TOKENS, delay_s=0.3)
        config = f.write_config(tmp_path, fake, timeout_s=30, extra=f"[budgets]\ndaily_usd = {DAILY_USD}\n")
        with _replicas(url, config, tmp_path) as replicas:
            yield url, fake, replicas


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


async def test_replicas_share_budget_ledger_sessions_and_survive_a_kill(
    shared: tuple[str, f.FakeProviders, list[Replica]],
) -> None:
    url, fake, (one, two, three) = shared

    # A conversation started on replica 1 continues on replica 2 with its history.
    chat = {"session_id": "team-1", "force_model": MODEL, "enable_tools": False, "max_tokens": 20}
    async with one.client() as mcp:
        first = await mcp.call_tool("complete", {"task": "My name is Ada. Reply ok.", **chat})
        assert not first.is_error, first.content
    async with two.client() as mcp:
        second = await mcp.call_tool("complete", {"task": "What is my name?", **chat})
        assert not second.is_error, second.content
    sent = fake.requests[-1][2]["messages"]
    assert any("My name is Ada" in str(message.get("content")) for message in sent), sent

    answered: dict[str, int] = {}  # task id -> replica that answered
    refused: list[str] = []
    answered_after_kill: list[int] = []
    enough = anyio.Event()
    killed = anyio.Event()

    async def call(mcp: Client, replica: Replica, i: int) -> None:
        result = await mcp.call_tool("complete", {"task": f"Say hello #{i}", "force_model": MODEL,
                                                  "enable_tools": False, "max_tokens": MAX_TOKENS})  # fmt: skip
        if result.is_error:
            refused.append(str(result.content))
            return
        answered[result.structured_content["task_id"]] = replica.index
        if killed.is_set():
            answered_after_kill.append(replica.index)
        if len(answered) >= 5:
            enough.set()

    async def load(replica: Replica) -> None:
        try:
            async with replica.client() as mcp, anyio.create_task_group() as tg:
                for i in range(replica.index, CALLS, 3):
                    tg.start_soon(call, mcp, replica, i)
        except (Exception, BaseExceptionGroup):
            assert replica is three, f"replica {replica.index} failed though it was not killed"

    with anyio.fail_after(240):  # bounds a hang only
        async with anyio.create_task_group() as tg:
            for replica in (one, two, three):
                tg.start_soon(load, replica)
            await enough.wait()
            three.proc.send_signal(signal.SIGKILL)  # mid-load: replica 3 dies with calls in flight
            killed.set()

    budget_pusd = int(Decimal(str(DAILY_USD)) * 10**12)
    [(spent, attempts)] = _rows(url, "SELECT COALESCE(SUM(cost_pusd), 0), COUNT(*) FROM attempts")
    assert 0 < spent <= budget_pusd  # the budget held across the three replicas
    assert len(answered) >= 10 and refused and all("budget" in text.lower() for text in refused)
    assert {0, 1} <= set(answered.values())  # the load was spread; the survivors' answers are below too
    per_task = dict(_rows(url, "SELECT task_id, COUNT(*) FROM attempts GROUP BY task_id"))
    assert all(per_task[task] == 1 for task in answered)  # one attempt, one row (force_model: no fallback)
    assert _rows(url, "SELECT task_id, attempt_no FROM attempts GROUP BY 1, 2 HAVING COUNT(*) > 1") == []
    ok = {task for (task,) in _rows(url, "SELECT task_id FROM attempts WHERE outcome = 'ok'")}
    assert set(answered) <= ok  # every answered call is in the ledger
    # No row of the fake's model without a request behind it (refused calls fall back to the $0 self-hosted
    # model, which is never budget-blocked; here nothing listens for it, so those attempts fail).
    [(openai_rows,)] = _rows(url, "SELECT COUNT(*) FROM attempts WHERE provider = 'openai'")
    assert openai_rows <= len(fake.models_called("openai"))

    print(
        f"replicas: {len(answered)} answered ({len(answered_after_kill)} after the kill), {len(refused)} refused, "
        f"spent ${Decimal(spent) / 10**12} of ${DAILY_USD}, {attempts} ledger rows"
    )
    # The survivors still answer, and their cost_report is the raw ledger's sums.
    for replica in (one, two):
        async with replica.client() as mcp:
            report = await mcp.call_tool("cost_report", {})
        totals = report.structured_content["totals"]
        assert totals["attempts"] == attempts
        assert Decimal(str(totals["cost_usd"])).quantize(Decimal("1e-9")) == (Decimal(spent) / 10**12).quantize(
            Decimal("1e-9")
        )

    # Whatever replica 3 held when it died stops counting once its holds expire.
    store = await open_store(Path("/nonexistent"), url)
    try:
        later = BudgetGuard(store.budgets, BudgetConfig(daily_usd=DAILY_USD), clock=lambda: time.time() + 901)
        [daily] = await later.states()
        assert daily.reserved_usd == Decimal(0)
    finally:
        await store.aclose()


RPM = 60
RATE_CALLS = 150  # 50 per replica at once: more than two minutes' worth of the limit


def _most_in_any_window(times: list[float], window_s: float = 60.0) -> int:
    """The most arrivals within any `window_s`-long stretch."""
    times, most, start = sorted(times), 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_an_rpm_limit_holds_across_the_replicas(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    results = []
    with f.FakeProviders() as fake:
        fake.default = f.text("done", prompt=5, completion=10, delay_s=0.05)
        extra = f'[rate_limits]\nwait_s = 1\n[[models]]\nid = "{MODEL}"\nrpm = {RPM}\n'
        config = f.write_config(tmp_path, fake, timeout_s=30, extra=extra)
        with _replicas(url, config, tmp_path) as replicas:

            async def call(mcp: Client, i: int) -> None:
                results.append(await mcp.call_tool("complete", {"task": f"Say hello #{i}", "force_model": MODEL,
                                                                "enable_tools": False, "max_tokens": 10}))  # fmt: skip

            async def load(replica: Replica) -> None:
                async with replica.client() as mcp, anyio.create_task_group() as tg:
                    for i in range(replica.index, RATE_CALLS, 3):
                        tg.start_soon(call, mcp, i)

            with anyio.fail_after(110):  # bounds a hang only (and so the run spans at most two windows)
                async with anyio.create_task_group() as tg:
                    for replica in replicas:
                        tg.start_soon(load, replica)
        sent = [at for model, at in fake.arrivals if model == MODEL.split("/", 1)[1]]

    assert len(results) == RATE_CALLS
    assert 0 < _most_in_any_window(sent) <= RPM  # the fake never saw more than 60 a minute from the three
    answered = [r.structured_content for r in results if not r.is_error]
    by_model = [a for a in answered if a["model_used"] == MODEL]
    assert len(by_model) == len(sent)  # every request the fake received was an answer
    moved = [a for a in answered if a["model_used"] != MODEL]
    refused = [str(r.content) for r in results if r.is_error]
    assert len(moved) + len(refused) == RATE_CALLS - len(sent) > 0  # the excess went on, or was refused
    for result in moved:
        [limited] = [a for a in result["attempts"] if a["model"] == MODEL]
        assert limited["outcome"] == "rate_limited"
        assert f"{MODEL}: rpm limit {RPM} reached ({RPM} requests in the last 60 s" in limited["error"]
    assert all(f"rpm limit {RPM} reached" in text for text in refused)
    [(rows,)] = _rows(url, f"SELECT COUNT(*) FROM attempts WHERE model = '{MODEL}'")
    assert rows == len(sent)  # a call moved on before sending leaves no row for the limited model
    print(
        f"rpm across replicas: {len(sent)} sent to {MODEL} (most in any 60 s: {_most_in_any_window(sent)}), "
        f"{len(moved)} moved to the next model, {len(refused)} refused"
    )
