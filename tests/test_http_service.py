"""Service mode: `serve --transport streamable-http` with the SDK client and the Inspector, token enforced."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-5f2c9a"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "MODEL_ROUTER_HOME": str(tmp_path), "MODEL_ROUTER_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--transport", "streamable-http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_request_without_token_is_refused(http_server: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in [{}, {"Authorization": "Bearer wrong"}]:
        response = httpx2.post(http_server, json=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert "MODEL_ROUTER_TOKEN" in response.json()["message"]
        assert TOKEN not in response.text


@pytest.mark.anyio
async def test_sdk_client_over_http_with_token(http_server: str) -> None:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    async with Client(streamable_http_client(http_server, http_client=client)) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert {"route_task", "complete"} <= names
        result = await mcp.call_tool("route_task", {"task": "What is the capital of France?"})
        assert not result.is_error
        assert result.structured_content["category"] == "qa_retrieval"


def test_inspector_cli_over_http(http_server: str) -> None:
    inspector = ROOT / "node_modules" / ".bin" / "mcp-inspector"
    if not inspector.exists():
        if os.environ.get("CI"):
            pytest.fail("MCP Inspector CLI not installed: .ci/run must run `npm ci` first")
        pytest.skip("MCP Inspector CLI not installed (run `npm ci`)")
    base = [str(inspector), "--cli", http_server, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "route_task" in {t["name"] for t in json.loads(listed.stdout)["tools"]}
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "route_task", "--tool-arg", 'task="Write a haiku"'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["category"] == "text_generation"
    refused = subprocess.run(
        [str(inspector), "--cli", http_server, "--transport", "http", "--method", "tools/list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
