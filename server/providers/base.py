"""The one-method protocol every wire-format adapter implements."""

from __future__ import annotations

from typing import Protocol

from server.domain.messages import ChatRequest, ChatResponse


class ChatModel(Protocol):
    """Sends one request to one provider and returns the normalised response."""

    async def chat(self, request: ChatRequest) -> ChatResponse: ...
