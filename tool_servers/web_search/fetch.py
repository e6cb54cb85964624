"""Fetch one URL safely: every hop checked by the SSRF guard and pinned to the checked address.

Redirects are followed by hand (at most `MAX_REDIRECTS`), the body is read up to `MAX_BYTES` after
decompression (a compressed body that inflates past it fails), and the whole fetch has a deadline. HTTPS
to a pinned address keeps the real host name for SNI and certificate verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx2

from tool_servers.web_search.ssrf import Guard, Target

MAX_REDIRECTS = 5
MAX_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT_S = 20.0
USER_AGENT = "model-router-fetch/0.1 (MCP tool; +https://pypi.org/project/mcp-model-router/)"


class FetchError(Exception):
    """The page could not be fetched; the message says why."""


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    status: int
    content_type: str
    body: bytes
    truncated: bool


def _pinned_request(client: httpx2.AsyncClient, target: Target) -> httpx2.Request:
    parts = urlsplit(target.url)
    ip = f"[{target.address}]" if ":" in target.address else target.address
    pinned = urlunsplit((parts.scheme, f"{ip}:{target.port}", parts.path or "/", parts.query, ""))
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    headers = {
        "Host": host_header,
        "User-Agent": USER_AGENT,
        "Accept": "text/html,text/plain,application/json;q=0.9,*/*;q=0.5",
    }
    return client.build_request("GET", pinned, headers=headers, extensions=extensions)


async def fetch(url: str, guard: Guard, client: httpx2.AsyncClient, *, max_bytes: int = MAX_BYTES) -> Page:
    """GET `url` within the guard's rules; raises `Refused` or `FetchError`."""
    with anyio.move_on_after(FETCH_TIMEOUT_S) as scope:
        for _hop in range(MAX_REDIRECTS + 1):
            target = await guard.check(url)
            response = await client.send(_pinned_request(client, target), stream=True)
            try:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    url = urljoin(url, location)
                    continue
                body, truncated = await _read_capped(response, max_bytes)
                return Page(url, response.status_code, response.headers.get("content-type", ""), body, truncated)
            finally:
                await response.aclose()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")
    if scope.cancelled_caught:
        raise FetchError(f"the page did not arrive within {FETCH_TIMEOUT_S:.0f} seconds")
    raise FetchError("fetch failed")


async def _read_capped(response: httpx2.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The body up to `max_bytes` after decompression; a plain body past the cap is cut (the caller says so),
    a compressed one fails: a page that inflates past the cap is a decompression bomb or nothing worth reading."""
    body = bytearray()
    async for chunk in response.aiter_bytes():  # decoded in bounded steps: memory stays near max_bytes
        body.extend(chunk)
        if len(body) > max_bytes:
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding and encoding != "identity":
                raise FetchError(
                    f"the page inflates past the decompressed size limit of {max_bytes:,} bytes "
                    f"({encoding}, {response.num_bytes_downloaded:,} compressed bytes received); it was not read"
                )
            return bytes(body[:max_bytes]), True
    return bytes(body), False
