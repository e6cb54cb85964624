"""`model-router models`: the model registry, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.cli.common import load_router


def add_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="list the model registry", description="List every model.")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from server.routing.router import model_rows

    rows = model_rows(load_router(args).registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':32} {'tier':>4} {'in $/1M':>8} {'out $/1M':>9} {'context':>10} tools available")
    for row in rows:
        available = "yes" if row["available"] else f"no — {row['availability']}"
        print(
            f"{row['id']:32} {row['tier']:>4} {_price(row['input_price_per_million']):>8} "
            f"{_price(row['output_price_per_million']):>9} {row['context_window']:>10,} "
            f"{'yes' if row['supports_tools'] else 'no':>5} {available}"
        )
    return 0


def _price(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
