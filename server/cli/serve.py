"""`model-router serve`: the MCP server over stdio (one host) or streamable HTTP (a shared service)."""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any

from server.cli.common import load_router


def add_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the MCP server",
        description="Run the MCP server over stdio (for one host) or streamable HTTP at /mcp (a shared service; "
        "set MODEL_ROUTER_TOKEN to require 'Authorization: Bearer <token>').",
    )
    serve.add_argument(
        "--transport", choices=["stdio", "streamable-http"], default="stdio", help="MCP transport (default stdio)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.set_defaults(run=run)


def _refuse_an_unusable_store(config: Any) -> None:
    """A replica that cannot reach its store, or finds a schema newer than it knows, stops here with one
    line (`StoreError`) instead of a startup traceback from inside the HTTP server."""
    import anyio

    from server.errors import StoreError
    from server.store import check_store

    status = anyio.run(check_store, config.data_dir, config.store.url or None)
    if status.version > status.known:
        raise StoreError(
            f"the database {status.location} has schema version {status.version}, newer than this "
            f"model-router understands ({status.known}); upgrade model-router on this replica"
        )


def run(args: argparse.Namespace) -> int:
    from server.mcp.app import build_server

    router = load_router(args)
    server = build_server(router)
    # Everything loaded so far (the SDK's types, the registry, the analyser's tables) lives as long as the
    # process: leaving it out of the cyclic collector turns its full collections (pauses of 50-80 ms, which
    # stalled every request in flight) into a few ms.
    gc.freeze()
    if args.transport == "stdio":
        from tool_servers._wire_guard import serve_guarded

        # The SDK's transport (fd 1 points at stderr while serving, stray prints miss the wire) behind a line
        # guard that answers every invalid JSON-RPC request with an error instead of dropping it.
        serve_guarded(lambda: server.run("stdio"))
        return 0
    from server.mcp.http_service import TOKEN_ENV, serve_http

    _refuse_an_unusable_store(router.registry.config)
    serve_http(server, host=args.host, port=args.port, token=os.environ.get(TOKEN_ENV) or None)
    return 0
