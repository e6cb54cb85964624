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

from server.domain.messages import (
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
from server.providers.translate import UnreadableBody, count, field, translate

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
    """Anthropic counts cache reads and writes apart from `input_tokens`; the internal input includes both."""
    if not isinstance(usage, dict):
        return Usage()
    cache_read = count(usage, "cache_read_input_tokens")
    return Usage(
        input_tokens=count(usage, "input_tokens") + cache_read + count(usage, "cache_creation_input_tokens"),
        cached_input_tokens=cache_read,
        output_tokens=count(usage, "output_tokens"),
    )


def from_wire(body: Any) -> ChatResponse:
    """A Messages response body (decoded JSON) → the internal response; `UnreadableBody` if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("content", []), list):
        raise UnreadableBody("the body is not a message object")
    parts: list[Any] = []
    for block in field(body, "content", list):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            parts.append(TextPart(block["text"]))
        elif kind == "tool_use" and isinstance(block.get("name"), str):
            raw = block.get("input")
            arguments = raw if isinstance(raw, dict) else {"value": raw}
            parts.append(ToolCallPart(str(block.get("id") or ""), block["name"], arguments))
    return ChatResponse(
        message=Message("assistant", tuple(parts)),
        usage=usage_from_wire(body.get("usage")),
        finish_reason=_FINISH.get(str(body.get("stop_reason") or ""), FinishReason.OTHER),
        model=str(body.get("model") or ""),
        response_id=str(body.get("id") or ""),
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
            # The raw response, read by `from_wire` (see openai_chat); errors are still raised by the SDK.
            response = await self._client.post(
                "/v1/messages", body=to_wire(request), cast_to=httpx2.Response, options={"timeout": request.timeout_s}
            )
            message = from_wire(response.json())
        # The SDK's errors, and a garbled body or transport error the SDK let through.
        except (anthropic.AnthropicError, httpx2.HTTPError, ValueError) as exc:
            raise translate(
                exc,
                provider=self._provider,
                model=request.model,
                api_key_env=self._key_env,
                timeout_s=request.timeout_s,
            ) from exc
        return message
