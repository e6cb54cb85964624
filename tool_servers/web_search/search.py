"""Search backends: Brave Search API (`BRAVE_API_KEY`) or a SearXNG instance (`SEARXNG_URL`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx2

BRAVE_DEFAULT_URL = "https://api.search.brave.com/res/v1/web/search"
SEARCH_TIMEOUT_S = 15.0


class SearchError(Exception):
    """The search could not be done; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Result:
    title: str
    url: str
    snippet: str


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # brave | searxng
    url: str
    key: str | None = None


def backend_from_env(env: Mapping[str, str]) -> Backend | None:
    if env.get("BRAVE_API_KEY"):
        return Backend("brave", env.get("BRAVE_SEARCH_URL") or BRAVE_DEFAULT_URL, env["BRAVE_API_KEY"])
    if env.get("SEARXNG_URL"):
        return Backend("searxng", env["SEARXNG_URL"].rstrip("/") + "/search")
    return None


async def search(backend: Backend, client: httpx2.AsyncClient, query: str, count: int) -> list[Result]:
    try:
        if backend.name == "brave":
            response = await client.get(
                backend.url,
                params={"q": query, "count": count},
                headers={"Accept": "application/json", "X-Subscription-Token": backend.key or ""},
                timeout=SEARCH_TIMEOUT_S,
            )
        else:
            response = await client.get(backend.url, params={"q": query, "format": "json"}, timeout=SEARCH_TIMEOUT_S)
    except httpx2.TimeoutException:
        raise SearchError(f"{backend.name} did not answer within {SEARCH_TIMEOUT_S:.0f}s; try again") from None
    except httpx2.HTTPError as exc:
        raise SearchError(f"{backend.name} could not be reached ({type(exc).__name__})") from None
    _check_status(backend, response)
    try:
        data = response.json()
    except ValueError:
        raise SearchError(f"{backend.name} returned a response that is not JSON") from None
    return _parse(backend, data)[:count]


def _check_status(backend: Backend, response: httpx2.Response) -> None:
    if response.status_code in (401, 403):
        what = "BRAVE_API_KEY was rejected; check it" if backend.name == "brave" else "SearXNG refused the request"
        raise SearchError(f"{what} (HTTP {response.status_code})")
    if response.status_code == 429:
        raise SearchError(f"{backend.name} rate limit reached; wait a moment and search again")
    if response.status_code >= 400:
        raise SearchError(f"{backend.name} search failed with HTTP {response.status_code}")


def _parse(backend: Backend, data: object) -> list[Result]:
    if not isinstance(data, dict):
        return []
    if backend.name == "brave":
        items = (data.get("web") or {}).get("results") or []
        return [
            Result(i.get("title", ""), i.get("url", ""), i.get("description", "")) for i in items if isinstance(i, dict)
        ]
    items = data.get("results") or []
    return [Result(i.get("title", ""), i.get("url", ""), i.get("content", "")) for i in items if isinstance(i, dict)]
