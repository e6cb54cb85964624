"""Context assembly: the system prompt for a category and the conversation.

Pure: no I/O. Which tools a task is offered follows its predicted tool kinds (`TaskAnalysis.tools_offered`),
not its category.
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


def system_prompt(category: Category) -> str:
    return _PROMPTS.get(category, _DEFAULT_PROMPT)


def build_messages(
    task: str, *, category: Category, history: Sequence[tuple[str, str]], system: str | None
) -> tuple[Message, ...]:
    """System prompt (the caller's, else the category's), earlier turns, then the task."""
    messages = [Message(role="system", parts=(TextPart(system or system_prompt(category)),))]
    for role, text in history:
        messages.append(Message(role="user" if role == "user" else "assistant", parts=(TextPart(text),)))
    messages.append(Message(role="user", parts=(TextPart(task),)))
    return tuple(messages)
