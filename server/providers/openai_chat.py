"""OpenAI Chat Completions wire format, used by every OpenAI-compatible endpoint.

OpenAI, Gemini's OpenAI endpoint, Together, Groq, OpenRouter, Moonshot, Ollama, vLLM and llama.cpp's
server differ only in base URL and key: they are configuration, not code. Conversion to and from the
internal format is pure (`to_wire`, `from_wire`); the SDK client never retries (the dispatcher does).
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

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

INVALID_ARGUMENTS = "__invalid_json__"
_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema},
    }


def message_to_wire(message: Message) -> list[dict[str, Any]]:
    """One internal message → one or more wire messages (each tool result is its own `tool` message)."""
    if message.role == "tool":
        return [
            {
                "role": "tool",
                "tool_call_id": part.tool_call_id,
                "content": f"Error: {part.content}" if part.is_error else part.content,
            }
            for part in message.parts
            if isinstance(part, ToolResultPart)
        ]
    wire: dict[str, Any] = {"role": message.role, "content": message.text or None}
    calls = message.tool_calls
    if calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ]
    elif wire["content"] is None:
        wire["content"] = ""
    return [wire]


def to_wire(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a Chat Completions request."""
    params: dict[str, Any] = {
        "model": request.model,
        "messages": [w for m in request.messages for w in message_to_wire(m)],
    }
    if request.reasoning_model:  # o-series: no temperature, a different token limit name
        params["max_completion_tokens"] = request.max_tokens
    else:
        params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [tool_to_wire(t) for t in request.tools]
        params["tool_choice"] = "auto"
    return params


def _arguments(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {INVALID_ARGUMENTS: raw or ""}
    return value if isinstance(value, dict) else {INVALID_ARGUMENTS: raw or ""}


def usage_from_wire(usage: Any) -> Usage:
    """prompt_tokens include cached ones; completion_tokens include reasoning ones (as the invariant wants)."""
    if usage is None:
        return Usage()
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        cached_input_tokens=(getattr(prompt_details, "cached_tokens", None) or 0),
        output_tokens=usage.completion_tokens or 0,
        reasoning_tokens=(getattr(completion_details, "reasoning_tokens", None) or 0),
    )


def from_wire(completion: Any) -> ChatResponse:
    """A ChatCompletion → the internal response (first choice)."""
    if not completion.choices:
        return ChatResponse(Message("assistant", ()), usage_from_wire(completion.usage), FinishReason.OTHER,
                            completion.model or "", completion.id)  # fmt: skip
    choice = completion.choices[0]
    parts: list[Any] = []
    if choice.message.content:
        parts.append(TextPart(choice.message.content))
    for call in choice.message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is not None:
            parts.append(ToolCallPart(call.id, function.name, _arguments(function.arguments)))
    return ChatResponse(
        message=Message("assistant", tuple(parts)),
        usage=usage_from_wire(completion.usage),
        finish_reason=_FINISH.get(choice.finish_reason or "", FinishReason.OTHER),
        model=completion.model or "",
        response_id=completion.id,
    )


class OpenAIChatModel:
    """An OpenAI-compatible endpoint behind the `ChatModel` protocol."""

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
        # Keyless local servers (Ollama, vLLM) ignore the key, but the SDK requires a non-empty one.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=base_url, http_client=http_client, max_retries=0
        )

    async def chat(self, request: ChatRequest) -> ChatResponse:
        try:
            # `post` with our already-wire-shaped body: `chat.completions.create` would walk it through the SDK's
            # TypedDict transform first, which costs more CPU than everything else the router does per call.
            completion = await self._client.post(
                "/chat/completions",
                body=to_wire(request),
                cast_to=ChatCompletion,
                options={"timeout": request.timeout_s},
            )
        except openai.OpenAIError as exc:
            raise translate(exc, provider=self._provider, model=request.model, api_key_env=self._key_env) from exc
        except (httpx2.HTTPError, ValueError) as exc:  # garbled body or transport error the SDK let through
            raise translate(exc, provider=self._provider, model=request.model, api_key_env=self._key_env) from exc
        return from_wire(completion)
