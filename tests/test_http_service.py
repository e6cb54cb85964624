"""Service mode: `serve --transport streamable-http` with the SDK client and the Inspector, token enforced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.helpers import accepting, free_port, inspector, wait_until

pytestmark = pytest.mark.slow
TOKEN = "test-token-5f2c9a"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "MODEL_ROUTER_HOME": str(tmp_path), "MODEL_ROUTER_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--transport", "streamable-http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    wait_until(accepting(port, proc), within=60, what=f"serve accepting on port {port}")
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
    base = [http_server, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
    listed = inspector(*base, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert "route_task" in {t["name"] for t in json.loads(listed.stdout)["tools"]}
    call = ["--method", "tools/call", "--tool-name", "route_task", "--tool-arg", 'task="Write a haiku"']
    called = inspector(*base, *call)
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["category"] == "text_generation"
    refused = inspector(http_server, "--transport", "http", "--method", "tools/list")
    assert refused.returncode != 0
