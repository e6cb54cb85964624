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
