"""Fake OpenAI Chat Completions and Anthropic Messages APIs on a real loopback socket.

Faithful at the HTTP boundary: the same paths, auth headers, request validation, response bodies with
usage blocks (cached and reasoning tokens), and the real error bodies and headers (429 with retry-after,
500, Anthropic 529 overloaded, context-length 400s, 401s), plus a hung socket, a garbled body and a
mis-shaped one.
Responses are scripted per API model id; every request is logged for assertions. With `bill_input` set,
a reply's input token count is what the request really carried, as a provider bills it: a quarter of the
request body's bytes (messages, system prompt, tool definitions and all), whatever the script says.

    with FakeProviders() as fake:
        fake.script("gpt-4.1", text("Paris", prompt=12, completion=3))
        ... base_url=fake.openai_url (…/v1) or fake.anthropic_url ...
        fake.requests  # [(api, model, body, headers), ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_ids = itertools.count(1)


@dataclass
class Spec:
    """One scripted reply: text, tool calls, an HTTP error, a hang or a garbled body."""

    kind: str
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    status: int = 200
    error_type: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def text(value: str, *, prompt: int = 10, completion: int = 5, cached: int = 0, reasoning: int = 0,
         cache_write: int = 0, delay_s: float = 0.0) -> Spec:  # fmt: skip
    usage = {"prompt": prompt, "completion": completion, "cached": cached, "reasoning": reasoning,
             "cache_write": cache_write}  # fmt: skip
    return Spec("text", text=value, usage=usage, delay_s=delay_s)


def tool_calls(*calls: tuple[str, dict[str, Any]], prompt: int = 20, completion: int = 8) -> Spec:
    return Spec("tools", calls=list(calls), usage={"prompt": prompt, "completion": completion})


def rate_limited(retry_after: str = "1") -> Spec:
    return Spec("error", status=429, error_type="rate_limit", headers={"retry-after": retry_after})


def server_error() -> Spec:
    return Spec("error", status=500, error_type="server")


def overloaded() -> Spec:
    return Spec("error", status=529, error_type="overloaded")


def context_too_long() -> Spec:
    return Spec("error", status=400, error_type="context")


def unauthorized() -> Spec:
    return Spec("error", status=401, error_type="auth")


def hang() -> Spec:
    return Spec("hang")


def garbled() -> Spec:
    return Spec("garbled")


def mis_shaped() -> Spec:
    """Valid JSON with a 200, but not a completion or message object (a misbehaving proxy)."""
    return Spec("mis_shaped")


def _openai_error(spec: Spec) -> dict[str, Any]:
    bodies = {
        "rate_limit": ("Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
                       "Please try again in 1s.", "requests", "rate_limit_exceeded"),
        "server": ("The server had an error while processing your request. Sorry about that!", "server_error", None),
        "context": ("This model's maximum context length is 128000 tokens. However, your messages resulted in "
                    "130412 tokens. Please reduce the length of the messages.", "invalid_request_error",
                    "context_length_exceeded"),
        "auth": ("Incorrect API key provided: test-ope****0000. You can find your API key at "
                 "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"),
        "overloaded": ("The engine is currently overloaded, please try again later", "server_error", None),
    }  # fmt: skip
    message, kind, code = bodies[spec.error_type]
    return {"error": {"message": message, "type": kind, "param": "messages" if code == "context_length_exceeded"
                      else None, "code": code}}  # fmt: skip


def _anthropic_error(spec: Spec) -> dict[str, Any]:
    bodies = {
        "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        "server": ("api_error", "Internal server error"),
        "overloaded": ("overloaded_error", "Overloaded"),
        "context": ("invalid_request_error", "prompt is too long: 213000 tokens > 200000 maximum"),
        "auth": ("authentication_error", "invalid x-api-key"),
    }
    kind, message = bodies[spec.error_type]
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{next(_ids):08d}"}


def _openai_body(spec: Spec, model: str) -> dict[str, Any]:
    u = spec.usage
    message: dict[str, Any] = {"role": "assistant", "content": spec.text or None, "refusal": None,
                               "annotations": []}  # fmt: skip
    finish = "stop"
    if spec.kind == "tools":
        message["tool_calls"] = [
            {"id": f"call_{next(_ids):06d}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}
            for name, args in spec.calls
        ]  # fmt: skip
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{next(_ids):010d}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": u.get("prompt", 0), "completion_tokens": u.get("completion", 0),
            "total_tokens": u.get("prompt", 0) + u.get("completion", 0),
            "prompt_tokens_details": {"cached_tokens": u.get("cached", 0), "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u.get("reasoning", 0), "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
        "service_tier": "default", "system_fingerprint": "fp_fake",
    }  # fmt: skip


def _anthropic_body(spec: Spec, model: str) -> dict[str, Any]:
    u = spec.usage
    content: list[dict[str, Any]] = [{"type": "text", "text": spec.text}] if spec.text else []
    for name, args in spec.calls:
        content.append({"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": name, "input": args})
    cached = u.get("cached", 0)
    written = u.get("cache_write", 0)
    return {
        "id": f"msg_{next(_ids):012d}", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "tool_use" if spec.calls else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": u.get("prompt", 0) - cached - written, "cache_creation_input_tokens": written,
                  "cache_read_input_tokens": cached, "output_tokens": u.get("completion", 0),
                  "service_tier": "standard"},
    }  # fmt: skip


def _anthropic_invalid(body: dict[str, Any], headers: Any) -> str | None:
    """What the real Messages API would reject (400), in its words."""
    if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
        return "x-api-key header is required"  # current SDKs send the key as a bearer token instead
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if "max_tokens" not in body:
        return "max_tokens: Field required"
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for a, b in itertools.pairwise(messages):
        if a.get("role") == b.get("role"):
            return 'messages: roles must alternate between "user" and "assistant"'
    return None


class FakeProviders:
    """Both fake APIs in one uvicorn server on 127.0.0.1, run in a background thread."""

    def __init__(self) -> None:
        self._scripts: dict[str, deque[Spec]] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
        self.arrivals: list[tuple[str, float]] = []  # (model, time.monotonic() when the request came in)
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.default = text("ok")
        self.bill_input = False

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, *specs: Spec) -> None:
        with self._lock:
            self._scripts[model].extend(specs)

    def models_called(self, api: str | None = None) -> list[str]:
        return [m for a, m, _, _ in self.requests if api is None or a == api]

    def _next(self, model: str) -> Spec:
        with self._lock:
            queue = self._scripts.get(model)
            return queue.popleft() if queue else self.default

    def _billed(self, spec: Spec, raw: bytes) -> Spec:
        """The spec with its input count replaced by what the request carried (when `bill_input` is set)."""
        if not self.bill_input or spec.kind not in ("text", "tools"):
            return spec
        return dataclasses.replace(spec, usage={**spec.usage, "prompt": -(-len(raw) // 4)})

    async def _openai(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model", "")
        self.arrivals.append((model, time.monotonic()))
        self.requests.append(("openai", model, body, dict(request.headers)))
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"error": {"message": "You didn't provide an API key.", "type":
                                 "invalid_request_error", "param": None, "code": None}}, 401)  # fmt: skip
        if body.get("max_completion_tokens") and "temperature" in body:
            error = {"message": "Unsupported parameter: 'temperature'", "type": "invalid_request_error",
                     "param": "temperature", "code": "unsupported_parameter"}  # fmt: skip
            return JSONResponse({"error": error}, 400)
        spec = self._billed(self._next(model), await request.body())
        return await self._reply(spec, model, _openai_body, _openai_error)

    async def _anthropic(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model", "")
        self.arrivals.append((model, time.monotonic()))
        self.requests.append(("anthropic", model, body, dict(request.headers)))
        problem = _anthropic_invalid(body, request.headers)
        if problem:
            return JSONResponse({"type": "error", "error": {"type": "invalid_request_error", "message": problem}}, 400)
        spec = self._billed(self._next(model), await request.body())
        return await self._reply(spec, model, _anthropic_body, _anthropic_error)

    async def _reply(self, spec: Spec, model: str, render: Any, render_error: Any) -> Response:
        if spec.delay_s:
            await asyncio.sleep(spec.delay_s)
        if spec.kind == "hang":
            await asyncio.sleep(3600)
        if spec.kind == "garbled":
            return Response('{"id": "chatcmpl-1", "choices": [', media_type="application/json")
        if spec.kind == "mis_shaped":
            return JSONResponse(["this", "is", "not", "an", "answer"])
        if spec.kind == "error":
            headers = {"x-request-id": f"req_{next(_ids)}", **spec.headers}
            return JSONResponse(render_error(spec), spec.status, headers=headers)
        return JSONResponse(render(spec, model), headers={"x-request-id": f"req_{next(_ids)}"})

    def __enter__(self) -> FakeProviders:
        app = Starlette(routes=[
            Route("/v1/chat/completions", self._openai, methods=["POST"]),
            Route("/v1/messages", self._anthropic, methods=["POST"]),
        ])  # fmt: skip
        sock = socket.socket()
        # Accepted sockets inherit this: without it, a response's body waits on Nagle for the client's delayed
        # ACK of its headers, adding ~40 ms to every request on a kept-alive connection (no real API does).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening before uvicorn starts: a client may connect at once, and its request waits in the backlog
        # until the server thread accepts it, so nothing has to wait for the server to be up.
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="error", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=5)


def write_config(tmp_path: Path, fake: FakeProviders, *, timeout_s: float = 3.0, extra: str = "") -> Path:
    """A router config whose cloud providers all point at `fake` (Ollama at a dead port), plus `extra` TOML."""
    lines = []
    for provider in ("openai", "google", "together", "groq", "openrouter", "moonshot", "deepseek", "mistral"):
        lines += [f"[providers.{provider}]", f'base_url = "{fake.openai_url}"', f"timeout_s = {timeout_s}"]
    lines += ["[providers.anthropic]", f'base_url = "{fake.anthropic_url}"', f"timeout_s = {timeout_s}"]
    lines += ["[providers.ollama]", 'base_url = "http://127.0.0.1:9/v1"']  # nothing listens on port 9
    path = tmp_path / "router.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def main() -> None:
    """Serve the fakes in their own process (benchmarks: the fake's CPU must not share the router's GIL).

    Prints `port N` on stdout once listening; every request is answered with "ok" after `--delay-ms`.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0] if main.__doc__ else None)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="latency of every answer (default 50)")
    args = parser.parse_args()
    with FakeProviders() as fake:
        fake.default = text("ok", prompt=20, completion=2, delay_s=args.delay_ms / 1000)
        fake.requests = _Discard()  # a long benchmark must not grow the request log
        print(f"port {fake.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # until the parent closes our stdin


class _Discard(list):  # type: ignore[type-arg]
    def append(self, _: object) -> None:
        pass


if __name__ == "__main__":
    main()
