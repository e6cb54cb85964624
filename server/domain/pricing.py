"""Cost as a pure function of token counts and registry prices (USD per 1M tokens).

The prices are data: filled from genai-prices by `domain.catalog` when the config loads (or written in a
config file), with the label of their source on each model (`price_source`).

Invariants: amounts are `Decimal` and rounded only for display; an unknown price gives `None` (reported
as unpriced), never 0 and never a guess. Cached input tokens are part of the input count and are billed
at the cached price when the model has one, else at the input price (no cache discount). Past the model's
`long_context_from` input tokens, its long-context prices apply to the whole call.
"""

from __future__ import annotations

from decimal import Decimal

from server.domain.config import ModelConfig

_PER_TOKEN = Decimal(1_000_000)


def _price(value: float | None) -> Decimal | None:
    # str() first: Decimal(0.3) would carry the binary float error into the bill.
    return None if value is None else Decimal(str(value))


def token_cost(
    model: ModelConfig,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
) -> Decimal | None:
    """Exact cost of one call; `input_tokens` includes `cached_input_tokens`, output includes reasoning.

    Past `long_context_from` input tokens the model's long-context prices apply to the whole call (the
    providers' cliff pricing, as genai-prices models it); a long-context price it lacks falls back to the base.
    """
    long = model.long_context_from is not None and input_tokens > model.long_context_from
    input_price = _price(_pick(long, model.long_context_input_price, model.input_price))
    output_price = _price(_pick(long, model.long_context_output_price, model.output_price))
    if input_price is None or output_price is None:
        return None
    cached = min(max(cached_input_tokens, 0), input_tokens)
    cached_price = _price(_pick(long, model.long_context_cached_input_price, model.cached_input_price))
    if cached_price is None:
        cached_price = input_price
    total = ((input_tokens - cached) * input_price + cached * cached_price + output_tokens * output_price) / _PER_TOKEN
    return total


def _pick(long: bool, long_price: float | None, base: float | None) -> float | None:
    return long_price if long and long_price is not None else base


def estimate_cost_usd(model: ModelConfig, input_tokens: int, output_tokens: int) -> float | None:
    """Estimated cost before a call (no cache assumed), as a float for display and JSON."""
    cost = token_cost(model, input_tokens=input_tokens, output_tokens=output_tokens)
    return None if cost is None else float(cost)


def blended_price(model: ModelConfig) -> float:
    """A single per-1M figure for ranking (3:1 input:output); unpriced models rank last."""
    if model.input_price is None or model.output_price is None:
        return float("inf")
    return (3 * model.input_price + model.output_price) / 4
