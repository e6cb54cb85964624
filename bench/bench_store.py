"""Per-call store time on SQLite vs PostgreSQL: what one `complete` costs the store (a budget reservation
under a daily limit, then the attempt's row with its settlement and rollup), one caller and 16 at once.

Prints only. PostgreSQL: the server of MODEL_ROUTER_DATABASE_URL (a fresh, empty database!), else a
throwaway local one started like the test suite's (needs Debian's postgresql binaries).

    python bench/bench_store.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.store import AttemptRecord, Store, open_store
from server.store.interface import Hold, Limit, Scope, to_pico

LIMIT = [Limit(Scope("day"), to_pico(Decimal("1000000")) or 0)]


async def one_call(store: Store, i: int) -> float:
    started = time.perf_counter()
    now = time.time()
    held = await store.budgets.reserve(Hold(f"b{i}", None, "openai/gpt-4.1", 10**9), LIMIT, now=now, ttl_s=900)
    assert isinstance(held, int)
    record = AttemptRecord(task_id=f"b{i}", session_id=None, attempt_no=1, started_at=now, latency_ms=5.0,
                           model="openai/gpt-4.1", provider="openai", category="qa_retrieval", outcome="ok",
                           price_table_version="bench", input_tokens=100, output_tokens=10,
                           cost_usd=Decimal("0.0003"))  # fmt: skip
    await store.ledger.record(record, settle=(held,))
    return (time.perf_counter() - started) * 1000


async def measure(name: str, store: Store, calls: int) -> None:
    sequential = [await one_call(store, i) for i in range(calls)]
    concurrent: list[float] = []

    async def worker(w: int) -> None:
        for i in range(calls // 16):
            concurrent.append(await one_call(store, calls + w * calls + i))

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(16):
            tg.start_soon(worker, w)
    elapsed = time.perf_counter() - started
    p = statistics.quantiles
    print(f"{name:10} 1 caller: p50 {statistics.median(sequential):6.2f} ms  p99 {p(sequential, n=100)[98]:6.2f} ms"
          f" | 16 callers: p50 {statistics.median(concurrent):6.2f} ms  p99 {p(concurrent, n=100)[98]:6.2f} ms"
          f"  {len(concurrent) / elapsed:7.0f} calls/s")  # fmt: skip
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    server = None
    url = os.environ.get("MODEL_ROUTER_DATABASE_URL")
    if not url:
        from tests.pgserver import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL: set MODEL_ROUTER_DATABASE_URL or apt-get install postgresql")
        server = PostgresServer(bindir)
        server.start()
        url = server.create_database()
    print(f"per call: reserve + record with settlement and rollup; {args.calls} calls each; {os.cpu_count()} CPUs")
    try:
        with tempfile.TemporaryDirectory() as home:
            anyio.run(lambda: _both(Path(home), url, args.calls))
    finally:
        if server is not None:
            server.stop()


async def _both(home: Path, url: str, calls: int) -> None:
    await measure("sqlite", await open_store(home), calls)
    await measure("postgresql", await open_store(home, url), calls)


if __name__ == "__main__":
    main()
