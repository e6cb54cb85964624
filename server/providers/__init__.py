"""Provider adapters, one per wire format, behind the one-method `ChatModel` protocol.

    make_chat_model("openai" | "anthropic" | "llamacpp", ...) -> ChatModel

Every adapter gets the shared `httpx2.AsyncClient` (the test seam: point it at a fake server) and turns
SDK errors into `server.errors` types at its boundary.
"""

from __future__ import annotations

from pathlib import Path

import httpx2

from server.errors import ConfigError
from server.providers.base import ChatModel


def make_chat_model(
    kind: str,
    *,
    provider_id: str,
    base_url: str | None,
    api_key: str | None,
    api_key_env: str | None,
    http_client: httpx2.AsyncClient,
    data_dir: Path,
) -> ChatModel:
    """The adapter for a provider's wire format."""
    if kind == "openai":
        from server.providers.openai_chat import OpenAIChatModel

        return OpenAIChatModel(
            provider_id=provider_id,
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            http_client=http_client,
        )
    if kind == "anthropic":
        from server.providers.anthropic_messages import AnthropicChatModel

        return AnthropicChatModel(
            provider_id=provider_id,
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            http_client=http_client,
        )
    if kind == "llamacpp":
        from server.providers.llamacpp_local import LlamaCppModel

        return LlamaCppModel(provider_id=provider_id, data_dir=data_dir)
    raise ConfigError(f"unknown provider kind {kind!r}: use openai, anthropic or llamacpp")


__all__ = ["ChatModel", "make_chat_model"]
