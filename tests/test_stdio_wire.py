"""The stdio transport of `serve`: pipe lines read on the event loop, oversized lines skipped, files served too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from server.mcp import pipes

CLIENT = {"name": "t", "version": "1"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip


@pytest.mark.anyio
async def test_an_oversized_line_is_dropped_and_the_next_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipes, "MAX_LINE_BYTES", 1024)
    read_fd, write_fd = os.pipe()
    payload = b"x" * 5000 + b"\n" + b'{"ok": true}\n'

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)

    reader = await pipes.LineReader.open(read_fd)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, feed)
            lines = [line async for line in reader]
    finally:
        reader.close()
    assert lines == ['{"ok": true}\n']


def test_serve_writes_to_a_regular_file_through_the_sdk_transport(tmp_path: Path) -> None:
    """A file (not a pipe) cannot be watched by the event loop, so the SDK's own transport serves it."""
    messages = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    out = tmp_path / "replies.jsonl"
    with out.open("wb") as stdout:
        server = subprocess.Popen(
            [sys.executable, "-m", "server", "serve"], stdin=subprocess.PIPE, stdout=stdout,
            env={**os.environ, "MODEL_ROUTER_HOME": str(tmp_path)},
        )  # fmt: skip
        assert server.stdin is not None
        server.stdin.write("".join(json.dumps(m) + "\n" for m in messages).encode())
        server.stdin.flush()
        deadline = time.monotonic() + 60
        while '"id":2' not in out.read_text().replace(" ", "") and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stdin.close()
        server.wait(timeout=30)
    replies = {reply["id"]: reply for reply in map(json.loads, out.read_text().splitlines())}
    assert {tool["name"] for tool in replies[2]["result"]["tools"]} >= {"route_task", "complete", "cost_report"}


def test_a_stray_print_while_serving_does_not_reach_the_wire(tmp_path: Path) -> None:
    """fd 1 points at stderr while serving: only protocol lines come out on stdout."""
    script = (
        "import sys\n"
        "from server.mcp.stdio_wire import _claimed_stdio\n"
        "import anyio, os\n"
        "async def main():\n"
        "    async with _claimed_stdio() as (lines, out):\n"
        "        os.write(1, b'stray\\n')\n"
        "        print('also stray', flush=True)\n"
        "        async for line in lines:\n"
        "            await out.write(line.upper())\n"
        "            await out.flush()\n"
        "anyio.run(main)\n"
        "print('after', flush=True)\n"  # fd 1 is the wire again once the transport is closed
    )
    done = subprocess.run([sys.executable, "-c", script], input=b"hello\n", capture_output=True, timeout=60)
    assert done.stdout.decode() == "HELLO\nafter\n"
    assert "stray" in done.stderr.decode() and "also stray" in done.stderr.decode()
