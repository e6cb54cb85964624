"""The router's own overhead: `complete` versus calling the same fake provider directly with the SDK.

A fake OpenAI-compatible API on loopback, in its own process (as a real provider would be: its CPU is not
the router's), answers every request after a fixed 50 ms. Both paths run in this process at 1 and at 50
concurrent requests, alternating over several rounds; printed: p50/p99 latency of each path, the
difference, and the throughput ratio per round and its median. Both run on the event loop `serve` uses
(asyncio, through the SDK's own runner). Figures only, no assertions.

    python bench/bench_overhead.py [--requests 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.domain.config import load_config
from server.domain.registry import Registry
from server.execution.completion import CompleteRequest
from server.execution.runtime import open_runtime
from server.routing.router import Router
from server.routing.selector import RouteOptions
from server.tools.toolbox import NoTools

LATENCY_S = 0.05


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(concurrency: int, total: int, call) -> tuple[list[float], float]:
    samples: list[float] = []
    limiter = anyio.Semaphore(concurrency)

    async def one() -> None:
        async with limiter:
            start = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(total):
            tg.start_soon(one)
    return samples, total / (time.perf_counter() - began)


ROOT = Path(__file__).resolve().parents[1]


async def main(total: int, rounds: int) -> None:
    fake = subprocess.Popen(  # noqa: ASYNC220 (once, before anything is measured)
        [sys.executable, "-m", "tests.fakes.providers", "--delay-ms", str(LATENCY_S * 1000)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert fake.stdout is not None
        port = int(fake.stdout.readline().split()[1])
        await _compare(f"http://127.0.0.1:{port}/v1", total, rounds)
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(timeout=10)


async def _compare(fake_url: str, total: int, rounds: int) -> None:
    home = tempfile.mkdtemp(prefix="bench-home-")
    config_file = Path(home) / "router.toml"
    config_file.write_text(f'[providers.openai]\nbase_url = "{fake_url}"\n')
    env = {"MODEL_ROUTER_HOME": home, "OPENAI_API_KEY": "bench-key-000000"}
    router = Router(Registry(load_config(config_file, env=env), env))
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        httpx2.AsyncClient(limits=limits) as client,
        open_runtime(router, env, toolbox=NoTools(), http_client=client) as runtime,
    ):
        direct = openai.AsyncOpenAI(api_key="bench", base_url=fake_url, http_client=client, max_retries=0)
        request = CompleteRequest("What is the capital of France?", RouteOptions(force_model="openai/gpt-4.1"),
                                  max_tokens=16, enable_tools=False)  # fmt: skip

        async def via_router() -> None:
            await runtime.completion.complete(request)

        async def via_sdk() -> None:
            messages = [{"role": "user", "content": "What is the capital of France?"}]
            await direct.chat.completions.create(model="gpt-4.1", max_tokens=16, messages=messages)

        await _run(4, 20, via_router)  # warm-up: imports, connections, SQLite
        await _run(4, 20, via_sdk)
        gc.freeze()  # as `model-router serve` does once started
        for concurrency in (1, 50):
            n = total if concurrency > 1 else max(total // 4, 50)
            # Alternate the two paths over several rounds, so drift on a shared machine hits both alike.
            sdk: list[float] = []
            routed: list[float] = []
            ratios: list[float] = []
            for _ in range(rounds):
                sdk_part, sdk_rate = await _run(concurrency, n, via_sdk)
                routed_part, routed_rate = await _run(concurrency, n, via_router)
                sdk += sdk_part
                routed += routed_part
                ratios.append(routed_rate / sdk_rate)
            print(f"concurrency {concurrency:>2}, {rounds} x {n} requests per path, provider latency "
                  f"{LATENCY_S * 1000:.0f} ms")  # fmt: skip
            print(f"  direct SDK : p50 {_pct(sdk, 0.5):7.2f} ms  p99 {_pct(sdk, 0.99):7.2f} ms")
            print(f"  complete   : p50 {_pct(routed, 0.5):7.2f} ms  p99 {_pct(routed, 0.99):7.2f} ms")
            print(f"  overhead   : p50 {_pct(routed, .5) - _pct(sdk, .5):+7.2f} ms  "
                  f"p99 {_pct(routed, .99) - _pct(sdk, .99):+7.2f} ms  throughput ratio median "
                  f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
                  "target >= 0.9 at 50)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per path per round at concurrency 50")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per concurrency level")
    args = parser.parse_args()
    os.environ.setdefault("MODEL_ROUTER_HOME", tempfile.mkdtemp())
    anyio.run(main, args.requests, args.rounds)  # asyncio, as `model-router serve` runs; both paths share it
