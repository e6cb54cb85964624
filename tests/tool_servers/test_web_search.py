"""web_search against fake Brave/SearXNG APIs on loopback; fetch_url conversion, pagination and SSRF refusals."""

from __future__ import annotations

import gzip
import ipaddress
import sys

import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tests.tool_servers.conftest import LoopbackHTTP
from tool_servers.web_search.search import Backend
from tool_servers.web_search.server import build_server, server_from_env
from tool_servers.web_search.ssrf import Guard

pytestmark = pytest.mark.anyio
PAGE = (
    "<html><head><title>Owls</title><script>evil()</script></head><body><nav>menu</nav><h1>Owls</h1>"
    "<p>Owls are birds.</p><ul><li>Barn owl</li><li>Snowy owl</li></ul><p>" + "hoot " * 400 + "</p></body></html>"
)


def _text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_brave_backend(http: LoopbackHTTP) -> None:
    http.json("/res/v1/web/search", {"type": "search", "web": {"type": "search", "results": [
        {"title": "Paris - Wikipedia", "url": "https://en.wikipedia.org/wiki/Paris",
         "description": "Capital of France"},
    ]}})  # fmt: skip
    server = build_server(Backend("brave", f"{http.url}/res/v1/web/search", "brave-key-123"), Guard())
    async with Client(server) as client:
        result = await client.call_tool("web_search", {"query": "capital of france", "max_results": 3})
    assert result.structured_content["results"][0]["url"] == "https://en.wikipedia.org/wiki/Paris"
    path, headers = http.requests[0]
    assert "q=capital+of+france" in path and "count=3" in path
    assert headers["X-Subscription-Token"] == "brave-key-123"


async def test_searxng_backend(http: LoopbackHTTP) -> None:
    http.json("/search", {"query": "owls", "results": [{"title": "Owl", "url": "https://example.org/owl",
                                                        "content": "A bird", "engine": "duckduckgo"}]})  # fmt: skip
    server = server_from_env({"SEARXNG_URL": http.url})
    async with Client(server) as client:
        result = await client.call_tool("web_search", {"query": "owls"})
    assert result.structured_content["backend"] == "searxng"
    assert result.structured_content["results"][0]["snippet"] == "A bird"
    assert "format=json" in http.requests[0][0]


async def test_rejected_key_and_missing_configuration_say_what_to_do(http: LoopbackHTTP) -> None:
    http.json("/res/v1/web/search", {"error": "unauthorized"}, status=401)
    async with Client(build_server(Backend("brave", f"{http.url}/res/v1/web/search", "bad"), Guard())) as client:
        rejected = await client.call_tool("web_search", {"query": "x"})
    async with Client(server_from_env({})) as client:
        missing = await client.call_tool("web_search", {"query": "x"})
    assert rejected.is_error and "BRAVE_API_KEY was rejected" in _text(rejected)
    assert missing.is_error and "BRAVE_API_KEY" in _text(missing) and "SEARXNG_URL" in _text(missing)


async def test_fetch_converts_html_and_paginates(http: LoopbackHTTP) -> None:
    http.html("/owls", PAGE)
    async with Client(build_server(None, Guard(allow_private=True))) as client:
        first = _text(await client.call_tool("fetch_url", {"url": f"{http.url}/owls", "max_length": 200}))
        assert "(Owls)" in first and "# Owls" in first and "- Barn owl" in first
        assert "evil" not in first and "menu" not in first
        assert "Call fetch_url with start_index=200" in first
        second = _text(await client.call_tool("fetch_url", {"url": f"{http.url}/owls", "max_length": 200,
                                                            "start_index": 200}))  # fmt: skip
    assert "hoot" in second and "start_index=400" in second
    assert http.requests[0][1]["User-Agent"].startswith("model-router-fetch/")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/owls", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/owls", "http://2130706433:{port}/owls", "http://0x7f000001:{port}/", "http://127.1:{port}/",
    "http://localhost:{port}/owls", "http://[::ffff:127.0.0.1]:{port}/", "http://metadata.google.internal/",
    "file:///etc/passwd", "ftp://example.com/",
])  # fmt: skip
async def test_private_and_tricky_addresses_are_refused_before_connecting(http: LoopbackHTTP, url: str) -> None:
    http.html("/owls", PAGE)
    async with Client(build_server(None, Guard())) as client:
        result = await client.call_tool("fetch_url", {"url": url.format(port=http.port)})
    assert result.is_error and "refused" in _text(result)
    assert http.requests == []  # nothing was sent


async def test_a_redirect_to_a_private_address_is_refused(http: LoopbackHTTP) -> None:
    http.redirect("/go", f"http://127.0.0.1:{http.port}/owls")
    http.html("/owls", PAGE)

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "public.test" else [host]

    def policy(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return host == "public.test"  # stands in for a public site; everything else must be public

    async with Client(build_server(None, Guard(resolver=resolver, policy=policy))) as client:
        result = await client.call_tool("fetch_url", {"url": f"http://public.test:{http.port}/go"})
    assert result.is_error and "refused" in _text(result) and "127.0.0.1" in _text(result)
    assert [path for path, _ in http.requests] == ["/go"]  # the private target was never contacted


async def test_non_text_content_is_refused(http: LoopbackHTTP) -> None:
    http.routes["/img"] = lambda _: (200, {"Content-Type": "image/png"}, b"\x89PNG....")
    async with Client(build_server(None, Guard(allow_private=True))) as client:
        result = await client.call_tool("fetch_url", {"url": f"{http.url}/img"})
    assert result.is_error and "image/png" in _text(result)


@pytest.mark.slow
async def test_over_stdio(http: LoopbackHTTP) -> None:
    http.html("/owls", PAGE)
    params = StdioServerParameters(command=sys.executable, args=["-m", "tool_servers.web_search"],
                                   env={"FETCH_ALLOW_PRIVATE": "1"})  # fmt: skip
    async with Client(params, mode="legacy") as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"web_search", "fetch_url"}
        result = await client.call_tool("fetch_url", {"url": f"{http.url}/owls"})
    assert "Owls are birds." in _text(result)


async def test_a_gzip_bomb_fails_naming_the_decompressed_size_limit(http: LoopbackHTTP) -> None:
    bomb = gzip.compress(b"<html><body>" + bytes(64 * 1024 * 1024), 9)  # 64 MB of zeros in about 64 KB
    http.routes["/bomb"] = lambda _: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb)
    http.html("/plain", "<p>" + "big " * 1_500_000 + "</p>")  # 6 MB, not compressed: cut, as before
    async with Client(build_server(None, Guard(allow_private=True))) as client:
        exploded = await client.call_tool("fetch_url", {"url": f"{http.url}/bomb"})
        plain = await client.call_tool("fetch_url", {"url": f"{http.url}/plain", "max_length": 100})
    assert exploded.is_error
    assert "decompressed size limit of 5,242,880 bytes" in _text(exploded) and "gzip" in _text(exploded)
    assert not plain.is_error and "start_index=100" in _text(plain)
