"""Two `serve` processes on one data dir, 30 concurrent `complete` calls each with tools offered, against a
provider that bills every byte it receives: the ledger never spends more than the daily budget."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.client.stdio import stdio_client

from server.domain.config import load_config
from tests.fakes import providers as f
from tests.helpers import attempt_rows, cli_env, wait_until_async

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BUDGET = Decimal("0.002")  # the figure: 60 calls spent $0.002565 against it before
TASK = "Search the web for the current Python release, run a snippet that prints it, and store it in memory ({i})."
AGENTIC_TOOLS = {"web_search", "fetch_url", "execute_python", "validate_python_syntax", "memory_store",
                 "memory_search"}  # fmt: skip
# Only OpenAI has a key, and the $0 models are off: cheaper cloud models (Together, Gemini) fit the budget
# but cannot be called here, so a refusal is where "set TOGETHER_API_KEY to enable" used to show up.
EXTRA = f"""
[budgets]
daily_usd = {BUDGET}

[[models]]
id = "ollama/qwen3:1.7b"
enabled = false

[[models]]
id = "local/gemma-3-270m"
enabled = false
"""


def _tools_ready(log: Path) -> bool:
    text = log.read_text() if log.exists() else ""
    return sum("tool server" in line and " ready: " in line for line in text.splitlines()) == 3


async def _host(
    name: str, env: dict[str, str], tmp_path: Path, errors: list[str], answers: list[dict[str, Any]]
) -> None:
    """One `serve` process: wait until its three sub-servers are up, then 30 concurrent `complete` calls."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "--log-level", "INFO", "serve"],
                                   env=env)  # fmt: skip
    log = tmp_path / f"{name}.log"
    with log.open("w") as errlog:
        try:
            await _serve(params, errlog, log, errors, answers, name)
        except Exception as exc:  # a host that dies says why only in its log
            raise AssertionError(f"{name} failed: {exc!r}; its log ends:\n{log.read_text()[-3000:]}") from exc


async def _serve(
    params: StdioServerParameters,
    errlog: TextIO,
    log: Path,
    errors: list[str],
    answers: list[dict[str, Any]],
    name: str,
) -> None:
    async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
        # Tools are offered only once their sub-servers are up; wait for that, so every call offers all six.
        await wait_until_async(lambda: _tools_ready(log), within=120, what=f"{name}'s three tool servers starting")

        async def one(i: int) -> None:
            arguments = {"task": TASK.format(i=f"{name}-{i}"), "max_tokens": 100}
            result = await client.call_tool("complete", arguments)
            if result.is_error:
                errors.append(result.content[0].text)  # type: ignore[union-attr]
            else:
                answers.append(result.structured_content or {})

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)


async def test_two_hosts_sixty_concurrent_calls_with_tools_never_overspend_the_daily_budget(tmp_path: Path) -> None:
    home = tmp_path / "home"
    errors: list[str] = []
    answers: list[dict[str, Any]] = []
    with f.FakeProviders() as fake:
        fake.bill_input = True  # the input billed is what each request carried, tool definitions and all
        fake.default = f.text("done", completion=100)  # and every answer bills the whole max_tokens
        config_path = f.write_config(tmp_path, fake, extra=EXTRA)
        env = cli_env(home, MODEL_ROUTER_CONFIG=str(config_path), OPENAI_API_KEY="test-openai-key-0000")
        with anyio.fail_after(300):  # bounds a hang only
            async with anyio.create_task_group() as tg:
                for name in ("host-a", "host-b"):
                    tg.start_soon(_host, name, env, tmp_path, errors, answers)
        requests = list(fake.requests)
    rows = attempt_rows(load_config(config_path, env=env))
    spent = sum(Decimal(row["cost_pusd"]) for row in rows if row["cost_pusd"]) / 10**12
    assert spent <= BUDGET, f"spent ${spent} of a ${BUDGET} budget"
    assert len(answers) + len(errors) == 60
    assert answers and errors  # the budget, not the number of calls, was the limit
    for error in errors:
        assert "daily budget of $0.0020" in error and "budgets.daily_usd" in error, error
        assert "to enable" not in error and "API_KEY" not in error, error
    assert len(requests) == len(rows)  # every request that reached the provider is in the ledger
    for _, _, body, _ in requests:  # and each offered all six tools: what used to be left out of the hold
        assert {tool["function"]["name"] for tool in body["tools"]} == AGENTIC_TOOLS
    billed = [row["input_tokens"] for row in rows]
    estimated = [row["estimated_input_tokens"] for row in rows]
    assert min(billed) > 4 * max(estimated)  # the router's task estimate is a small part of what is billed
