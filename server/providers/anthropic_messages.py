"""Anthropic Messages wire format.

The system prompt is a top-level field; tools carry MCP's JSON Schema as `input_schema` unchanged; tool
calls are `tool_use` blocks and their results `tool_result` blocks inside a user turn; consecutive turns
of one role are merged because the API requires alternation. Usage is normalised so that input tokens
include cache reads and cache writes (Anthropic reports them separately).
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
from anthropic.types import Message as AnthropicMessage

from server.messages import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from server.providers.translate import translate

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


def _blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart) and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            blocks.append({"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments})
        elif isinstance(part, ToolResultPart):
            blocks.append(
                {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content,
                 "is_error": part.is_error}
            )  # fmt: skip
    return blocks


def to_wire(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a Messages request."""
    system = "\n\n".join(m.text for m in request.messages if m.role == "system" and m.text)
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"  # tool results travel in a user turn
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    params: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens, "messages": turns}
    if system:
        params["system"] = system
    if request.temperature is not None and not request.reasoning_model:
        params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [tool_to_wire(t) for t in request.tools]
    return params


def usage_from_wire(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        cached_input_tokens=cache_read,
        output_tokens=usage.output_tokens or 0,
    )


def from_wire(message: Any) -> ChatResponse:
    parts: list[Any] = []
    for block in message.content or []:
        if block.type == "text" and block.text:
            parts.append(TextPart(block.text))
        elif block.type == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else {"value": block.input}
            parts.append(ToolCallPart(block.id, block.name, arguments))
    return ChatResponse(
        message=Message("assistant", tuple(parts)),
        usage=usage_from_wire(message.usage),
        finish_reason=_FINISH.get(message.stop_reason or "", FinishReason.OTHER),
        model=message.model or "",
        response_id=message.id,
    )


class AnthropicChatModel:
    """Anthropic's Messages API behind the `ChatModel` protocol."""

    def __init__(
        self,
        *,
        provider_id: str,
        base_url: str | None,
        api_key: str | None,
        api_key_env: str | None,
        http_client: httpx2.AsyncClient,
    ) -> None:
        self._provider = provider_id
        self._key_env = api_key_env
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "missing", base_url=base_url, http_client=http_client, max_retries=0
        )

    async def chat(self, request: ChatRequest) -> ChatResponse:
        try:
            # Our body is already wire-shaped: skip `messages.create`'s TypedDict transform (see openai_chat).
            message = await self._client.post(
                "/v1/messages", body=to_wire(request), cast_to=AnthropicMessage, options={"timeout": request.timeout_s}
            )
        except anthropic.AnthropicError as exc:
            raise translate(exc, provider=self._provider, model=request.model, api_key_env=self._key_env) from exc
        except (httpx2.HTTPError, ValueError) as exc:
            raise translate(exc, provider=self._provider, model=request.model, api_key_env=self._key_env) from exc
        return from_wire(message)
