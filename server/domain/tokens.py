"""A conservative count of the input tokens one `ChatRequest` can be billed for, without a tokenizer.

Everything that goes out counts: every message (system prompt, history, the task, earlier rounds' tool
calls and results) and every offered tool's name, description and JSON Schema as serialised. Pure.

Why these ratios: byte-level BPE tokenizers average about 4 characters of English per token, fewer for
code, JSON and identifiers; this counts 3 ASCII characters per token and every 2 bytes of other UTF-8 text
(accents, CJK, emoji) as a token, plus a fixed overhead per message, per tool and per request for the
chat template. It overestimates ordinary requests by roughly a quarter to a half; a reservation that
overestimates refuses a call a little early, one that underestimates lets a budget be overspent.
"""

from __future__ import annotations

import json
from typing import Any

from server.domain.messages import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart, ToolSpec

REQUEST_OVERHEAD = 16  # the template's framing of one request
MESSAGE_OVERHEAD = 8  # role markers and separators around each message
PART_OVERHEAD = 8  # a tool call's or result's id, type and wrapper
TOOL_OVERHEAD = 12  # the framing of one tool definition


def text_tokens(text: str) -> int:
    """At least as many tokens as a byte-level BPE tokenizer gives `text`, for ordinary text."""
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    other_bytes = len(text.encode("utf-8", "surrogatepass")) - ascii_chars
    return -(-ascii_chars // 3) + -(-other_bytes // 2)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def message_tokens(message: Message) -> int:
    total = MESSAGE_OVERHEAD
    for part in message.parts:
        if isinstance(part, TextPart):
            total += text_tokens(part.text)
        elif isinstance(part, ToolCallPart):
            total += PART_OVERHEAD + text_tokens(part.id) + text_tokens(part.name) + text_tokens(_json(part.arguments))
        elif isinstance(part, ToolResultPart):
            total += PART_OVERHEAD + text_tokens(part.tool_call_id) + text_tokens(part.name)
            total += text_tokens(part.content)
    return total


def tool_tokens(tool: ToolSpec) -> int:
    definition = {"name": tool.name, "description": tool.description, "parameters": tool.input_schema}
    return TOOL_OVERHEAD + text_tokens(_json(definition))


def request_input_tokens(request: ChatRequest) -> int:
    """The input tokens `request` can be billed for, counted conservatively (see the module docstring)."""
    return (
        REQUEST_OVERHEAD + sum(message_tokens(m) for m in request.messages) + sum(tool_tokens(t) for t in request.tools)
    )
