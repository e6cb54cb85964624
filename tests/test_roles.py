"""`route_task(..., role=...)`: which model for one role of an agent pattern, through the in-process MCP client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.client import Client

from server.domain.registry import Registry
from server.domain.tasks import Category
from server.execution.runtime import open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from server.tools.toolbox import NoTools
from tests.conftest import make_registry
from tests.helpers import run_cli

pytestmark = pytest.mark.anyio

TASK = "Build a scraper that collects product prices from three shops, stores them and writes a weekly report."
TIERS = {"orchestrator": 1, "evaluator": 1, "worker": 2, "classifier": 4, "summariser": 4}


async def route(registry: Registry, **arguments: Any) -> Any:
    """route_task on a server whose runtime has no tool sub-servers (routing never uses them)."""
    server = build_server(Router(registry), runtime_factory=lambda r: open_runtime(r, {}, toolbox=NoTools()))
    async with Client(server) as client:
        return await client.call_tool("route_task", {"task": TASK, **arguments})


def tier(registry: Registry, model_id: str) -> int:
    model = registry.resolve(model_id)
    assert model is not None
    return model.tier


@pytest.mark.parametrize("role", list(TIERS))
async def test_each_role_gets_the_seeds_tier(registry_all_keys: Registry, role: str) -> None:
    result = await route(registry_all_keys, role=role)
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["role"] == role and data["situation"] == f"role:{role}"
    assert tier(registry_all_keys, data["primary_model"]) == TIERS[role]
    assert any(reason.startswith(f"role {role}: ") for reason in data["reasons"])
    assert data["primary_model"] not in data["fallback_models"]


async def test_a_strong_role_costs_more_than_a_light_one_for_the_same_task(registry_all_keys: Registry) -> None:
    orchestrator = (await route(registry_all_keys, role="orchestrator")).structured_content
    classifier = (await route(registry_all_keys, role="classifier")).structured_content
    assert orchestrator["estimated_cost_usd"] > classifier["estimated_cost_usd"]


@pytest.mark.parametrize("role", ["orchestrator", "worker"])
async def test_within_a_tier_the_decision_matrix_pick_comes_first(registry_all_keys: Registry, role: str) -> None:
    data = (await route(registry_all_keys, role=role)).structured_content
    row = registry_all_keys.config.routing.matrix[Category(data["category"])]
    curated = [model_id for model_id in row.values() if tier(registry_all_keys, model_id) == TIERS[role]]
    assert curated, f"the shipped matrix has no tier-{TIERS[role]} model for {data['category']}"
    assert data["primary_model"] == curated[0]


async def test_without_a_tier_one_key_the_orchestrator_gets_the_next_tier_and_says_why() -> None:
    registry = make_registry({"GROQ_API_KEY": "test-groq-key-0000"}, local=False)
    data = (await route(registry, role="orchestrator")).structured_content
    assert data["provider"] in ("groq", "ollama")
    assert tier(registry, data["primary_model"]) != 1
    assert any(r.startswith("the orchestrator role's first choice ") and "set " in r for r in data["reasons"]), data[
        "reasons"
    ]


async def test_role_keeps_self_hosted_only(registry_all_keys: Registry) -> None:
    data = (await route(registry_all_keys, role="orchestrator", self_hosted_only=True)).structured_content
    chain = [data["primary_model"], *data["fallback_models"]]
    assert all(registry_all_keys.is_self_hosted(registry_all_keys.resolve(m)) for m in chain)  # type: ignore[arg-type]


async def test_no_role_routes_the_task_as_a_whole(registry_all_keys: Registry) -> None:
    data = (await route(registry_all_keys)).structured_content
    assert data["role"] is None and not data["situation"].startswith("role:")


async def test_an_unknown_role_is_refused_naming_the_roles(registry_all_keys: Registry) -> None:
    result = await route(registry_all_keys, role="manager")
    assert result.is_error
    text = result.content[0].text
    for role in TIERS:
        assert role in text


@pytest.mark.slow
def test_the_cli_routes_a_role_too() -> None:
    done = run_cli("route", TASK, "--role", "classifier", "--json", env={"GROQ_API_KEY": "test-groq-key-0000"})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["role"] == "classifier" and data["situation"] == "role:classifier"
    refused = run_cli("route", TASK, "--role", "manager")
    assert refused.returncode == 2 and "invalid choice: 'manager'" in refused.stderr
