"""Pure conversions between the internal message format and each wire format."""

from __future__ import annotations

import pytest

from server.domain.messages import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart, ToolSpec
from server.providers import anthropic_messages as anth
from server.providers import openai_chat as oai

SEARCH = ToolSpec("web_search", "Search the web", {"type": "object", "properties": {"query": {"type": "string"}},
                                                   "required": ["query"]})  # fmt: skip
CONVERSATION = (
    Message.system("be brief"),
    Message.user("weather in Paris?"),
    Message("assistant", (TextPart("let me look"), ToolCallPart("call_1", "web_search", {"query": "paris weather"}))),
    Message("tool", (ToolResultPart("call_1", "web_search", "sunny, 21C"),)),
)


def test_mcp_tool_schema_maps_to_both_formats() -> None:
    assert oai.tool_to_wire(SEARCH) == {
        "type": "function",
        "function": {"name": "web_search", "description": "Search the web", "parameters": SEARCH.input_schema},
    }
    assert anth.tool_to_wire(SEARCH) == {
        "name": "web_search",
        "description": "Search the web",
        "input_schema": SEARCH.input_schema,
    }


def test_openai_messages_keep_tool_call_ids() -> None:
    wire = oai.to_wire(ChatRequest(model="gpt-4.1", messages=CONVERSATION, tools=(SEARCH,), max_tokens=50))
    roles = [m["role"] for m in wire["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    call = wire["messages"][2]["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"]["arguments"] == '{"query": "paris weather"}'
    assert wire["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}
    assert wire["max_tokens"] == 50 and "max_completion_tokens" not in wire
    assert wire["tool_choice"] == "auto"


def test_openai_reasoning_models_take_max_completion_tokens_and_no_temperature() -> None:
    wire = oai.to_wire(ChatRequest(model="o3", messages=CONVERSATION[:2], max_tokens=99, temperature=0.7,
                                   reasoning_model=True))  # fmt: skip
    assert wire["max_completion_tokens"] == 99 and "max_tokens" not in wire and "temperature" not in wire


def test_openai_error_results_are_marked_for_the_model() -> None:
    message = Message("tool", (ToolResultPart("c9", "web_search", "timed out", is_error=True),))
    assert oai.message_to_wire(message)[0]["content"] == "Error: timed out"


def test_openai_response_with_tool_calls_and_usage_details() -> None:
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                     "tool_calls": [
            {"id": "call_7", "type": "function", "function": {"name": "web_search", "arguments": '{"query": "x"}'}},
            {"id": "call_8", "type": "function", "function": {"name": "web_search", "arguments": "{not json"}},
        ]}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 1000},
                  "completion_tokens_details": {"reasoning_tokens": 200}},
    }  # fmt: skip
    response = oai.from_wire(completion)
    calls = response.message.tool_calls
    assert [(c.id, c.arguments) for c in calls] == [("call_7", {"query": "x"}), ("call_8", {oai.INVALID_ARGUMENTS:
                                                                                           "{not json"})]  # fmt: skip
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (1200, 1000)
    assert (response.usage.output_tokens, response.usage.reasoning_tokens) == (300, 200)
    assert response.finish_reason.value == "tool_calls"


def test_anthropic_request_merges_roles_and_carries_tool_results() -> None:
    wire = anth.to_wire(ChatRequest(model="claude-sonnet-4-20250514", messages=CONVERSATION, tools=(SEARCH,)))
    assert wire["system"] == "be brief"
    assert [t["role"] for t in wire["messages"]] == ["user", "assistant", "user"]
    assert wire["messages"][1]["content"][1] == {"type": "tool_use", "id": "call_1", "name": "web_search",
                                                 "input": {"query": "paris weather"}}  # fmt: skip
    assert wire["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": "call_1",
                                                 "content": "sunny, 21C", "is_error": False}  # fmt: skip
    assert wire["max_tokens"] == 1024


def test_anthropic_usage_counts_cache_reads_and_writes_as_input() -> None:
    usage = anth.usage_from_wire({"input_tokens": 100, "cache_read_input_tokens": 3000,
                                  "cache_creation_input_tokens": 500, "output_tokens": 40})  # fmt: skip
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (3600, 3000, 40)


def test_anthropic_response_maps_tool_use_and_stop_reason() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "tool_use",
               "content": [{"type": "text", "text": "checking"},
                           {"type": "tool_use", "id": "toolu_1", "name": "web_search", "input": {"query": "q"}}],
               "usage": {"input_tokens": 10, "output_tokens": 5}}  # fmt: skip
    response = anth.from_wire(message)
    assert response.message.text == "checking"
    assert response.message.tool_calls[0].id == "toolu_1"
    assert response.finish_reason.value == "tool_calls"


def test_openai_compatible_servers_quirks_are_read() -> None:
    """Arguments sent as an object (some compatible servers), null usage details, no choices."""
    body = {"id": "x", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": "hi", "tool_calls": [
        {"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}}  # fmt: skip
    response = oai.from_wire(body)
    assert response.message.text == "hi" and response.message.tool_calls[0].arguments == {"a": 1}
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (5, 0)
    empty = oai.from_wire({"id": "y", "choices": [], "usage": None})
    assert empty.message.parts == () and empty.usage.input_tokens == 0


@pytest.mark.parametrize("body", [[], "ok", None, {"choices": "nope"}])
def test_openai_body_not_shaped_like_a_completion_is_unreadable(body: object) -> None:
    with pytest.raises(oai.UnreadableBody):
        oai.from_wire(body)


@pytest.mark.parametrize("body", [[], "ok", {"content": {"type": "text"}}])
def test_anthropic_body_not_shaped_like_a_message_is_unreadable(body: object) -> None:
    with pytest.raises(anth.UnreadableBody):
        anth.from_wire(body)


def test_garbled_token_counts_count_as_zero() -> None:
    usage = oai.usage_from_wire({"prompt_tokens": "12", "completion_tokens": -3, "prompt_tokens_details": {
        "cached_tokens": True}})  # fmt: skip
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (0, 0, 0)
