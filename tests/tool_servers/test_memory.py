"""The memory sub-server: FTS ranking, hostile queries, limits, persistence, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tool_servers.memory.server import build_server
from tool_servers.memory.store import MemoryStore

pytestmark = pytest.mark.anyio


def _text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_store_search_ranks_by_relevance(tmp_path: Path) -> None:
    server = build_server(MemoryStore(tmp_path / "m.db"))
    async with Client(server) as client:
        note = "I moved the blender to the pantry to make room for the espresso machine"
        await client.call_tool("memory_store", {"key": "coffee", "content": note, "metadata": {"topic": "kitchen"}})
        await client.call_tool("memory_store", {"key": "lang", "content": "Goal: become fluent in Portuguese"})
        await client.call_tool("memory_store", {"key": "noise", "content": "the pantry door squeaks"})
        found = await client.call_tool("memory_search", {"query": "which appliance went to the pantry for espresso?"})
    results = found.structured_content["results"]
    assert results[0]["key"] == "coffee" and results[0]["metadata"] == {"topic": "kitchen"}
    assert {r["key"] for r in results} <= {"coffee", "noise"}


@pytest.mark.parametrize("query", ['"unbalanced', "AND OR NOT", "coffee NEAR(pantry", "((()", "*", "a:b -c ^d",
                                   "DROP TABLE items; --"])  # fmt: skip
async def test_any_text_is_a_valid_query(tmp_path: Path, query: str) -> None:
    async with Client(build_server(MemoryStore(tmp_path / "m.db"))) as client:
        await client.call_tool("memory_store", {"key": "k", "content": "coffee in the pantry"})
        result = await client.call_tool("memory_search", {"query": query})
    text = _text(result)
    assert not result.is_error or "no words" in text, text
    assert "syntax" not in text.lower()


async def test_limits_are_clear(tmp_path: Path) -> None:
    async with Client(build_server(MemoryStore(tmp_path / "m.db"))) as client:
        ok = await client.call_tool("memory_store", {"key": "big", "content": "a" * 1_000_000})
        too_big = await client.call_tool("memory_store", {"key": "bigger", "content": "a" * 1_000_001})
        empty = await client.call_tool("memory_search", {"query": "?!"})
        listed = await client.call_tool("memory_list", {"limit": 10})
    assert not ok.is_error
    assert too_big.is_error and "1,000,001 bytes" in _text(too_big)
    assert empty.is_error and "no words" in _text(empty)
    assert listed.structured_content["total"] == 1
    assert len(listed.structured_content["items"][0]["content"]) <= 2000


async def test_delete_and_persistence_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with Client(build_server(MemoryStore(path))) as client:
        await client.call_tool("memory_store", {"key": "a", "content": "alpha facts"})
        await client.call_tool("memory_store", {"key": "b", "content": "beta facts"})
        deleted = await client.call_tool("memory_delete", {"key": "b"})
        assert "Deleted" in _text(deleted)
    async with Client(build_server(MemoryStore(path))) as client:  # a restart
        found = await client.call_tool("memory_search", {"query": "facts"})
    assert [r["key"] for r in found.structured_content["results"]] == ["a"]


def _writer(path: str, worker: int) -> None:
    store = MemoryStore(Path(path))
    for i in range(50):
        store.store(f"w{worker}-{i}", f"note {i} from writer {worker}", {})


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    MemoryStore(path)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert MemoryStore(path).list(1)[1] == 200
    assert len(MemoryStore(path).search("writer", 50)) == 50


@pytest.mark.slow
async def test_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "tool_servers.memory"],
                                   env={"MEMORY_DB": str(tmp_path / "stdio.db")})  # fmt: skip
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"memory_store", "memory_search", "memory_delete", "memory_list"}
        await client.call_tool("memory_store", {"key": "x", "content": "remember the milk"})
        with anyio.fail_after(10):
            found = await client.call_tool("memory_search", {"query": "milk"})
    assert found.structured_content["results"][0]["key"] == "x"
    assert (tmp_path / "stdio.db").exists()


def test_a_distinctive_word_outranks_words_every_item_has(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.db", common_docs=3)
    for i in range(6):
        store.store(f"meeting-{i}", f"meeting notes number {i} about the weekly meeting", {})
    store.store("zebra", "meeting notes: the zebra crossing on Elm street needs repainting", {})
    hits = store.search("meeting zebra giraffe", top_k=4)  # no item has all three words
    assert hits[0].key == "zebra"  # found through the distinctive word, before the common one is ranked
    assert len(hits) == 4 and len({h.key for h in hits}) == 4  # then filled from the common word


async def test_metadata_limit_counts_utf8_bytes(tmp_path: Path) -> None:
    async with Client(build_server(MemoryStore(tmp_path / "m.db"))) as client:
        ascii_ok = await client.call_tool("memory_store", {"key": "a", "content": "x", "metadata": {"n": "e" * 19_000}})
        # 12,000 characters, 24,000 bytes: over the limit although far under it in characters
        accented = await client.call_tool("memory_store", {"key": "b", "content": "x", "metadata": {"n": "é" * 12_000}})
    assert not ascii_ok.is_error
    assert accented.is_error and "24,009 bytes" in _text(accented) and "20,000 bytes" in _text(accented)
