"""Ledger figures: write throughput (one writer, 8 concurrent writers) and `cost_report` over 1,000,000 rows.

Prints only. The 1M rows are spread over 60 days, 15 models, 8 categories and 500 sessions; each report
covers the last 30 days.

    python bench/bench_ledger.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.accounting.report import ReportBuilder, ReportQuery
from server.domain.config import load_config
from server.domain.registry import Registry
from server.store import AttemptRecord, SqliteStore, open_store


def _record(rng: random.Random, models: list[str], when: float, i: int) -> AttemptRecord:
    model = rng.choice(models)
    inp, out = rng.randint(50, 5000), rng.randint(10, 2000)
    return AttemptRecord(
        task_id=f"t{i}", session_id=f"s{i % 500}", attempt_no=1, started_at=when, latency_ms=rng.uniform(100, 9000),
        model=model, provider=model.split("/")[0], category=rng.choice(["qa_retrieval", "complex_coding",
        "deep_reasoning", "text_generation", "classification", "agentic_tool_use", "long_document", "embedding"]),
        outcome="ok" if rng.random() > 0.03 else "error", price_table_version="bench", input_tokens=inp,
        cached_input_tokens=inp // 3, output_tokens=out, cost_usd=Decimal(inp * 3 + out * 15) / Decimal(10**6),
        estimated_input_tokens=inp, estimated_output_tokens=out,
    )  # fmt: skip


async def bench_writes(home: Path, models: list[str]) -> None:
    store = await open_store(home / "writes")
    ledger = store.ledger
    rng = random.Random(1)
    for writers in (1, 8):
        count = 2000
        started = time.perf_counter()

        async def writer(w: int, n: int) -> None:
            for i in range(n):
                await ledger.record(_record(rng, models, time.time(), w * 100_000 + i))

        async with anyio.create_task_group() as tg:
            for w in range(writers):
                tg.start_soon(writer, w, count // writers)
        rate = count / (time.perf_counter() - started)
        print(
            f"ledger writes, {writers} concurrent writer(s): {rate:,.0f} rows/s ({count} rows, each its own "
            "transaction, committed before its call returns)"
        )
    await store.aclose()


async def fill(home: Path, models: list[str], rows: int) -> None:
    store = await open_store(home)
    assert isinstance(store, SqliteStore)
    rng = random.Random(2)
    now = time.time()
    batch = [_record(rng, models, now - rng.uniform(0, 60 * 86400), i) for i in range(rows)]
    await store.ledger.import_attempts(batch)  # raw rows, then the usage rollup rebuilt once
    await store.aclose()


async def bench_report(home: Path, rows: int) -> None:
    env = {"MODEL_ROUTER_HOME": str(home)}
    config = load_config(env=env)
    store = await open_store(home)
    builder = ReportBuilder(store.reports, Registry(config, env))
    since = time.time() - 30 * 86400
    for group_by in ("model", "provider", "category", "session", "day"):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            await builder.build(ReportQuery(since=since, group_by=group_by))  # type: ignore[arg-type]
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        print(f"cost_report over {rows:,} rows, 30-day window, group_by={group_by:8}: p50 {samples[2]:.0f} ms "
              "(target <= 200 ms)")  # fmt: skip
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    os.environ["MODEL_ROUTER_HOME"] = str(home)
    models = [m.id for m in load_config(env={"MODEL_ROUTER_HOME": str(home)}).models]
    anyio.run(bench_writes, home, models)
    started = time.perf_counter()
    anyio.run(fill, home, models, args.rows)
    print(f"filled {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
    anyio.run(bench_report, home, args.rows)


if __name__ == "__main__":
    main()
