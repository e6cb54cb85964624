"""One chat adapter per provider, created on first use and sharing one HTTP client (also made on first use).

Keys are read from the environment here, at the moment an adapter is made, and handed only to that
adapter; they are never stored elsewhere or logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2

from server.domain.config import ModelConfig
from server.domain.registry import Registry
from server.providers import make_chat_model
from server.providers.base import ChatModel


class ProviderPool:
    """Adapters keyed by provider id."""

    def __init__(
        self,
        registry: Registry,
        env: Mapping[str, str],
        http_client: httpx2.AsyncClient | None,
        data_dir: Path,
        factory: Callable[..., ChatModel] = make_chat_model,
    ) -> None:
        self._registry = registry
        self._env = env
        self._http = http_client
        self._owns_http = http_client is None
        self._data_dir = data_dir
        self._factory = factory
        self._adapters: dict[str, ChatModel] = {}

    def get(self, model: ModelConfig) -> ChatModel:
        adapter = self._adapters.get(model.provider)
        if adapter is None:
            provider = self._registry.provider(model)
            key_env = provider.api_key_env
            adapter = self._factory(
                provider.kind,
                provider_id=model.provider,
                base_url=provider.base_url,
                api_key=self._env.get(key_env) if key_env else None,
                api_key_env=key_env,
                http_client=self._http_client(),
                data_dir=self._data_dir,
            )
            self._adapters[model.provider] = adapter
        return adapter

    def _http_client(self) -> httpx2.AsyncClient:
        if self._http is None:  # not at start-up: its TLS context reads the CA bundle (~40 ms of CPU)
            self._http = httpx2.AsyncClient(timeout=httpx2.Timeout(60.0, connect=10.0))
        return self._http

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            close: Any = getattr(adapter, "aclose", None)
            if close is not None:
                await close()
        self._adapters.clear()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
