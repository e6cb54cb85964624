"""Tool sub-server figures once they run: the host→sub-server hop, code execution, memory search at scale.

Prints only (start-up is `bench/bench_startup.py`). Measures:
- the hub's three sub-servers started in parallel until all list their tools;
- a tool call through the host's hub (host → sub-server over stdio), p50/p99;
- `execute_python("print(1)")` through the hub (a fresh sandboxed interpreter each time), p50/p99;
- `memory_search` p50/p99 with 100,000 stored items (in-process server, real SQLite FTS5 file).

    python bench/bench_tool_servers.py
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.domain.config import load_config
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


async def bench_hub(home: str) -> None:
    """The hub as a running host has it: three spawned sub-servers."""
    env = {"MODEL_ROUTER_HOME": home}
    config = load_config(env=env)
    started = time.perf_counter()
    async with open_tool_hub(config.tool_servers, env, config.data_dir, eager=False) as hub:
        await hub.start()
        ready = (time.perf_counter() - started) * 1000
        running = [name for name, state in hub.status().items() if state["running"]]
        print(f"hub: three sub-servers spawned in parallel, all listing tools: {ready:.0f} ms ({', '.join(running)})")
        await hub.call_tool("memory_store", {"key": "k", "content": "espresso in the pantry"})
        hop = []
        for _ in range(300):
            t0 = time.perf_counter()
            await hub.call_tool("memory_search", {"query": "espresso"})
            hop.append((time.perf_counter() - t0) * 1000)
        _line("tool call host -> sub-server (memory_search)", hop, "target p50 <= 3 ms")
        runs = []
        for _ in range(60):
            t0 = time.perf_counter()
            outcome = await hub.call_tool("execute_python", {"code": "print(1)"})
            runs.append((time.perf_counter() - t0) * 1000)
        assert '"stdout":"1\\n"' in outcome.text.replace(" ", ""), outcome.text
        _line('execute_python("print(1)") through the hub', runs, "target p50 <= 150 ms")


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


async def main() -> None:
    home = tempfile.mkdtemp(prefix="bench-tools-")
    await bench_hub(home)
    await bench_memory(home)


if __name__ == "__main__":
    anyio.run(main)
