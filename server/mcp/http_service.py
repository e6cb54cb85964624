"""Service mode: the MCP server over streamable HTTP (path `/mcp`), optionally behind a bearer token.

Binds to loopback unless told otherwise. When `MODEL_ROUTER_TOKEN` is set every request must carry
`Authorization: Bearer <token>`; the comparison is constant-time and the token is never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys

from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("model_router.http")
TOKEN_ENV = "MODEL_ROUTER_TOKEN"


class BearerTokenGuard:
    """Pure ASGI middleware: refuse HTTP requests without the right bearer token (401, JSON body)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        if hmac.compare_digest(supplied, self._expected):
            await self._app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "unauthorized", "message": f"send 'Authorization: Bearer <{TOKEN_ENV}>' with every request"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="model-router"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def build_http_app(mcp: MCPServer, *, host: str, token: str | None) -> ASGIApp:
    """The streamable-HTTP ASGI app at `/mcp`, wrapped in the token guard when a token is given."""
    app: ASGIApp = mcp.streamable_http_app(streamable_http_path="/mcp", host=host)
    return BearerTokenGuard(app, token) if token else app


def serve_http(mcp: MCPServer, *, host: str, port: int, token: str | None) -> None:
    """Run until interrupted."""
    import uvicorn

    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without %s: anyone who can reach this port can spend your budget", host, TOKEN_ENV)
    print(f"model-router: serving MCP on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(build_http_app(mcp, host=host, token=token), host=host, port=port, log_level="warning")
