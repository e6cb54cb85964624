"""The seeds' three scenarios, end to end through analyser and selector."""

from __future__ import annotations

import anyio

from server.domain.registry import Registry
from server.routing.router import Router
from server.routing.selector import Preference, RouteOptions

RATE_LIMITER = (
    "Write a complete Python implementation of a distributed rate limiter using Redis, with sliding window "
    "algorithm, support for multiple rate limit tiers, and comprehensive unit tests."
)
PROOF = (
    "Prove that the sum of the first n odd numbers equals n squared, and then derive a formula for the sum "
    "of the first n even numbers."
)


def test_capital_of_france_is_cheap_qa(registry_all_keys: Registry) -> None:
    result = anyio.run(Router(registry_all_keys).route, "What is the capital of France?", RouteOptions())
    assert result.category == "qa_retrieval"
    assert result.complexity == 1
    primary = registry_all_keys.resolve(result.primary_model)
    assert primary is not None and 2 <= primary.tier <= 4
    assert result.estimated_cost_usd is not None and result.estimated_cost_usd < 0.0001


def test_redis_rate_limiter_goes_to_a_tier1_coding_model(registry_all_keys: Registry) -> None:
    result = anyio.run(Router(registry_all_keys).route, RATE_LIMITER, RouteOptions())
    assert result.category == "complex_coding"
    assert result.complexity >= 4
    assert result.primary_model == "anthropic/claude-sonnet-5-5"


def test_proof_with_best_quality_goes_to_the_reasoning_specialist(registry_all_keys: Registry) -> None:
    result = anyio.run(Router(registry_all_keys).route, PROOF, RouteOptions(preference=Preference.BEST_QUALITY))
    assert result.category == "deep_reasoning"
    assert result.complexity >= 4
    assert result.primary_model == "openai/gpt-6.1-sol"
    primary = registry_all_keys.resolve("openai/gpt-6.1-sol")
    assert primary is not None and primary.reasoning_model
