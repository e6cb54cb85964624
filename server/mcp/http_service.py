"""Service mode: the MCP server over streamable HTTP (path `/mcp`), optionally behind a bearer token.

Binds to loopback unless told otherwise. When `MODEL_ROUTER_TOKEN` is set every request must carry
`Authorization: Bearer <token>`; the comparison is constant-time and the token is never logged. A POSTed
JSON-RPC request that is invalid gets one error reply with its id (HTTP 400), as over stdio
(`tool_servers/_wire_guard.py`); the SDK would answer some with id null and accept a request whose id it
cannot read as a notification (HTTP 202, no reply).
"""

from __future__ import annotations

import hmac
import json
import logging
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tool_servers._wire_guard import check_line

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


class JsonRpcGuard:
    """Pure ASGI middleware: answer an invalid JSON-RPC request POSTed to the endpoint with one error (HTTP 400);
    pass everything else on with its body unchanged. Bodies over the SDK's size limit go straight to the SDK,
    which refuses them."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> None:
        self._app = app
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more and size <= self._max_body:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        reply = None if more or size > self._max_body else check_line(b"".join(m.get("body", b"") for m in messages))
        if reply:
            await _send_json(send, 400, reply, [])
            return
        buffered = iter(messages)

        async def replay() -> Message:
            return next(buffered, None) or await receive()

        await self._app(scope, replay, send)


async def _send_json(send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build_http_app(mcp: MCPServer, *, host: str, token: str | None) -> ASGIApp:
    """The streamable-HTTP ASGI app at `/mcp`, wrapped in the token guard when a token is given."""
    app: ASGIApp = JsonRpcGuard(mcp.streamable_http_app(streamable_http_path="/mcp", host=host))
    return BearerTokenGuard(app, token) if token else app


def serve_http(mcp: MCPServer, *, host: str, port: int, token: str | None) -> None:
    """Run until interrupted."""
    import uvicorn

    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without %s: anyone who can reach this port can spend your budget", host, TOKEN_ENV)
    print(f"model-router: serving MCP on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(build_http_app(mcp, host=host, token=token), host=host, port=port, log_level="warning")
