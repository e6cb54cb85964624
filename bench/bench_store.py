"""Per-call store time on SQLite vs PostgreSQL: what one `complete` costs the store (a budget reservation
under a daily limit, then the attempt's row with its settlement and rollup), one caller and 16 at once;
then the same with a model rate limit (`rpm`) in force: one more transaction to count the request and one
to mark it ended.

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
from server.store.interface import Hold, Limit, RateLimit, RateRefused, Scope, to_pico

LIMIT = [Limit(Scope("day"), to_pico(Decimal("1000000")) or 0)]
RATE = [RateLimit("model:openai/gpt-4.1", rpm=10**9)]  # always room: this measures the counting only


async def one_call(store: Store, i: int, rated: bool) -> float:
    started = time.perf_counter()
    now = time.time()
    permit = await store.rates.acquire(RATE, 110, now=now, lease_s=900) if rated else ()
    assert not isinstance(permit, RateRefused)
    held = await store.budgets.reserve(Hold(f"b{i}", None, "openai/gpt-4.1", 10**9), LIMIT, now=now, ttl_s=900)
    assert isinstance(held, int)
    record = AttemptRecord(task_id=f"b{i}", session_id=None, attempt_no=1, started_at=now, latency_ms=5.0,
                           model="openai/gpt-4.1", provider="openai", category="qa_retrieval", outcome="ok",
                           price_table_version="bench", input_tokens=100, output_tokens=10,
                           cost_usd=Decimal("0.0003"))  # fmt: skip
    await store.ledger.record(record, settle=(held,))
    if permit:
        await store.rates.finish(permit, now=time.time(), sent=True)
    return (time.perf_counter() - started) * 1000


async def measure(name: str, store: Store, calls: int, rated: bool) -> None:
    sequential = [await one_call(store, i, rated) for i in range(calls)]
    concurrent: list[float] = []

    async def worker(w: int) -> None:
        for i in range(calls // 16):
            concurrent.append(await one_call(store, calls + w * calls + i, rated))

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(16):
            tg.start_soon(worker, w)
    elapsed = time.perf_counter() - started
    p = statistics.quantiles
    name += " +rpm" if rated else ""
    print(f"{name:15} 1 caller: p50 {statistics.median(sequential):6.2f} ms  p99 {p(sequential, n=100)[98]:6.2f} ms"
          f" | 16 callers: p50 {statistics.median(concurrent):6.2f} ms  p99 {p(concurrent, n=100)[98]:6.2f} ms"
          f"  {len(concurrent) / elapsed:7.0f} calls/s")  # fmt: skip


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
    for name, store in (("sqlite", await open_store(home)), ("postgresql", await open_store(home, url))):
        try:
            for rated in (False, True):
                await measure(name, store, calls, rated)
        finally:
            await store.aclose()


if __name__ == "__main__":
    main()
