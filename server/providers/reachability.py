"""Whether a self-hosted HTTP endpoint (Ollama) is up, answered from a short-lived cache.

A dead Ollama used to cost every call a connection attempt (0.8-2.2 s) before the fallback ran, while
`models` and `doctor` called it available. The registry asks this probe instead: one TCP connect per
endpoint per `ttl_s` (refused at once on loopback, at most `timeout_s` elsewhere), so a dead endpoint is
skipped without a round trip per call and one started later is used within `ttl_s`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from server.domain.config import ProviderConfig

PROBE_TTL_S = 15.0
PROBE_TIMEOUT_S = 0.3


class EndpointProbe:
    """`probe(provider)`: None when its base URL accepts connections, else why it does not."""

    def __init__(
        self,
        ttl_s: float = PROBE_TTL_S,
        timeout_s: float = PROBE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s, self._timeout_s, self._clock = ttl_s, timeout_s, clock
        self._seen: dict[str, tuple[float, str | None]] = {}

    def __call__(self, provider: ProviderConfig) -> str | None:
        url = provider.base_url or ""
        now = self._clock()
        cached = self._seen.get(url)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        problem = self._connect(url)
        self._seen[url] = (now, problem)
        return problem

    def _connect(self, url: str) -> str | None:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=self._timeout_s):
                return None
        except OSError as exc:
            why = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or "no answer")
            return f"nothing answers at {url} ({why}); start it (for Ollama: `ollama serve`)"
