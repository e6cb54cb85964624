"""The `model-router` parser and entry point: global flags here, each command group in its own module.

Every command loads the configuration once (`--config` or `$MODEL_ROUTER_CONFIG` over the shipped
defaults). Data goes to stdout (`--json` where it is data); diagnostics and errors go to stderr with a
non-zero exit code and a message saying what to fix — never a traceback for an anticipated problem.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
from collections.abc import Sequence

from server import __version__
from server.cli import analysis, database, ledger, models, prices, serve, setup, tasks
from server.cli.common import EXIT_FAILURE
from server.errors import RouterError
from server.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-router",
        description="An MCP server that sends each LLM task to the smallest model that can do it well.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file (default: $MODEL_ROUTER_CONFIG)")
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(sub)
    tasks.add_parsers(sub)  # route, complete
    models.add_parser(sub)
    prices.add_parsers(sub)  # prices update
    analysis.add_parsers(sub)  # analyze, eval, train
    ledger.add_parsers(sub)  # report, decisions
    setup.add_parsers(sub)  # doctor, claude-config
    database.add_parsers(sub)  # db upgrade, db check
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `model-router` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    # A native crash (llama.cpp, SQLite) ends the process with no Python error; this leaves the Python stack
    # of every thread on stderr, the log, so the report says which call it was.
    faulthandler.enable(file=sys.stderr)
    try:
        return int(args.run(args))
    except RouterError as exc:
        print(f"model-router: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
