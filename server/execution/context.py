"""Context assembly: the system prompt for a category, the conversation, and the tools a task is offered.

Pure: no I/O. The tool subsets follow the seeds' category → tool table; the sub-servers decide what the
tools actually do.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.domain.messages import Message, TextPart
from server.domain.tasks import Category

_PROMPTS = {
    Category.DEEP_REASONING: (
        "You reason carefully. Work through the problem step by step, check each step before relying on it, "
        "state your assumptions, and say plainly where you are unsure. Correctness matters more than speed."
    ),
    Category.COMPLEX_CODING: (
        "You are a senior software engineer. Write clear, correct, production-quality code with error handling "
        "and type hints, explain non-obvious choices briefly, and check that the code is syntactically valid."
    ),
    Category.LONG_DOCUMENT: (
        "You analyse documents. Read closely, pull out the key facts, note inconsistencies, and cite the section "
        "or passage that supports each claim you make about the document."
    ),
    Category.AGENTIC_TOOL_USE: (
        "You are an agent with tools. Use them when they help: after each result decide whether another call is "
        "needed, and explain briefly what you did and why before giving the final answer."
    ),
}
_DEFAULT_PROMPT = "You are a helpful, accurate assistant. Answer clearly and concisely; if you are not sure, say so."

_ALL_TOOLS = ("web_search", "fetch_url", "execute_python", "validate_python_syntax", "memory_store", "memory_search")
_TOOL_SUBSETS: dict[Category, tuple[str, ...]] = {
    Category.AGENTIC_TOOL_USE: _ALL_TOOLS,
    Category.DEEP_REASONING: ("execute_python", "memory_search"),
    Category.COMPLEX_CODING: ("execute_python", "validate_python_syntax", "web_search"),
}
_DEFAULT_TOOLS = ("web_search", "memory_search")


def system_prompt(category: Category) -> str:
    return _PROMPTS.get(category, _DEFAULT_PROMPT)


def tool_names_for(category: Category) -> tuple[str, ...]:
    """The seeds' tool subset for a category."""
    return _TOOL_SUBSETS.get(category, _DEFAULT_TOOLS)


def build_messages(
    task: str, *, category: Category, history: Sequence[tuple[str, str]], system: str | None
) -> tuple[Message, ...]:
    """System prompt (the caller's, else the category's), earlier turns, then the task."""
    messages = [Message(role="system", parts=(TextPart(system or system_prompt(category)),))]
    for role, text in history:
        messages.append(Message(role="user" if role == "user" else "assistant", parts=(TextPart(text),)))
    messages.append(Message(role="user", parts=(TextPart(task),)))
    return tuple(messages)
