"""MCP tools over the memory store: memory_store, memory_search, memory_delete, memory_list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from tool_servers._common import run_stdio
from tool_servers._strict_args import strict_arguments
from tool_servers.memory.store import MAX_KEY_CHARS, MemoryInputError, MemoryStore, default_path

_PREVIEW_CHARS = 2_000


class Memory(BaseModel):
    key: str
    content: str = Field(description="Stored text (long items are cut to a preview in lists)")
    metadata: dict[str, Any]
    score: float | None = Field(default=None, description="BM25 relevance, higher is better")


class SearchResult(BaseModel):
    query: str
    results: list[Memory]


class ListResult(BaseModel):
    total: int
    items: list[Memory]


def build_server(store: MemoryStore) -> MCPServer:
    mcp = MCPServer(name="memory", instructions="Long-term memory: store facts under a key, search them later.")

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                          open_world_hint=False))  # fmt: skip
    async def memory_store(
        key: Annotated[str, Field(description="A short label for this memory", min_length=1, max_length=MAX_KEY_CHARS)],
        content: Annotated[str, Field(description="What to remember (up to 1,000,000 bytes of UTF-8)")],
        metadata: Annotated[dict[str, Any], Field(description="Optional JSON object (up to 20,000 bytes)")] = {},  # noqa: B006
    ) -> str:
        """Store (or replace) information in long-term memory under a key."""
        try:
            new = await anyio.to_thread.run_sync(store.store, key, content, metadata)
        except MemoryInputError as exc:
            raise ToolError(str(exc)) from exc
        return f"{'Stored' if new else 'Updated'} memory '{key}'."

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def memory_search(
        query: Annotated[str, Field(description="What to look for (any text)", min_length=1, max_length=10_000)],
        top_k: Annotated[int, Field(description="How many results", ge=1, le=50)] = 3,
    ) -> SearchResult:
        """Search long-term memory; results are ranked by relevance (BM25)."""
        try:
            hits = await anyio.to_thread.run_sync(store.search, query, top_k)
        except MemoryInputError as exc:
            raise ToolError(str(exc)) from exc
        return SearchResult(query=query, results=[Memory(key=h.key, content=h.content, metadata=h.metadata,
                                                         score=h.score) for h in hits])  # fmt: skip

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                          open_world_hint=False))  # fmt: skip
    async def memory_delete(
        key: Annotated[str, Field(description="The key to forget", min_length=1, max_length=200)],
    ) -> str:
        """Delete one memory by key."""
        deleted = await anyio.to_thread.run_sync(store.delete, key)
        return f"Deleted memory '{key}'." if deleted else f"No memory with key '{key}'; nothing deleted."

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def memory_list(
        limit: Annotated[int, Field(description="How many, newest first", ge=1, le=1000)] = 50,
    ) -> ListResult:
        """List stored memories, most recently updated first (content cut to a preview)."""
        hits, total = await anyio.to_thread.run_sync(store.list, limit)
        return ListResult(total=total, items=[Memory(key=h.key, content=h.content[:_PREVIEW_CHARS],
                                                     metadata=h.metadata) for h in hits])  # fmt: skip

    return strict_arguments(mcp)  # no coercion, no unknown arguments: see tool_servers/_strict_args.py


def main(path: Path | None = None) -> None:
    run_stdio(build_server(MemoryStore(path or default_path())))
