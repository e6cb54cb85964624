"""OpenAI Chat Completions wire format, used by every OpenAI-compatible endpoint.

OpenAI, Gemini's OpenAI endpoint, Together, Groq, OpenRouter, Moonshot, Ollama, vLLM and llama.cpp's
server differ only in base URL and key: they are configuration, not code. Conversion to and from the
internal format is pure (`to_wire`, `from_wire`); the SDK client never retries (the fallback chain does).
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

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


def _arguments(raw: Any) -> dict[str, Any]:
    """The call's arguments: a JSON object in a string (some compatible servers send the object itself)."""
    if isinstance(raw, dict):
        return raw
    if raw is not None and not isinstance(raw, str):
        return {INVALID_ARGUMENTS: json.dumps(raw)}
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {INVALID_ARGUMENTS: raw or ""}
    return value if isinstance(value, dict) else {INVALID_ARGUMENTS: raw or ""}


def usage_from_wire(usage: Any) -> Usage:
    """prompt_tokens include cached ones; completion_tokens include reasoning ones (as the invariant wants)."""
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=count(usage, "prompt_tokens"),
        cached_input_tokens=count(field(usage, "prompt_tokens_details", dict), "cached_tokens"),
        output_tokens=count(usage, "completion_tokens"),
        reasoning_tokens=count(field(usage, "completion_tokens_details", dict), "reasoning_tokens"),
    )


def from_wire(body: Any) -> ChatResponse:
    """A Chat Completions response body (decoded JSON) → the internal response (first choice).

    Raises `UnreadableBody` when the body is not shaped like a completion; absent optional fields are empty.
    """
    if not isinstance(body, dict) or not isinstance(body.get("choices", []), list):
        raise UnreadableBody("the body is not a chat completion object")
    usage = usage_from_wire(body.get("usage"))
    model, response_id = str(body.get("model") or ""), str(body.get("id") or "")
    choices = body.get("choices") or []
    if not choices:
        return ChatResponse(Message("assistant", ()), usage, FinishReason.OTHER, model, response_id)
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = field(choice, "message", dict)
    parts: list[Any] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(TextPart(content))
    for call in field(message, "tool_calls", list):
        function = field(call, "function", dict) if isinstance(call, dict) else {}
        if isinstance(function.get("name"), str):
            parts.append(
                ToolCallPart(str(call.get("id") or ""), function["name"], _arguments(function.get("arguments")))
            )
    return ChatResponse(
        message=Message("assistant", tuple(parts)),
        usage=usage,
        finish_reason=_FINISH.get(str(choice.get("finish_reason") or ""), FinishReason.OTHER),
        model=model,
        response_id=response_id,
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
            # The raw response: `from_wire` reads the decoded JSON directly, so the SDK need not build (and
            # we then take apart) a ChatCompletion model per call. Errors are still raised by the SDK.
            response = await self._client.post(
                "/chat/completions",
                body=to_wire(request),
                cast_to=httpx2.Response,
                options={"timeout": request.timeout_s},
            )
            completion = from_wire(response.json())
        # The SDK's errors, and a garbled body or transport error the SDK let through.
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise translate(
                exc,
                provider=self._provider,
                model=request.model,
                api_key_env=self._key_env,
                timeout_s=request.timeout_s,
            ) from exc
        return completion
