"""`complete` through 1 and through 3 `serve --transport streamable-http` replicas sharing one PostgreSQL.

A fake OpenAI-compatible API in its own process answers every request after 50 ms; a throwaway local
PostgreSQL (as the test suite starts it) holds each run's store, a fresh database per run. The calls are
spread round-robin over the replicas' MCP clients at a fixed concurrency. Printed per run: throughput,
p50/p99 latency, and p50/p99 overhead (latency minus the provider's 50 ms). Figures only; on a machine
with fewer cores than replicas the replicas share the CPU, which the figures then show.

    python bench/bench_replicas.py [--requests 300] [--concurrency 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers import accepting, free_port, wait_until  # noqa: E402
from tests.pgserver import PostgresServer, find_bindir  # noqa: E402

LATENCY_MS = 50.0
TOKEN = "bench-token-0000"
NO_TOOLS = "".join(f"[tool_servers.{name}]\nenabled = false\n" for name in ("web_search", "code_exec", "memory"))


def start_replicas(count: int, url: str, config: Path, home: Path) -> list[tuple[subprocess.Popen[str], int]]:
    started = []
    for index in range(count):
        port = free_port()
        env = {**os.environ, "MODEL_ROUTER_HOME": str(home / f"r{index}"), "MODEL_ROUTER_CONFIG": str(config),
               "MODEL_ROUTER_DATABASE_URL": url, "MODEL_ROUTER_TOKEN": TOKEN,
               "OPENAI_API_KEY": "bench-key-000"}  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--transport", "streamable-http",
                                 "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        started.append((proc, port))
    for proc, port in started:
        wait_until(accepting(port, proc), within=120, what=f"replica on port {port} listening")
    return started


async def drive(ports: list[int], requests: int, concurrency: int) -> tuple[list[float], float]:
    samples: list[float] = []
    limiter = anyio.Semaphore(concurrency)
    args = {"task": "What is the capital of France?", "force_model": "openai/gpt-4.1", "enable_tools": False,
            "max_tokens": 16}  # fmt: skip
    async with AsyncExitStack() as stack:
        clients: list[Client] = []
        for port in ports:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
            url = f"http://127.0.0.1:{port}/mcp"
            clients.append(await stack.enter_async_context(Client(streamable_http_client(url, http_client=http))))

        async def one(i: int) -> None:
            async with limiter:
                started = time.perf_counter()
                result = await clients[i % len(clients)].call_tool("complete", args)
                assert not result.is_error, result.content
                samples.append((time.perf_counter() - started) * 1000)

        for i in range(len(clients) * 4):  # warm-up: connections, first routes
            await one(i)
        samples.clear()
        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(requests):
                tg.start_soon(one, i)
        elapsed = time.perf_counter() - began
    return samples, requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("needs Debian's postgresql binaries (apt-get install postgresql)")
    server = PostgresServer(bindir)
    server.start()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.providers", "--delay-ms", str(LATENCY_MS)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert fake.stdout is not None
        fake_port = int(fake.stdout.readline().split()[1])
        home = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
        config = home / "router.toml"
        config.write_text(f'[providers.openai]\nbase_url = "http://127.0.0.1:{fake_port}/v1"\n{NO_TOOLS}')
        print(f"{args.requests} complete calls at concurrency {args.concurrency}, provider latency "
              f"{LATENCY_MS:.0f} ms, {os.cpu_count()} CPUs")  # fmt: skip
        for count in (1, 3):
            replicas = start_replicas(count, server.create_database(), config, home)
            try:
                samples, rate = anyio.run(drive, [port for _, port in replicas], args.requests, args.concurrency)
            finally:
                for proc, _ in replicas:
                    proc.terminate()
                    proc.wait(timeout=15)
            p50, p99 = statistics.median(samples), statistics.quantiles(samples, n=100)[98]
            print(f"  {count} replica{'s' if count > 1 else ' '} on PostgreSQL: {rate:6.1f} calls/s  latency p50 "
                  f"{p50:6.1f} ms p99 {p99:6.1f} ms  overhead p50 {p50 - LATENCY_MS:6.1f} ms "
                  f"p99 {p99 - LATENCY_MS:6.1f} ms")  # fmt: skip
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(timeout=10)
        server.stop()


if __name__ == "__main__":
    main()
