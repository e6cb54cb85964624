"""MCP tools: web_search (Brave or SearXNG) and fetch_url (HTML → text, paginated, SSRF-guarded)."""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from typing import Annotated

import httpx2
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from tool_servers._common import reason, run_stdio
from tool_servers._strict_args import strict_arguments
from tool_servers.web_search.fetch import FetchError, fetch
from tool_servers.web_search.html_text import html_to_text
from tool_servers.web_search.search import Backend, SearchError, backend_from_env, search
from tool_servers.web_search.ssrf import Guard, Refused

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/ld+json")


class SearchHit(BaseModel):
    title: str
    url: str
    snippet: str


class SearchResults(BaseModel):
    query: str
    backend: str
    results: list[SearchHit]


def build_server(
    backend: Backend | None,
    guard: Guard,
    client_factory: type[httpx2.AsyncClient] = httpx2.AsyncClient,
) -> MCPServer:
    mcp = MCPServer(name="web_search", instructions="Search the web and read pages as plain text.")

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def web_search(
        query: Annotated[str, Field(description="What to search for", min_length=1, max_length=400)],
        max_results: Annotated[int, Field(description="Number of results", ge=1, le=10)] = 5,
    ) -> SearchResults:
        """Search the web for current information; returns titles, URLs and snippets."""
        if backend is None:
            raise ToolError("web search is not configured: set BRAVE_API_KEY (Brave Search API) or SEARXNG_URL "
                            "(a SearXNG instance) in the environment of the web_search server")  # fmt: skip
        try:
            async with client_factory() as client:
                hits = await search(backend, client, query, max_results)
        except SearchError as exc:
            raise ToolError(str(exc)) from exc
        found = [SearchHit(title=h.title, url=h.url, snippet=h.snippet) for h in hits]
        return SearchResults(query=query, backend=backend.name, results=found)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def fetch_url(
        url: Annotated[str, Field(description="http(s) URL of the page", min_length=1, max_length=2000)],
        max_length: Annotated[int, Field(description="Characters to return", ge=100, le=100_000)] = 5000,
        start_index: Annotated[int, Field(description="Start here to read further into the page", ge=0)] = 0,
    ) -> str:
        """Fetch a web page and return its readable text, paginated (use start_index to continue)."""
        try:
            async with client_factory(follow_redirects=False) as client:
                page = await fetch(url, guard, client)
        except Refused as exc:
            raise ToolError(f"refused: {exc}") from exc
        except (FetchError, httpx2.HTTPError) as exc:
            raise ToolError(f"could not fetch {url}: {reason(exc)}") from exc
        return _page_text(page.url, page.status, page.content_type, page.body, page.truncated, max_length, start_index)

    return strict_arguments(mcp)  # no coercion, no unknown arguments: see tool_servers/_strict_args.py


def _page_text(url: str, status: int, content_type: str, body: bytes, truncated: bool, max_length: int,
               start_index: int) -> str:  # fmt: skip
    if status >= 400:
        raise ToolError(f"{url} answered HTTP {status}")
    kind = content_type.split(";")[0].strip().lower()
    if kind and not kind.startswith(_TEXT_TYPES):
        raise ToolError(f"{url} is {kind}, not text; only web pages and text can be read")
    decoded = body.decode(_charset(content_type), "replace")
    title, text = (
        html_to_text(decoded)
        if "html" in kind or decoded.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
        else ("", decoded)
    )
    if start_index >= max(len(text), 1) and text:
        raise ToolError(f"start_index {start_index} is past the end of the page ({len(text)} characters)")
    end = min(start_index + max_length, len(text))
    header = f"Contents of {url}" + (f" ({title})" if title else "") + ":\n\n"
    chunk = text[start_index:end]
    if end < len(text):
        chunk += f"\n\n[{len(text) - end} more characters. Call fetch_url with start_index={end} to continue.]"
    elif truncated:
        chunk += "\n\n[The page is larger than the download limit; the rest was not fetched.]"
    return header + chunk


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            try:
                return codecs.lookup(value.strip('"')).name
            except LookupError:  # a charset Python does not know: read it as UTF-8
                return "utf-8"
    return "utf-8"


def server_from_env(env: Mapping[str, str]) -> MCPServer:
    allow = env.get("FETCH_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes")
    return build_server(backend_from_env(env), Guard(allow_private=allow))


def main() -> None:
    run_stdio(server_from_env(os.environ))
