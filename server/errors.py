"""The router's typed errors. Policy code (fallback, budgets, tool errors) looks only at these types.

    RouterError
    ├── ConfigError            the configuration is invalid; the message names file, key and what is allowed
    ├── AllModelsFailed        every model of a route failed; carries each attempt
    └── ProviderError          a provider call failed (translated once, at the adapter boundary)
        ├── RateLimited        429; retry_after_s from Retry-After when given
        ├── ProviderTimeout    no answer in time
        ├── ProviderUnavailable  5xx, Anthropic 529 overloaded, connection refused/reset, garbled body
        ├── AuthError          401/403; names the env var to set or fix, never the key
        ├── BadRequest         the request itself is wrong (400/404/422)
        └── ContextTooLong     the prompt does not fit the model's context window

Messages are written for the person or model reading them: they say what to do next. The original
foreign exception is kept as `__cause__`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RouterError(Exception):
    """Base of every anticipated model-router failure."""


class ConfigError(RouterError):
    """The configuration cannot be used as written."""


class ProviderError(RouterError):
    """A call to a model provider failed."""

    def __init__(self, message: str, *, provider: str, model: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status


class RateLimited(ProviderError):
    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class ProviderTimeout(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    pass


class AuthError(ProviderError):
    def __init__(self, message: str, *, api_key_env: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.api_key_env = api_key_env


class BadRequest(ProviderError):
    pass


class ContextTooLong(ProviderError):
    pass


class AllModelsFailed(RouterError):
    """Every model in the chain failed; `attempts` lists each one and why."""

    def __init__(self, message: str, attempts: Sequence[Any]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)
