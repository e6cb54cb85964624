"""Each adapter over real loopback HTTP against the fake APIs: tool exchanges and every error type."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import httpx2
import pytest

from server.domain.messages import ChatRequest, Message, ToolResultPart, ToolSpec
from server.domain.tokens import request_input_tokens
from server.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
)
from server.providers import make_chat_model
from server.providers.translate import retry_after_seconds
from tests.fakes import providers as f

pytestmark = pytest.mark.anyio
CALC = ToolSpec("execute_python", "Run Python", {"type": "object", "properties": {"code": {"type": "string"}}})


def _model(kind: str, fake: f.FakeProviders, client: httpx2.AsyncClient, key: str | None = "test-key-1234"):
    base = fake.openai_url if kind == "openai" else fake.anthropic_url
    env = "OPENAI_API_KEY" if kind == "openai" else "ANTHROPIC_API_KEY"
    return make_chat_model(kind, provider_id=kind, base_url=base, api_key=key, api_key_env=env, http_client=client,
                           data_dir=Path("/nonexistent"))  # fmt: skip


@pytest.mark.parametrize(("kind", "api_model"), [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-20250514")])
async def test_two_round_tool_exchange(fake: f.FakeProviders, kind: str, api_model: str) -> None:
    fake.script(api_model, f.tool_calls(("execute_python", {"code": "print(6*7)"})),
                f.text("It is 42.", prompt=80, completion=6, cached=64))  # fmt: skip
    async with httpx2.AsyncClient() as client:
        model = _model(kind, fake, client)
        messages = (Message.system("use tools"), Message.user("what is 6*7? run it"))
        first = await model.chat(ChatRequest(api_model, messages, tools=(CALC,), max_tokens=100))
        call = first.message.tool_calls[0]
        assert call.name == "execute_python" and call.arguments == {"code": "print(6*7)"}
        result = Message("tool", (ToolResultPart(call.id, call.name, "42\n"),))
        second = await model.chat(ChatRequest(api_model, (*messages, first.message, result), tools=(CALC,)))
    assert second.message.text == "It is 42."
    assert (second.usage.input_tokens, second.usage.cached_input_tokens, second.usage.output_tokens) == (80, 64, 6)
    sent = fake.requests[-1][2]
    if kind == "openai":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "42\n"}
    else:
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == call.id


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("spec", "error", "check"),
    [
        (f.rate_limited("7"), RateLimited, lambda e: e.retry_after_s == 7.0),
        (f.server_error(), ProviderUnavailable, lambda e: e.status == 500),
        (f.overloaded(), ProviderUnavailable, lambda e: e.status == 529),
        (f.context_too_long(), ContextTooLong, lambda e: e.status == 400),
        (f.unauthorized(), AuthError, lambda e: e.api_key_env in str(e) and "test-key-1234" not in str(e)),
        (f.garbled(), ProviderUnavailable, lambda e: e.status is None),
        (f.mis_shaped(), ProviderUnavailable, lambda e: "could not be read" in str(e)),
    ],
)
async def test_errors_map_to_the_typed_tree(fake: f.FakeProviders, kind: str, spec, error, check) -> None:
    fake.script("m", spec)
    async with httpx2.AsyncClient() as client:
        with pytest.raises(error) as info:
            await _model(kind, fake, client).chat(ChatRequest("m", (Message.user("hi"),)))
    assert check(info.value), str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_hung_socket_is_a_timeout(fake: f.FakeProviders, kind: str) -> None:
    fake.script("m", f.hang())
    async with httpx2.AsyncClient() as client:
        with pytest.raises(ProviderTimeout) as info:
            await _model(kind, fake, client).chat(ChatRequest("m", (Message.user("hi"),), timeout_s=0.5))
    # The message says which timeout fired and its value, so the user knows what to raise.
    assert "request timeout of 0.5 s" in str(info.value) and f"providers.{kind}.timeout_s" in str(info.value)


async def test_connection_refused_is_unreachable_without_status() -> None:
    async with httpx2.AsyncClient() as client:
        model = make_chat_model("openai", provider_id="ollama", base_url="http://127.0.0.1:9/v1", api_key=None,
                                api_key_env=None, http_client=client, data_dir=Path("/x"))  # fmt: skip
        with pytest.raises(ProviderUnreachable) as info:
            await model.chat(ChatRequest("qwen3:1.7b", (Message.user("hi"),)))
    assert info.value.status is None


async def test_anthropic_rejections_are_bad_requests(fake: f.FakeProviders) -> None:
    async with httpx2.AsyncClient() as client:
        with pytest.raises(BadRequest, match="first message must use"):
            await _model("anthropic", fake, client).chat(ChatRequest("m", (Message("assistant", ()),
                                                                            Message.assistant_text("x"))))  # fmt: skip


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def _whole_request(received: bytes) -> bool:
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
    return len(body) >= length


class _DroppingServer:
    """A loopback socket that reads each HTTP request and then closes the connection without answering
    (`reset`: with an RST, as a crashed or restarted server does)."""

    def __init__(self, *, reset: bool) -> None:
        self.requests = 0
        self._reset = reset
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                received = b""
                while not _whole_request(received):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                self.requests += 1  # read to its last byte: closing with unread bytes would send an RST
                if self._reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._socket.close()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_a_connection_dropped_mid_request_is_unavailable_not_unreachable(kind: str, reset: bool) -> None:
    server = _DroppingServer(reset=reset)
    try:
        async with httpx2.AsyncClient() as client:
            model = make_chat_model(kind, provider_id=kind, base_url=server.url, api_key="test-key-1234",
                                    api_key_env="X_API_KEY", http_client=client, data_dir=Path("/x"))  # fmt: skip
            with pytest.raises(ProviderUnavailable) as info:
                await model.chat(ChatRequest("m", (Message.user("hi"),)))
    finally:
        server.close()
    assert server.requests == 1  # the request was delivered, then the connection went away
    assert not isinstance(info.value, ProviderUnreachable)  # so the fallback retries it like a 5xx
    assert "dropped the connection" in str(info.value)
    assert ("ReadError: [Errno 104]" if reset else "RemoteProtocolError: Server disconnected") in str(info.value)


async def test_connection_refused_is_unreachable() -> None:
    async with httpx2.AsyncClient() as client:
        model = make_chat_model("anthropic", provider_id="anthropic", base_url="http://127.0.0.1:9", api_key="k",
                                api_key_env="ANTHROPIC_API_KEY", http_client=client, data_dir=Path("/x"))  # fmt: skip
        with pytest.raises(ProviderUnreachable, match="could not be reached"):
            await model.chat(ChatRequest("m", (Message.user("hi"),)))


@pytest.mark.parametrize(("kind", "api_model"), [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-20250514")])
async def test_the_reserved_input_covers_what_each_request_is_billed_for(fake: f.FakeProviders, kind: str,
                                                                         api_model: str) -> None:  # fmt: skip
    fake.bill_input = True  # billed: a quarter of the bytes each request carried
    fake.script(api_model, f.tool_calls(("execute_python", {"code": "print('ünïcödé', 6*7)"})), f.text("42"))
    tools = tuple(ToolSpec(f"tool_{i}", "Does a thing. " * 20, {"type": "object", "properties": {
        "text": {"type": "string", "description": "what to do, in any language", "maxLength": 1000}}})
        for i in range(6))  # fmt: skip
    messages = (Message.system("Réponds en français. " * 10), Message.user("東京の天気は " * 20),
                Message.assistant_text("Earlier answer with \"quotes\" and \\ backslashes.\n" * 5),
                Message.user("Now run it."))  # fmt: skip
    async with httpx2.AsyncClient() as client:
        model = _model(kind, fake, client)
        first_request = ChatRequest(api_model, messages, tools=tools, max_tokens=100)
        first = await model.chat(first_request)
        call = first.message.tool_calls[0]
        result = Message("tool", (ToolResultPart(call.id, call.name, '{"stdout": "ünïcödé 42\\n"}' * 50),))
        second_request = ChatRequest(api_model, (*messages, first.message, result), tools=tools, max_tokens=100)
        second = await model.chat(second_request)
    for request, response in ((first_request, first), (second_request, second)):
        assert request_input_tokens(request) >= response.usage.input_tokens > 0
