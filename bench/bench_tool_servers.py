"""Tool sub-server figures: start-up, the host→sub-server hop, code execution, memory search at scale.

Prints only. Measures:
- from spawning `model-router serve` until it answers `tools/list` and all three sub-servers list their tools
  (the host has them forked by its fork server, or spawns them with `MODEL_ROUTER_FORKSERVER=0`; both
  measured, interleaved, in one run);
- a tool call through the host's hub (host → sub-server over stdio), p50/p99;
- `execute_python("print(1)")` through the hub (a fresh sandboxed interpreter each time), p50/p99;
- `memory_search` p50/p99 with 100,000 stored items (in-process server, real SQLite FTS5 file).

    python bench/bench_tool_servers.py
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import anyio
from anyio.streams.text import TextReceiveStream
from mcp.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.domain.config import load_config
from server.tools.forked_children import ForkServer
from server.tools.hub import open_tool_hub
from tool_servers.memory.server import build_server as build_memory
from tool_servers.memory.store import MemoryStore

# A Zipf-like vocabulary of 20,000 made-up words: like real notes, a few words are common, most are rare.
_RNG = random.Random(11)
VOCABULARY = ["".join(_RNG.choices("abcdefghijklmnopqrstuvwxyz", k=_RNG.randint(3, 9))) for _ in range(20_000)]
CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))


def _words(rng: random.Random, k: int) -> str:
    return " ".join(rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=k))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(label: str, samples: list[float], target: str) -> None:
    print(f"{label}: p50 {_pct(samples, 0.5):.2f} ms, p99 {_pct(samples, 0.99):.2f} ms over {len(samples)} ({target})")


async def bench_hub(home: str, forked: bool) -> None:
    """The hub inside a running host, its children forked (as `serve` runs them) or spawned."""
    env = {"MODEL_ROUTER_HOME": home}
    config = load_config(env=env)
    forkserver = ForkServer.start() if forked else None
    how = "forked" if forkserver is not None else "spawned"
    if forkserver is not None:
        await anyio.sleep(3)  # let it finish importing: `serve` starts it long before the hub
    started = time.perf_counter()
    async with open_tool_hub(config.tool_servers, env, config.data_dir, eager=False, forkserver=forkserver) as hub:
        await hub.start()
        ready = (time.perf_counter() - started) * 1000
        running = [name for name, state in hub.status().items() if state["running"]]
        print(f"[{how}] hub inside a running host: three sub-servers started in parallel, all listing tools: "
              f"{ready:.0f} ms ({', '.join(running)})")  # fmt: skip
        await hub.call_tool("memory_store", {"key": "k", "content": "espresso in the pantry"})
        hop = []
        for _ in range(300):
            t0 = time.perf_counter()
            await hub.call_tool("memory_search", {"query": "espresso"})
            hop.append((time.perf_counter() - t0) * 1000)
        _line(f"[{how}] tool call host -> sub-server (memory_search)", hop, "target p50 <= 3 ms")
        runs = []
        for _ in range(60):
            t0 = time.perf_counter()
            outcome = await hub.call_tool("execute_python", {"code": "print(1)"})
            runs.append((time.perf_counter() - t0) * 1000)
        assert '"stdout":"1\\n"' in outcome.text.replace(" ", ""), outcome.text
        _line(f'[{how}] execute_python("print(1)") through the hub', runs, "target p50 <= 150 ms")
    if forkserver is not None:
        forkserver.close()


def _fill(path: Path, count: int) -> None:
    MemoryStore(path)
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    with conn:
        rows = [(f"item-{i}", _words(rng, 40), "{}", 0.0, 0.0) for i in range(count)]
        conn.executemany("INSERT INTO items (key, content, metadata, created_at, updated_at) VALUES (?,?,?,?,?)", rows)
        conn.execute("INSERT INTO items_fts (rowid, key, content) SELECT rowid, key, content FROM items")
    conn.close()


async def bench_memory(home: str, count: int = 100_000) -> None:
    path = Path(home) / "memory-bench.sqlite3"
    started = time.perf_counter()
    _fill(path, count)
    print(f"memory: {count:,} items loaded in {time.perf_counter() - started:.1f} s")
    rng = random.Random(3)
    async with Client(build_memory(MemoryStore(path))) as client:
        samples = []
        for _ in range(200):
            query = _words(rng, 3)
            t0 = time.perf_counter()
            result = await client.call_tool("memory_search", {"query": query, "top_k": 5})
            samples.append((time.perf_counter() - t0) * 1000)
            assert not result.is_error
    _line(f"memory_search with {count:,} items", samples, "target p50 <= 20 ms")


async def serve_ready(forked: bool) -> tuple[float, float]:
    """Ms from spawn to: the host answering `tools/list`; then all three sub-servers' "ready" lines on stderr."""
    home = tempfile.mkdtemp(prefix="bench-serve-")
    env = {**os.environ, "MODEL_ROUTER_HOME": home, "MODEL_ROUTER_FORKSERVER": "1" if forked else "0"}
    started = time.perf_counter()
    process = await anyio.open_process([sys.executable, "-m", "server", "--log-level", "INFO", "serve"], env=env)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
             "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}  # fmt: skip
    await process.stdin.send((json.dumps(hello) + "\n").encode())
    await process.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    await process.stdin.send(b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}\n')
    host_ready = 0.0
    ready: set[str] = set()

    async def watch_stdout() -> None:
        nonlocal host_ready
        seen = ""
        async for chunk in TextReceiveStream(process.stdout):  # type: ignore[arg-type]
            seen += chunk
            if '"id":2' in seen.replace(" ", ""):
                host_ready = (time.perf_counter() - started) * 1000
                return

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_stdout)
                log = ""
                async for chunk in TextReceiveStream(process.stderr):
                    log += chunk
                    ready.update(name for name in ("web_search", "code_exec", "memory")
                                 if f"tool server {name} ready" in log)  # fmt: skip
                    if len(ready) == 3:
                        break
        total = (time.perf_counter() - started) * 1000
    finally:
        await process.stdin.aclose()
        await process.wait()
    return host_ready, total


async def bench_serve_ready(rounds: int = 5) -> None:
    """Start-up with the fork server (the default) and with it off (each sub-server spawned), interleaved."""
    figures: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for forked in (True, False):
            figures[forked].append(await serve_ready(forked))
    for forked, label in ((True, "fork server (default)"), (False, "MODEL_ROUTER_FORKSERVER=0, spawned")):
        hosts = [host for host, _ in figures[forked]]
        totals = [total for _, total in figures[forked]]
        print(f"spawn `serve` -> host answering tools/list, {label}: median {_pct(hosts, 0.5):.0f} ms; "
              f"host + three sub-servers ready: median {_pct(totals, 0.5):.0f} ms, worst {max(totals):.0f} ms "
              f"over {rounds} (target <= 1500 ms)")  # fmt: skip
    ratio = _pct([t for _, t in figures[False]], 0.5) / _pct([t for _, t in figures[True]], 0.5)
    print(f"  fork server start-up is {ratio:.1f}x faster than spawning in this run")


async def main() -> None:
    await bench_serve_ready()
    home = tempfile.mkdtemp(prefix="bench-tools-")
    await bench_hub(home, forked=True)
    await bench_hub(tempfile.mkdtemp(prefix="bench-tools-"), forked=False)
    await bench_memory(home)


if __name__ == "__main__":
    # The event loop `model-router serve` runs on (uvloop where installed).
    anyio.run(main, backend_options={"use_uvloop": importlib.util.find_spec("uvloop") is not None})
