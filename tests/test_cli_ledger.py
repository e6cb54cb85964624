"""`report` and `decisions` from the command line, and reproducible logged decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp.client import Client

from server.domain.config import load_config
from server.domain.registry import Registry
from server.routing.router import Router
from server.routing.selector import RouteOptions
from server.store.decisions import task_digest
from tests.helpers import run_cli


def test_report_on_an_empty_ledger(tmp_path: Path) -> None:
    done = run_cli("report", "--json", "--since", "7d", "--group-by", "day", home=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"]["calls"] == 0 and report["savings"]["baseline_model"] == "anthropic/claude-opus-5-5"
    human = run_cli("report", home=tmp_path)
    assert human.returncode == 0 and "savings vs anthropic/claude-opus-5-5" in human.stdout
    bad = run_cli("report", "--since", "last tuesday", home=tmp_path)
    assert bad.returncode == 1 and "ISO date" in bad.stderr


@pytest.mark.anyio
async def test_logged_decisions_are_listed_and_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_ROUTER_HOME", str(tmp_path))
    from server.mcp.app import build_server

    task = "Write a Python function that merges overlapping intervals, with unit tests."
    router = Router(Registry(load_config(), {"MODEL_ROUTER_HOME": str(tmp_path)}))
    async with Client(build_server(router)) as client:
        first = (await client.call_tool("route_task", {"task": task})).structured_content
    done = run_cli("decisions", "--json", "--last", "5", home=tmp_path)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["task_sha256"] == task_digest(task) and row["primary_model"] == first["primary_model"]
    assert row["analyzer_version"] and row["config_fingerprint"] and row["price_table_version"]
    again = await router.route(task, RouteOptions())  # same versions: the same route
    assert (again.primary_model, again.fallback_models) == (row["primary_model"], row["fallback_models"])


@pytest.mark.anyio
async def test_mcp_dev_entry_exposes_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_ROUTER_HOME", str(tmp_path))
    from server.mcp import entry as mcp_entry  # imported here: it loads the config at import

    async with Client(mcp_entry.server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"route_task", "complete", "cost_report"}
