from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Handler = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LoopbackHTTP:
    """A real HTTP server on 127.0.0.1 whose responses a test scripts per path; it logs every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers)))
                route = outer.routes.get(self.path.split("?")[0])
                status, headers, body = route(self) if route else (404, {}, b"not found")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def json(self, path: str, payload: object, status: int = 200) -> None:
        self.routes[path] = lambda _: (status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    def html(self, path: str, body: str) -> None:
        self.routes[path] = lambda _: (200, {"Content-Type": "text/html; charset=utf-8"}, body.encode())

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = lambda _: (302, {"Location": location}, b"")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def http() -> Iterator[LoopbackHTTP]:
    server = LoopbackHTTP()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
