"""Foreign errors → the router's typed tree, once, at the adapter boundary.

Both official SDKs (openai, anthropic) raise the same shapes: a status error carrying the HTTP response
and decoded body, a timeout error and a connection error; a 200 whose body is not JSON, or not shaped like
the API's answer, fails in the adapters' own reading of it (`UnreadableBody`, `field` and `count` help).
This module reads those shapes by duck typing, so one function serves both, and never puts the key into a
message.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, TypeVar

from server.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    reason,
)

T = TypeVar("T")

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "reduce the length",
)


class UnreadableBody(ValueError):
    """A 2xx response whose JSON is not shaped like the API's answer."""


def field(body: dict[str, Any], key: str, kind: type[T]) -> T:
    """`body[key]` when it has the expected JSON type, else an empty one (providers omit or null fields)."""
    value = body.get(key)
    return value if isinstance(value, kind) else kind()


def count(body: dict[str, Any], key: str) -> int:
    """A token count: a non-negative integer, 0 when absent, null or garbled."""
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None when absent or garbled."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        if parsed is None:
            return None
        return max(parsed.timestamp() - (time.time() if now is None else now), 0.0)


def _body_message(body: Any, fallback: str) -> tuple[str, str]:
    """(message, code-or-type) from either SDK's decoded error body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or fallback), str(error.get("code") or error.get("type") or "")
    if isinstance(body, dict) and "message" in body:
        return str(body["message"]), str(body.get("type") or "")
    return fallback, ""


def translate(
    exc: Exception, *, provider: str, model: str | None, api_key_env: str | None, timeout_s: float | None = None
) -> ProviderError:
    """The typed error for an SDK exception (the caller raises it `from exc`); `timeout_s` is the request's."""
    name = type(exc).__name__
    ctx: dict[str, Any] = {"provider": provider, "model": model}
    status = getattr(exc, "status_code", None)
    if status is None:
        if "Timeout" in name:
            within = f" within the request timeout of {timeout_s:g} s" if timeout_s else " in time"
            return ProviderTimeout(
                f"{provider} did not answer{within} (the lesser of providers.{provider}.timeout_s and what was "
                "left of the task deadline)",
                **ctx,
            )
        if "Connection" in name:
            return _connection_error(exc, provider, ctx)
        if isinstance(exc, UnreadableBody) or "Validation" in name or "Decode" in name:
            return ProviderUnavailable(f"{provider} sent a response that could not be read ({name})", **ctx)
        return ProviderUnavailable(f"{provider} call failed: {name}", **ctx)
    message, code = _body_message(getattr(exc, "body", None), reason(exc))
    text = f"{provider} HTTP {status}: {message}"
    response = getattr(exc, "response", None)
    if status == 429:
        return RateLimited(text, retry_after_s=retry_after_seconds(getattr(response, "headers", None)), status=429,
                           **ctx)  # fmt: skip
    if status in (401, 403):
        fix = f"; check {api_key_env}" if api_key_env else ""
        return AuthError(f"{text}{fix}", api_key_env=api_key_env, status=status, **ctx)
    lowered = f"{message} {code}".lower()
    if status in (400, 413, 422) and any(marker in lowered for marker in _CONTEXT_MARKERS):
        return ContextTooLong(text, status=status, **ctx)
    if status == 408:
        return ProviderTimeout(text, status=status, **ctx)
    if status >= 500 or status == 409:
        return ProviderUnavailable(text, status=status, **ctx)
    return BadRequest(text, status=status, **ctx)


def _connection_error(exc: BaseException, provider: str, ctx: dict[str, Any]) -> ProviderUnavailable:
    """Refused (never connected: `ProviderUnreachable`) or dropped after the request was sent (a server that
    closed or reset the connection mid-request, `ProviderUnavailable`, retried like a 5xx)."""
    chain = _causes(exc)
    transport = chain[1] if len(chain) > 1 else exc  # the HTTP library's error under the SDK's wrapper
    detail = next((str(e).strip() for e in chain[1:] if str(e).strip()), "")
    what = f"{type(transport).__name__}: {detail}" if detail else type(transport).__name__
    if type(transport).__name__ in _NEVER_CONNECTED:
        return ProviderUnreachable(f"{provider} could not be reached ({what})", **ctx)
    return ProviderUnavailable(f"{provider} dropped the connection before answering ({what})", **ctx)


_NEVER_CONNECTED = {"ConnectError", "ConnectionRefusedError", "gaierror", "UnsupportedProtocol"}


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
