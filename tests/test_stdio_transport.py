"""The stdio transport `serve` and the sub-servers get from the MCP SDK: stray output never reaches the wire,
and a regular file works as stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from tests.helpers import wait_until

pytestmark = pytest.mark.slow

CLIENT = {"name": "t", "version": "1"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@pytest.mark.anyio
async def test_stray_output_while_serving_goes_to_stderr_not_the_wire() -> None:
    """A tool that prints, writes to fd 1 and runs a child that prints: stdout carries only JSON-RPC."""
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "stray_output", "arguments": {}}}
    process = await anyio.open_process([sys.executable, "-m", "tests.fixtures.probe_server"])
    assert process.stdin and process.stdout and process.stderr
    wire: list[str] = []
    try:
        await process.stdin.send("".join(json.dumps(m) + "\n" for m in (INIT, INITIALIZED, call)).encode())
        buffer = ""
        with anyio.fail_after(60):
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                wire += lines
                if any('"id":2' in line.replace(" ", "") for line in lines):
                    break
    finally:
        await process.stdin.aclose()
        with anyio.fail_after(30):
            await process.wait()
        errors = "".join([chunk async for chunk in TextReceiveStream(process.stderr)])
    replies = [json.loads(line) for line in wire]  # every line on the wire is a protocol message
    assert replies[-1]["result"]["content"][0]["text"] == "done"
    assert all(stray in errors for stray in ("stray print", "stray write", "stray child"))


def test_serve_writes_to_a_regular_file(tmp_path: Path) -> None:
    """stdout may be a file rather than a pipe (a host logging the session, say): serving still works."""
    messages = [INIT, INITIALIZED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    out = tmp_path / "replies.jsonl"
    with out.open("wb") as stdout:
        server = subprocess.Popen(
            [sys.executable, "-m", "server", "serve"], stdin=subprocess.PIPE, stdout=stdout,
            env={**os.environ, "MODEL_ROUTER_HOME": str(tmp_path)},
        )  # fmt: skip
        assert server.stdin is not None
        server.stdin.write("".join(json.dumps(m) + "\n" for m in messages).encode())
        server.stdin.flush()
        wait_until(lambda: '"id":2' in out.read_text().replace(" ", ""), within=60, what="the tools/list reply")
        server.stdin.close()
        server.wait(timeout=30)
    replies = {reply["id"]: reply for reply in map(json.loads, out.read_text().splitlines())}
    assert {tool["name"] for tool in replies[2]["result"]["tools"]} >= {"route_task", "complete", "cost_report"}
