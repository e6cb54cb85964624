"""The selector: the seeds' matrix, substitutes when models are missing, and the guarantees it gives."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from server.domain.registry import Registry
from server.domain.tasks import Category, TaskAnalysis
from server.errors import RoutingError
from server.routing.selector import Preference, RouteOptions, select_route
from tests.conftest import ALL_KEYS, make_registry


def _analysis(category: Category, complexity: int = 2, strong: float = 0.3, **kw: object) -> TaskAnalysis:
    fields: dict = {
        "estimated_input_tokens": 500,
        "estimated_output_tokens": 500,
        "requires_tools": False,
        "requires_long_context": False,
    }
    fields.update(kw)
    return TaskAnalysis(category=category, complexity=complexity, strong_score=strong, **fields)


def test_hard_coding_task_goes_to_the_tier1_coding_model(registry_all_keys: Registry) -> None:
    route = select_route(_analysis(Category.COMPLEX_CODING, 5, 0.9), RouteOptions(), registry_all_keys)
    assert route.primary.id == "anthropic/claude-sonnet-5-5"
    assert route.primary.tier == 1
    assert route.fallbacks[0].id == "openai/gpt-6.1-terra"  # the matrix's fallback comes first


def test_best_quality_hard_reasoning_goes_to_the_reasoning_specialist(registry_all_keys: Registry) -> None:
    options = RouteOptions(preference=Preference.BEST_QUALITY)
    route = select_route(_analysis(Category.DEEP_REASONING, 4, 0.8), options, registry_all_keys)
    assert route.primary.id == "openai/gpt-6.1-sol"
    assert route.situation == "math_heavy"


def test_easy_task_takes_the_cost_optimised_model_and_says_why(registry_all_keys: Registry) -> None:
    route = select_route(_analysis(Category.QA_RETRIEVAL, 1, 0.1), RouteOptions(), registry_all_keys)
    assert route.primary.tier >= 2
    assert route.situation == "cost_optimized"
    assert route.threshold == 0.19
    assert any("strong_score 0.10 < threshold 0.19" in r for r in route.reasons)


def test_chain_is_acyclic_and_bounded(registry_all_keys: Registry) -> None:
    for category, pref in itertools.product(Category, Preference):
        for complexity, strong in [(1, 0.0), (3, 0.5), (5, 1.0)]:
            route = select_route(
                _analysis(category, complexity, strong), RouteOptions(preference=pref), registry_all_keys
            )
            ids = [m.id for m in route.chain]
            assert len(ids) == len(set(ids)), ids
            assert 1 <= len(ids) <= 4


@pytest.mark.parametrize("registry_env", [ALL_KEYS, {}])
def test_self_hosted_only_never_yields_a_cloud_model(registry_env: dict[str, str]) -> None:
    registry = make_registry(registry_env)
    for category, pref in itertools.product(Category, Preference):
        for complexity, strong, tools in [(1, 0.0, False), (5, 1.0, True)]:
            analysis = _analysis(category, complexity, strong, requires_tools=tools)
            route = select_route(analysis, RouteOptions(preference=pref, self_hosted_only=True), registry)
            assert all(registry.is_self_hosted(m) for m in route.chain), [m.id for m in route.chain]


def test_self_hosted_only_without_any_self_hosted_model_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[models]]\nid = "ollama/qwen3:1.7b"\nenabled = false\n')
    registry = make_registry(ALL_KEYS, local=False, config_path=config)
    with pytest.raises(RoutingError, match=r"no self-hosted model is available.*mcp-model-router\[local\]"):
        select_route(_analysis(Category.QA_RETRIEVAL), RouteOptions(self_hosted_only=True), registry)


def test_force_model_is_used_and_aliases_resolve(registry_all_keys: Registry) -> None:
    route = select_route(_analysis(Category.QA_RETRIEVAL), RouteOptions(force_model="openai/o3"), registry_all_keys)
    assert route.primary.id == "openai/o3"
    assert "openai/o3" not in [m.id for m in route.fallbacks]
    route = select_route(
        _analysis(Category.QA_RETRIEVAL), RouteOptions(force_model="deepseek/deepseek-r1"), registry_all_keys
    )
    assert route.primary.id == "together/deepseek-r1"


def test_unknown_forced_model_lists_close_matches(registry_all_keys: Registry) -> None:
    with pytest.raises(RoutingError) as info:
        select_route(
            _analysis(Category.QA_RETRIEVAL), RouteOptions(force_model="openai/gpt4.1-nano"), registry_all_keys
        )
    assert "not in the registry" in str(info.value)
    assert "openai/gpt-4.1-nano" in str(info.value)


def test_forced_cloud_model_under_self_hosted_only_is_refused(registry_all_keys: Registry) -> None:
    with pytest.raises(RoutingError, match="cloud model"):
        select_route(
            _analysis(Category.QA_RETRIEVAL),
            RouteOptions(force_model="openai/o3", self_hosted_only=True),
            registry_all_keys,
        )


def test_forced_model_without_key_names_the_variable(registry_no_keys: Registry) -> None:
    with pytest.raises(RoutingError, match="set ANTHROPIC_API_KEY"):
        select_route(
            _analysis(Category.QA_RETRIEVAL), RouteOptions(force_model="anthropic/claude-opus-4"), registry_no_keys
        )


def test_without_keys_routes_to_self_hosted_and_names_the_key_that_would_help(registry_no_keys: Registry) -> None:
    route = select_route(_analysis(Category.COMPLEX_CODING, 5, 0.9), RouteOptions(), registry_no_keys)
    assert all(registry_no_keys.is_self_hosted(m) for m in route.chain)
    assert "local/gemma-3-270m" in [m.id for m in route.chain]
    assert route.preferred_model == "anthropic/claude-sonnet-5-5"
    assert any("set ANTHROPIC_API_KEY" in r for r in route.reasons)
    assert route.estimated_cost_usd == 0.0


def test_only_one_provider_configured_substitutes_within_it() -> None:
    registry = make_registry({"OPENAI_API_KEY": "k" * 20})
    route = select_route(_analysis(Category.COMPLEX_CODING, 5, 0.9), RouteOptions(), registry)
    assert route.primary.provider == "openai"
    # a comparable coding model (within 10 points of Claude Sonnet 4), the cheapest such
    assert route.primary.id == "openai/o4-mini"
    assert "openai/o3" in [m.id for m in route.fallbacks]


def test_context_window_excludes_models_that_cannot_hold_the_task(registry_all_keys: Registry) -> None:
    analysis = _analysis(Category.LONG_DOCUMENT, 3, 0.6, estimated_input_tokens=600_000, requires_long_context=True)
    route = select_route(analysis, RouteOptions(), registry_all_keys)
    assert all(m.context_window >= 600_500 for m in route.chain)
    assert any("context" in r for r in route.reasons)


def test_tasks_needing_tools_get_tool_capable_models(registry_no_keys: Registry) -> None:
    route = select_route(
        _analysis(Category.AGENTIC_TOOL_USE, 3, 0.6, requires_tools=True), RouteOptions(), registry_no_keys
    )
    assert all(m.supports_tools for m in route.chain)


def test_unpriced_model_reports_unknown_cost_not_zero(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[models]]\nid = "openai/mystery"\napi_model_id = "mystery"\ntier = 3\ncontext_window = 100000\n'
    )
    registry = make_registry(ALL_KEYS, config_path=config)
    route = select_route(_analysis(Category.CLASSIFICATION), RouteOptions(force_model="openai/mystery"), registry)
    assert route.estimated_cost_usd is None
    assert any("unpriced" in r for r in route.reasons)


def test_selection_is_deterministic(registry_all_keys: Registry) -> None:
    analysis = _analysis(Category.TEXT_GENERATION, 3, 0.55)
    first = select_route(analysis, RouteOptions(), registry_all_keys)
    assert all(select_route(analysis, RouteOptions(), registry_all_keys) == first for _ in range(5))


def test_a_document_too_long_for_every_self_hosted_model_names_the_context_window(registry_no_keys: Registry) -> None:
    analysis = _analysis(Category.LONG_DOCUMENT, 3, 0.5, estimated_input_tokens=75_000)
    with pytest.raises(RoutingError) as raised:
        select_route(analysis, RouteOptions(self_hosted_only=True), registry_no_keys)
    message = str(raised.value)
    assert "needs about 75,500 tokens of context" in message and "holds 32,768" in message
    assert "pip install" not in message  # the runtime is installed; the window is the cause
