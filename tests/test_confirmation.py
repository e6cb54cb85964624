"""A human in the loop: `complete` asks the user (MCP elicitation) before a critical or costly task's first
paid call. `model-router serve` runs as a real stdio subprocess against the fake provider APIs; the client
is the SDK's, with or without an elicitation callback (the capability is declared only with one)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.types import ElicitRequestParams, ElicitResult

from server.domain.config import Config, load_config
from server.store import open_database
from server.store.db import rows_as_dicts
from tests.fakes import providers as f
from tests.helpers import accepting, attempt_rows, cli_env, free_port, run_cli, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CRITICAL = "Delete the production database and all its backups now."
HARMLESS = "What is the capital of France?"
MODEL = "openai/gpt-4.1"
NO_TOOL_SERVERS = "".join(f"[tool_servers.{name}]\nenabled = false\n" for name in ("web_search", "code_exec", "memory"))


class Human:
    """The user behind the host: answers each confirmation with `action`, noting what the provider had
    received at that moment."""

    def __init__(self, fake: f.FakeProviders, action: str = "accept") -> None:
        self.fake = fake
        self.action = action
        self.asked: list[str] = []
        self.requests_when_asked: list[int] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        self.requests_when_asked.append(len(self.fake.requests))
        content = {} if self.action == "accept" else None
        return ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


@asynccontextmanager
async def serve(
    tmp_path: Path, fake: f.FakeProviders, human: Human | None, *, extra: str = "", mode: str = "auto"
) -> AsyncIterator[tuple[Client, Config]]:
    """`model-router serve` over stdio with only OpenAI's key; the client declares elicitation iff `human`."""
    config_path = f.write_config(tmp_path, fake, extra=NO_TOOL_SERVERS + extra)
    env = cli_env(tmp_path / "home", MODEL_ROUTER_CONFIG=str(config_path), OPENAI_API_KEY="test-openai-key-0000")
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)
    async with Client(params, mode=mode, elicitation_callback=human) as client:  # type: ignore[arg-type]
        yield client, load_config(config_path, env=env)


def decisions(config: Config) -> list[dict[str, Any]]:
    db = open_database(config.data_dir)
    try:
        rows = db.run_sync(lambda c: rows_as_dicts(c.execute("SELECT * FROM decisions ORDER BY id")))
    finally:
        db.close()
    return [{**row, "options": json.loads(row["options"])} for row in rows]


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return result.content[0].text


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # a mid-call request (2025-11-25) or an input-required round
async def test_critical_task_asks_once_before_any_request_and_runs_when_accepted(tmp_path, fake, mode) -> None:
    fake.script("gpt-4.1", f.text("Dropped.", prompt=50, completion=5))
    human = Human(fake, "accept")
    async with serve(tmp_path, fake, human, mode=mode) as (client, config):
        route = await client.call_tool("route_task", {"task": CRITICAL, "force_model": MODEL})
        result = await client.call_tool("complete", {"task": CRITICAL, "force_model": MODEL, "max_tokens": 50})
    assert route.structured_content["critical"] is True
    assert route.structured_content["critical_actions"] == ["delete the production database and all its backups now"]
    assert not result.is_error, result.content
    assert result.structured_content["response"] == "Dropped."
    assert len(human.asked) == 1 and human.requests_when_asked == [0]  # asked once, before anything was sent
    question = human.asked[0]
    assert CRITICAL in question and MODEL in question and "estimated cost $" in question
    assert 'critical action: "delete the production database' in question
    assert fake.models_called() == ["gpt-4.1"]
    [row] = attempt_rows(config)
    assert row["outcome"] == "ok" and row["model"] == MODEL and row["cost_pusd"] > 0  # paid and in the ledger
    assert decisions(config)[-1]["options"]["confirmation"] == "accepted"


@pytest.mark.parametrize(("action", "done"), [("decline", "declined"), ("cancel", "cancelled")])
async def test_declined_critical_task_sends_nothing_and_says_so(tmp_path, fake, action, done) -> None:
    human = Human(fake, action)
    async with serve(tmp_path, fake, human) as (client, config):
        result = await client.call_tool("complete", {"task": CRITICAL})
    text = error_text(result)
    assert f"the user {done} running this task" in text and "nothing was sent to any model" in text
    assert "Do not retry" in text
    assert len(human.asked) == 1 and fake.requests == []
    assert attempt_rows(config) == []
    assert decisions(config)[-1]["options"]["confirmation"] == done  # the refusal is on record


async def test_client_without_elicitation_gets_an_error_saying_how_to_allow_it(tmp_path, fake) -> None:
    async with serve(tmp_path, fake, None) as (client, _):
        result = await client.call_tool("complete", {"task": CRITICAL})
        harmless = await client.call_tool("complete", {"task": HARMLESS, "force_model": MODEL})
    text = error_text(result)
    assert "the MCP client does not declare the elicitation capability" in text and "nothing was sent" in text
    assert "allow_unattended_critical = true under [safety]" in text
    assert not harmless.is_error  # only critical tasks need a human
    assert fake.models_called() == ["gpt-4.1"]  # the harmless one; the critical one sent nothing


async def test_allow_unattended_critical_lets_a_client_without_elicitation_run_it(tmp_path, fake) -> None:
    extra = "[safety]\nallow_unattended_critical = true\n"
    async with serve(tmp_path, fake, None, extra=extra) as (client, config):
        result = await client.call_tool("complete", {"task": CRITICAL, "force_model": MODEL})
    assert not result.is_error, result.content
    assert fake.models_called() == ["gpt-4.1"]
    assert decisions(config)[-1]["options"]["confirmation"] == "unattended"


async def test_calls_above_confirm_above_usd_are_confirmed_and_calls_under_it_are_not(tmp_path, fake) -> None:
    # gpt-4.1 at $2 in / $8 out per 1M: a 4,096-token answer is estimated far above $0.001, a short one under.
    human = Human(fake, "accept")
    long_task = "Write a detailed, comprehensive essay on the history of the printing press in Europe."
    async with serve(tmp_path, fake, human, extra="[budgets]\nconfirm_above_usd = 0.001\n") as (client, config):
        cheap = await client.call_tool("route_task", {"task": HARMLESS, "force_model": MODEL})
        dear = await client.call_tool("route_task", {"task": long_task, "force_model": MODEL})
        under = await client.call_tool("complete", {"task": HARMLESS, "force_model": MODEL})
        asked_before = len(human.asked)
        over = await client.call_tool("complete", {"task": long_task, "force_model": MODEL})
    assert cheap.structured_content["estimated_cost_usd"] < 0.001 < dear.structured_content["estimated_cost_usd"]
    assert not under.is_error and not over.is_error
    assert asked_before == 0 and len(human.asked) == 1  # only the call above the threshold asked
    assert "above budgets.confirm_above_usd ($0.001000)" in human.asked[0]
    assert human.requests_when_asked == [1]  # the cheap call's request only: the dear one waited for the yes
    assert [d["options"]["confirmation"] for d in decisions(config) if d["kind"] == "complete"] == [
        "not_needed",
        "accepted",
    ]


async def test_costly_call_without_elicitation_is_refused_naming_the_key(tmp_path, fake) -> None:
    extra = "[budgets]\nconfirm_above_usd = 0\n[safety]\nallow_unattended_critical = true\n"
    async with serve(tmp_path, fake, None, extra=extra) as (client, _):
        result = await client.call_tool("complete", {"task": HARMLESS, "force_model": MODEL})
    text = error_text(result)
    assert "above budgets.confirm_above_usd ($0.000000)" in text and "raise or remove budgets.confirm_above_usd" in text
    assert fake.requests == []


def test_the_command_line_refuses_a_critical_task_unless_allowed(tmp_path, fake) -> None:
    config_path = f.write_config(tmp_path, fake, extra=NO_TOOL_SERVERS)
    env = {"MODEL_ROUTER_CONFIG": str(config_path), "OPENAI_API_KEY": "test-openai-key-0000"}
    refused = run_cli("complete", CRITICAL, "--force-model", MODEL, home=tmp_path / "home", env=env)
    assert refused.returncode == 1 and "or this is the command line" in refused.stderr
    assert "allow_unattended_critical = true under [safety]" in refused.stderr and fake.requests == []
    config_path.write_text(config_path.read_text() + "[safety]\nallow_unattended_critical = true\n")
    allowed = run_cli("complete", CRITICAL, "--force-model", MODEL, home=tmp_path / "home", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert fake.models_called() == ["gpt-4.1"]


@pytest.fixture
def http_router(tmp_path: Path, fake: f.FakeProviders) -> Iterator[str]:
    """`serve --transport streamable-http` over the fake providers; yields its MCP URL."""
    config_path = f.write_config(tmp_path, fake, extra=NO_TOOL_SERVERS)
    port = free_port()
    env = cli_env(tmp_path / "home", MODEL_ROUTER_CONFIG=str(config_path), OPENAI_API_KEY="test-openai-key-0000")
    command = [sys.executable, "-m", "server", "serve", "--transport", "streamable-http", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(accepting(port, proc), within=60, what=f"serve accepting on port {port}")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_over_streamable_http_the_user_is_asked_too(http_router, fake, mode) -> None:
    """Service mode: the question reaches the client over HTTP (an SSE-carried request, or an input-required
    result), and a decline sends nothing."""
    human = Human(fake, "decline")
    async with Client(http_router, mode=mode, elicitation_callback=human) as client:
        result = await client.call_tool("complete", {"task": CRITICAL, "force_model": MODEL})
    assert "the user declined running this task" in error_text(result)
    assert len(human.asked) == 1 and fake.requests == []
