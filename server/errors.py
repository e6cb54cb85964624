"""Every error a caller of model-router can meet, in one tree. Policy code looks only at these types.

    RouterError                    base of every anticipated failure; the message says what to do next
    ├── ConfigError                the configuration is invalid; names file, key and what is allowed
    ├── HostConfigError            an MCP host's config file (Claude Desktop) cannot be read or written safely
    ├── InputError                 the caller's arguments cannot be used as given
    │   ├── InvalidTask            the task text is empty, too long or not text
    │   ├── InvalidSessionId       the session id has characters or a length that are not allowed
    │   ├── InvalidTimeWindow      a report's since/until cannot be read or is out of range
    │   ├── InvalidStrategy        `complete`'s strategy is not single, cascade or evaluate_optimise
    │   └── EvalDataError          a labelled file cannot be read; names the file and line
    ├── RoutingError               no route satisfies the request (self_hosted_only, force_model, context fit)
    ├── BudgetExceeded             a budget has no room for a call; names it, what is spent and what is left
    ├── RateLimitReached           a configured rpm / tpm / max_concurrent had no room within rate_limits.wait_s
    ├── ConfirmationRequired       a critical or costly call needs a human's yes and none could be asked; says
    │                              how to allow it
    ├── NotConfirmed               the human declined (or cancelled) the confirmation: nothing was sent
    ├── StoreError                 the database cannot be opened, read or written
    │   ├── SchemaTooNew           the database was written by a newer model-router
    │   └── NotRecorded            an attempt's ledger row or budget hold could not be committed: the call stops
    ├── LearnedModelError          the stored learned router cannot be used
    ├── PriceUpdateFailed          newer price data could not be fetched or read; the old data stays in use
    ├── ToolUnavailable            a tool sub-server could not be started or reached
    ├── TaskStopped                a failure no other model can fix (auth, bad request); carries the attempts
    ├── AllModelsFailed            every model of a route failed; carries each attempt
    └── ProviderError              a provider call failed (translated once, at the adapter boundary)
        ├── RateLimited            429; retry_after_s from Retry-After when given
        ├── ProviderTimeout        no answer in time
        ├── ProviderUnavailable    5xx, Anthropic 529 overloaded, connection dropped mid-request, garbled body
        │   └── ProviderUnreachable    no connection at all (refused, no route, DNS): skipped for a while
        ├── AuthError              401/403; names the env var to set or fix, never the key
        ├── BadRequest             the request itself is wrong (400/404/422)
        └── ContextTooLong         the prompt does not fit the model's context window

The MCP tools turn any `RouterError` into a `ToolError` with its message; the CLI prints it and exits 1.
Foreign exceptions are translated once, at the boundary that meets them, with the original kept as
`__cause__`; `reason(exc)` is their text in a message (the type name when `str(exc)` is empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def reason(exc: BaseException) -> str:
    """An exception's text for a message, never empty: `str(exc)`, or its type name when that is blank
    (`httpx2.ReadError("")`, `TimeoutError()` and anyio's stream errors carry no text)."""
    return str(exc).strip() or type(exc).__name__


class RouterError(Exception):
    """Base of every anticipated model-router failure."""


class ConfigError(RouterError):
    """The configuration cannot be used as written."""


class HostConfigError(RouterError):
    """The host's config file cannot be read or written safely."""


class InputError(RouterError):
    """The caller's arguments cannot be used as given; the message says which and what is allowed."""


class InvalidTask(InputError):
    """The task text cannot be routed; the message says how to fix it."""


class InvalidSessionId(InputError):
    """The session id has characters or a length that are not allowed."""


class InvalidTimeWindow(InputError):
    """A report window bound cannot be read or lies outside the representable range."""


class InvalidStrategy(InputError):
    """`complete` was asked for a strategy it does not know."""


class EvalDataError(InputError):
    """A labelled file cannot be read; the message names the file, the line and what is expected."""


class RoutingError(RouterError):
    """No route can satisfy the request; the message says what to change."""


class BudgetExceeded(RouterError):
    """A budget has no room for a call; the message names it, what was spent and what remains."""

    def __init__(self, message: str, *, budget: str) -> None:
        super().__init__(message)
        self.budget = budget


class RateLimitReached(RouterError):
    """A client-side rate limit had no room in time; the message names the model or provider, the limit
    (rpm, tpm or max_concurrent), its value and what the window holds. The chain moves to the next model."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class ConfirmationRequired(RouterError):
    """A call needs a human's confirmation (a critical action, or an estimated cost above
    `budgets.confirm_above_usd`) and the client cannot ask one; the message says how to allow it."""


class NotConfirmed(RouterError):
    """The human declined or cancelled the confirmation (or the route changed after it was given): nothing
    was sent to any model and nothing was charged."""


class StoreError(RouterError):
    """The database cannot be opened, read or written; the message names it and what to check."""


class SchemaTooNew(StoreError):
    """The database was written by a newer model-router."""

    def __init__(self, version: int, known: int) -> None:
        super().__init__(f"schema version {version} > {known}")
        self.version = version
        self.known = known


class NotRecorded(StoreError):
    """An attempt's ledger row (or its budget reservation) could not be committed.

    The call fails with this instead of answering: a paid answer that is not in the ledger is never returned,
    and no further paid request is made for the call.
    """


class LearnedModelError(RouterError):
    """The stored learned model cannot be used; the message says why and how to fix it."""


class PriceUpdateFailed(RouterError):
    """`prices update` could not fetch or read newer price data; the prices in use are unchanged."""


class ToolUnavailable(RouterError):
    """A tool sub-server could not be started or reached; the message names it and why."""


class TaskStopped(RouterError):
    """A failure no other model can fix (auth, bad request); carries the attempts so far."""

    def __init__(self, message: str, attempts: Sequence[Any]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


class AllModelsFailed(RouterError):
    """Every model in the chain failed; `attempts` lists each one and why."""

    def __init__(self, message: str, attempts: Sequence[Any]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


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
    """The provider was reached but did not answer usefully (5xx, overloaded, the connection dropped mid-request,
    a garbled body): worth one more try after a backoff, like a 5xx."""


class ProviderUnreachable(ProviderUnavailable):
    """No connection could be made at all (refused, no route, DNS): the request never reached the provider, so
    retrying at once is pointless; the fallback skips the provider for a while."""


class AuthError(ProviderError):
    def __init__(self, message: str, *, api_key_env: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.api_key_env = api_key_env


class BadRequest(ProviderError):
    pass


class ContextTooLong(ProviderError):
    pass
