"""Task analysis: what kind of task this is, how hard, how likely it needs a frontier model, how big."""

from server.analysis.local import ANALYZER_VERSION, analyze_task
from server.analysis.types import LONG_CONTEXT_TOKENS, Category, TaskAnalysis

__all__ = ["ANALYZER_VERSION", "LONG_CONTEXT_TOKENS", "Category", "TaskAnalysis", "analyze_task"]
