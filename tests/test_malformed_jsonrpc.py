"""Malformed JSON-RPC over real stdio: the host (`model-router serve`) and each sub-server answer every invalid
request that carries an id with exactly one error, stay silent for notifications, and keep serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import anyio
import httpx2
import pytest
from anyio.streams.text import TextReceiveStream

from tests.helpers import accepting, cli_env, free_port, wait_until

pytestmark = pytest.mark.slow

CLIENT = {"name": "t", "version": "1"}
INIT = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CALL = '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"x","arguments":{"k":"%s"}}}'

# (line, the id the reply must carry, the error code) — one reply each
ANSWERED: list[tuple[str, Any, int]] = [
    ('{"jsonrpc":"1.0","id":1,"method":"ping"}', 1, -32600),
    ('{"jsonrpc":"2.0","id":2,"method":"ping","params":"x"}', 2, -32602),
    (CALL % (3, "\\ud800"), 3, -32602),  # a lone surrogate in an argument
    ('{"jsonrpc":"2.0","id":4}', 4, -32600),  # no method
    ('{"jsonrpc":"2.0","id":5,"method":5}', 5, -32600),
    ('{"jsonrpc":"2.0","id":"six","method":["ping"]}', "six", -32600),
    ('{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', None, -32600),  # an id that cannot be read
    ('{"jsonrpc":"2.0","id":1.5,"method":"ping"}', None, -32600),
    ('{"jsonrpc":"2.0","id":true,"method":"ping"}', None, -32600),
    ('{"jsonrpc":"2.0","id":8,"method":"pi', None, -32700),  # truncated JSON
    ("[1, 2]", None, -32600),
    ('{"jsonrpc":"2.0","id":9,"method":"ping","params":[1]}', 9, -32602),
]
SILENT = [  # notifications and responses are never answered
    '{"jsonrpc":"1.0","method":"notifications/initialized"}',
    '{"jsonrpc":"2.0","method":"notifications/progress","params":"x"}',
    '{"jsonrpc":"2.0","id":77,"result":"not an object"}',
    "",
]
ALIVE = {"jsonrpc": "2.0", "id": "alive", "method": "ping"}


def _servers(tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    sub_env = {"MEMORY_DB": str(tmp / "memory.db"), "PYTHONPATH": str(Path.cwd())}
    return {
        "host": ([sys.executable, "-m", "server", "serve"], cli_env(tmp)),
        "memory": ([sys.executable, "-m", "tool_servers.memory"], sub_env),
        "web_search": ([sys.executable, "-m", "tool_servers.web_search"], sub_env),
        "code_exec": ([sys.executable, "-m", "tool_servers.code_exec"], sub_env),
    }


async def _exchange(command: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """Send the lines after the handshake, then a ping; every message on stdout up to the ping's answer."""
    lines = [json.dumps(INIT), json.dumps(INITIALIZED), *(line for line, _, _ in ANSWERED), *SILENT, json.dumps(ALIVE)]
    process = await anyio.open_process(command, env=env)
    assert process.stdin and process.stdout
    received: list[dict[str, Any]] = []
    try:
        await process.stdin.send(("\n".join(lines) + "\n").encode())
        buffer = ""
        with anyio.fail_after(60):  # a bound for a broken server, not a timing assertion
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                *complete, buffer = buffer.split("\n")
                received += [json.loads(line) for line in complete if line.strip()]
                if any(message.get("id") == "alive" for message in received):
                    break
    finally:
        process.kill()
        await process.aclose()
    return received


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["host", "memory", "web_search", "code_exec"])
async def test_each_invalid_request_gets_exactly_one_error_reply(tmp_path: Path, name: str) -> None:
    command, env = _servers(tmp_path)[name]
    received = await _exchange(command, env)

    answers = [m for m in received if m.get("id") not in ("init", "alive")]
    assert len(answers) == len(ANSWERED), json.dumps(answers, indent=1)  # one each; none for SILENT
    by_id: dict[Any, list[int]] = {}
    for message in answers:
        assert set(message) == {"jsonrpc", "id", "error"} and message["jsonrpc"] == "2.0"
        assert message["error"]["message"], message  # every error says what is wrong
        by_id.setdefault(message["id"], []).append(message["error"]["code"])
    expected: dict[Any, list[int]] = {}
    for _, request_id, code in ANSWERED:
        expected.setdefault(request_id, []).append(code)
    assert {k: sorted(v) for k, v in by_id.items()} == {k: sorted(v) for k, v in expected.items()}
    assert [m for m in received if m.get("id") == "alive"] == [{"jsonrpc": "2.0", "id": "alive", "result": {}}]


def test_over_streamable_http_each_invalid_request_gets_its_error(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--transport", "streamable-http", "--port", str(port)]
    process = subprocess.Popen(command, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    try:
        wait_until(accepting(port, process), within=60, what=f"serve accepting on port {port}")
        opened = httpx2.post(url, json=INIT, headers=headers, timeout=30)
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        httpx2.post(url, json=INITIALIZED, headers=session, timeout=30)
        replies = [
            (httpx2.post(url, content=line, headers=session, timeout=30), rid, code) for line, rid, code in ANSWERED
        ]
        alive = httpx2.post(url, json=ALIVE, headers=session, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)
    for response, request_id, code in replies:
        assert response.status_code == 400, response.text
        assert response.json() == {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": ANY}}
    assert alive.status_code == 200 and '"id":"alive"' in alive.text
