"""`model-router prices update`: fetch genai-prices' newest price data into the data dir.

The download is checked with genai-prices' own reader before it replaces anything, and is written
atomically: a failed fetch, an HTTP error or data this genai-prices version cannot read leaves the prices
in use exactly as they were and says so. Costs already in the ledger never change (each row keeps its cost
and the label of the price data that priced it); calls made after the update are priced with the new data.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

from server.errors import ConfigError, PriceUpdateFailed

URL_ENV = "MODEL_ROUTER_PRICES_URL"
FETCH_TIMEOUT_S = 30.0


def add_parsers(sub: Any) -> None:
    prices = sub.add_parser(
        "prices",
        help="the price data models are priced with",
        description="prices update [--url URL]: fetch genai-prices' newest data; on failure the old data stays.",
    )
    actions = prices.add_subparsers(dest="prices_command", required=True, metavar="ACTION")
    update = actions.add_parser(
        "update",
        help="fetch genai-prices' newest price data (the bundled snapshot stays the fallback)",
        description="Fetch the newest genai-prices data; on any failure the prices in use stay unchanged.",
    )
    update.add_argument("--url", help=f"where to fetch from (default: ${URL_ENV}, else genai-prices' own URL)")
    update.set_defaults(run=run_update)


def run_update(args: argparse.Namespace) -> int:
    from server.domain.catalog import load_catalog, parse_price_data, save_price_data
    from server.domain.config import load_config

    before = load_config(args.config)
    url = args.url or os.environ.get(URL_ENV) or _default_url()
    content = _fetch(url, before.price_table_version)
    try:
        providers = parse_price_data(content)
    except ConfigError as exc:
        raise PriceUpdateFailed(f"{exc}; still using {before.price_table_version}") from None
    save_price_data(before.data_dir, content, url, datetime.now(UTC))
    after = load_config(args.config, catalog=load_catalog(before.data_dir))
    print(f"price data updated from {url}: {providers} providers; now using {after.price_table_version}")
    old = {m.id: (m.input_price, m.output_price) for m in before.models}
    changed = [m for m in after.models if old.get(m.id) != (m.input_price, m.output_price)]
    for model in changed:
        was_in, was_out = old.get(model.id, (None, None))
        print(f"  {model.id}: ${_p(was_in)}/${_p(was_out)} -> ${_p(model.input_price)}/${_p(model.output_price)}")
    print(f"{len(changed)} registry model(s) changed price; logged costs are unchanged")
    return 0


def _fetch(url: str, in_use: str) -> bytes:
    import httpx

    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise PriceUpdateFailed(f"cannot fetch {url}: {exc or type(exc).__name__}; still using {in_use}") from exc
    if response.status_code != 200:
        raise PriceUpdateFailed(f"{url} answered HTTP {response.status_code}; still using {in_use}")
    return response.content


def _default_url() -> str:
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    return DEFAULT_UPDATE_URL


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
