"""The task vocabulary: the seeds' categories and the analysis record every analyser returns.

Invariants: `complexity` is 1..5, `strong_score` is in [0, 1], token estimates are >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Category(StrEnum):
    """The seeds' eight task categories."""

    DEEP_REASONING = "deep_reasoning"
    COMPLEX_CODING = "complex_coding"
    LONG_DOCUMENT = "long_document"
    AGENTIC_TOOL_USE = "agentic_tool_use"
    QA_RETRIEVAL = "qa_retrieval"
    TEXT_GENERATION = "text_generation"
    CLASSIFICATION = "classification"
    EMBEDDING = "embedding"


# Above this many estimated input tokens a task needs a long-context model (seeds: 50k).
LONG_CONTEXT_TOKENS = 50_000

# The kinds of tool a task can need, and the sub-servers' tools that serve each. Search comes with
# fetch_url because a result's snippet is rarely enough: the model reads the pages it found.
TOOL_KINDS = ("code", "search", "fetch", "memory")
TOOLS_BY_KIND: dict[str, tuple[str, ...]] = {
    "code": ("execute_python", "validate_python_syntax"),
    "search": ("web_search", "fetch_url"),
    "fetch": ("fetch_url",),
    "memory": ("memory_search", "memory_store"),
}


@dataclass(frozen=True, slots=True)
class TaskAnalysis:
    """What an analyser concluded about one task."""

    category: Category
    complexity: int
    strong_score: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    requires_tools: bool
    requires_long_context: bool
    reasons: tuple[str, ...] = field(default=())
    analyzer: str = "local"
    # The kinds of tool the task asks for (a subset of TOOL_KINDS, in its order). Empty with
    # `requires_tools` set means a tool is needed but not which (e.g. an LLM analyser's verdict).
    tool_kinds: tuple[str, ...] = ()
    # The task's requests for an action that is hard to undo (deleting production data, moving money,
    # changing credentials); `complete` asks a human before running such a task. Empty: not critical.
    critical_actions: tuple[str, ...] = ()

    @property
    def critical(self) -> bool:
        return bool(self.critical_actions)

    def __post_init__(self) -> None:
        if not 1 <= self.complexity <= 5:
            raise ValueError(f"complexity must be 1..5, got {self.complexity}")
        if not 0.0 <= self.strong_score <= 1.0:
            raise ValueError(f"strong_score must be in [0, 1], got {self.strong_score}")
        if self.estimated_input_tokens < 1 or self.estimated_output_tokens < 1:
            raise ValueError("token estimates must be >= 1")
        unknown = set(self.tool_kinds) - set(TOOL_KINDS)
        if unknown:
            raise ValueError(f"unknown tool kinds {sorted(unknown)}; use {TOOL_KINDS}")
        if self.tool_kinds and not self.requires_tools:
            raise ValueError("tool_kinds is set but requires_tools is false")

    @property
    def tools_offered(self) -> tuple[str, ...]:
        """The tools a model doing this task is offered: those of its kinds, all when the kind is unknown."""
        kinds = self.tool_kinds or (TOOL_KINDS if self.requires_tools else ())
        return tuple(dict.fromkeys(name for kind in kinds for name in TOOLS_BY_KIND[kind]))
