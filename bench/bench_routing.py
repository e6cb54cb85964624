"""Routing speed: in-process analyse+select, `route_task` over a real stdio session, and start-up time.

Prints figures only (no assertions). Prompts come from ../shared/eval/dev.jsonl when it is present,
otherwise from a small built-in set (the figures then say so).

    python bench/bench_routing.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
from anyio.streams.text import TextReceiveStream
from mcp import StdioServerParameters
from mcp.client import Client

from server.analysis.analyzers import BuiltinAnalyzer, LearnedAnalyzer
from server.domain.config import load_config
from server.domain.registry import Registry
from server.routing.router import Router
from server.routing.selector import Preference, RouteOptions, select_route

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
FALLBACK_PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that merges overlapping intervals, with unit tests.",
    "Prove that the square root of 2 is irrational.",
    "Classify the sentiment of: 'the food was cold and the waiter rude'.",
    "Summarise the following meeting notes in three bullet points: ...",
]


def bench_accuracy() -> None:
    """Category accuracy and per-category recall of the built-in analyser on dev.jsonl."""
    path = EVAL_DIR / "dev.jsonl"
    if not path.exists():
        print("accuracy: skipped (../shared/eval/dev.jsonl is absent)")
        return
    from server.analysis.local import analyze_task

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    hits: dict[str, list[int]] = {}
    for row in rows:
        got = analyze_task(row["prompt"]).category.value
        hits.setdefault(row["category"], []).append(int(got == row["category"]))
    total = sum(sum(v) for v in hits.values()) / sum(len(v) for v in hits.values())
    print(f"analyser category accuracy on dev.jsonl: {total:.3f} over {len(rows)} prompts")
    for category, values in sorted(hits.items()):
        print(f"  {category:18} recall {sum(values) / len(values):.2f} (n={len(values)})")


def _prompts() -> tuple[list[str], str]:
    path = EVAL_DIR / "dev.jsonl"
    if not path.exists():
        return FALLBACK_PROMPTS, "built-in prompts (../shared/eval absent)"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [r["prompt"] for r in rows if len(r["prompt"]) < 4000]
    return prompts, f"{len(prompts)} dev.jsonl prompts under 4k characters"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_in_process(prompts: list[str], rounds: int) -> None:
    env = {k: v for k, v in os.environ.items()} | {
        "OPENAI_API_KEY": "bench",
        "ANTHROPIC_API_KEY": "bench",
        "GEMINI_API_KEY": "bench",
        "TOGETHER_API_KEY": "bench",
    }
    router = Router(Registry(load_config(env=env), env))
    analyzer = router.analyzer
    if not isinstance(analyzer, BuiltinAnalyzer | LearnedAnalyzer):
        print(f"in-process analyse+select: skipped, the configured analyser ({analyzer.version}) is not in-process")
        return
    prefs = list(Preference)
    samples: list[float] = []
    for _ in range(rounds):
        for i, prompt in enumerate(prompts):
            options = RouteOptions(preference=prefs[i % 3])
            start = time.perf_counter()
            select_route(analyzer.analyze_now(prompt), options, router.registry, analyzer.thresholds)
            samples.append((time.perf_counter() - start) * 1000)
    print(
        f"in-process analyse+select: p50 {_pct(samples, 0.5):.3f} ms, p99 {_pct(samples, 0.99):.3f} ms "
        f"over {len(samples)} calls (target p50 <= 0.5 ms)"
    )


def _serve_env(*, tool_servers: bool) -> dict[str, str]:
    """A fresh data dir; without tool servers for the latency loops: their one-time start (each imports the
    MCP SDK, ~1.3 s of CPU here; see bench_tool_servers.py) would share the cores with the measurement, and
    `route_task` never calls them."""
    home = tempfile.mkdtemp(prefix="bench-home-")
    env = {"MODEL_ROUTER_HOME": home}
    if not tool_servers:
        config = Path(home) / "router.toml"
        config.write_text(
            "".join(f"[tool_servers.{n}]\nenabled = false\n" for n in ("web_search", "code_exec", "memory"))
        )
        env["MODEL_ROUTER_CONFIG"] = str(config)
    return env


async def bench_stdio(prompts: list[str], calls: int) -> None:
    """Through the MCP SDK's own `Client` (what most Python hosts use), which also validates every result
    against the tool's output schema with `jsonschema`; its `ping` shows the floor of that client."""
    serve = [sys.executable, "-m", "server", "serve"]
    params = StdioServerParameters(command=serve[0], args=serve[1:], env=_serve_env(tool_servers=True))
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:  # the default configuration, sub-servers included
        await client.list_tools()
        ready = (time.perf_counter() - start) * 1000
    params = StdioServerParameters(command=serve[0], args=serve[1:], env=_serve_env(tool_servers=False))
    async with Client(params, mode="legacy") as client:
        for prompt in prompts[:20]:  # warm-up
            await client.call_tool("route_task", {"task": prompt})
        samples = []
        for i in range(calls):
            t0 = time.perf_counter()
            result = await client.call_tool("route_task", {"task": prompts[i % len(prompts)]})
            samples.append((time.perf_counter() - t0) * 1000)
            if result.is_error:
                raise SystemExit(f"route_task failed: {result.content}")
        pings = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await client.send_ping()
            pings.append((time.perf_counter() - t0) * 1000)
    print(f"spawn `serve` -> tools/list answered: {ready:.0f} ms (target <= 1500 ms)")
    print(
        f"route_task over stdio, SDK Client: p50 {_pct(samples, 0.5):.2f} ms, p99 {_pct(samples, 0.99):.2f} ms "
        f"over {calls} calls (its ping: p50 {_pct(pings, 0.5):.2f} ms)"
    )


async def bench_stdio_wire(prompts: list[str], calls: int) -> None:
    """The server's own round trip: a minimal client writing JSON-RPC lines on the pipe and reading replies."""
    process = await anyio.open_process(
        [sys.executable, "-m", "server", "serve"], env={**os.environ, **_serve_env(tool_servers=False)}, stderr=None
    )
    assert process.stdin is not None and process.stdout is not None
    lines = TextReceiveStream(process.stdout)
    buffer = ""

    async def ask(message_id: int, method: str, params: dict[str, object]) -> dict[str, object]:
        nonlocal buffer
        await process.stdin.send((json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method,
                                              "params": params}) + "\n").encode())  # fmt: skip
        while True:
            while "\n" not in buffer:
                buffer += await lines.receive()
            line, buffer = buffer.split("\n", 1)
            reply = json.loads(line)
            if reply.get("id") == message_id:
                return reply

    try:
        await ask(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})  # fmt: skip
        await process.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        samples = []
        for i in range(calls + 20):
            t0 = time.perf_counter()
            reply = await ask(
                i + 1, "tools/call", {"name": "route_task", "arguments": {"task": prompts[i % len(prompts)]}}
            )
            if i >= 20:  # the first calls warm caches
                samples.append((time.perf_counter() - t0) * 1000)
            if "error" in reply or reply["result"].get("isError"):  # type: ignore[union-attr]
                raise SystemExit(f"route_task failed: {reply}")
    finally:
        await process.stdin.aclose()
        await process.wait()
    print(
        f"route_task over stdio, JSON-RPC lines: p50 {_pct(samples, 0.5):.2f} ms, p99 {_pct(samples, 0.99):.2f} ms "
        f"over {calls} calls (target p50 <= 2 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the prompts in-process")
    parser.add_argument("--calls", type=int, default=1000, help="route_task calls over stdio")
    args = parser.parse_args()
    prompts, source = _prompts()
    print(f"prompts: {source}")
    bench_accuracy()
    bench_in_process(prompts, args.rounds)
    anyio.run(bench_stdio, prompts, args.calls)
    anyio.run(bench_stdio_wire, prompts, args.calls)


if __name__ == "__main__":
    main()
