"""`model-router models`: the model registry, as a table or JSON, optionally filtered."""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.cli.common import load_router


def add_parser(sub: Any) -> None:
    models = sub.add_parser(
        "models",
        help="list the model registry",
        description="List the registry's models with their prices, where each price came from, and availability.",
    )
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument("--provider", metavar="ID", help="only this provider's models (e.g. anthropic, groq)")
    models.add_argument("--search", metavar="TEXT", help="only models whose id, name or alias contains TEXT")
    models.add_argument("--available", action="store_true", help="only models callable here (key set, runtime up)")
    models.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from server.routing.router import filter_rows, model_rows

    router = load_router(args)
    rows = filter_rows(
        model_rows(router.registry), provider=args.provider, search=args.search, available=args.available
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':40} {'tier':>4} {'in $/1M':>8} {'out $/1M':>9} {'context':>10} tools available")
    for row in rows:
        available = "yes" if row["available"] else f"no — {row['availability']}"
        print(
            f"{row['id']:40} {row['tier']:>4} {_price(row['input_price_per_million']):>8} "
            f"{_price(row['output_price_per_million']):>9} {row['context_window']:>10,} "
            f"{'yes' if row['supports_tools'] else 'no':>5} {available}"
        )
    sources = sorted({str(row["price_source"]) for row in rows if row["price_source"]})
    print(f"{len(rows)} models; prices (USD per 1M tokens) from: {'; '.join(sources) or '-'}")
    unpriced = [str(row["id"]) for row in rows if row["price_source"] is None]
    if unpriced:
        print(f"unpriced (no catalogue lists a price; costs are reported as unknown): {', '.join(unpriced)}")
    return 0


def _price(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
