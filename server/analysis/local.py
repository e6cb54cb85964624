"""The built-in analyser: category, complexity, strong_score and token estimates from hand-written rules.

Deterministic, no network, stdlib only. Categories are scored from weighted cues (`rules.CUES`) plus
structural features (code, maths, answer choices, length); the highest score wins. `strong_score`
estimates how likely a frontier model is needed, from the category's prior and difficulty cues.
Change `ANALYZER_VERSION` whenever the output for some input changes: logged decisions refer to it.
"""

from __future__ import annotations

import math
import re

from server.analysis.critical import critical_actions
from server.analysis.features import Features, estimate_tokens, extract
from server.analysis.prefilter import PrefixIndex
from server.analysis.rules import CUES, WordRegex
from server.analysis.tool_need import ToolNeed
from server.analysis.tool_need import predict as predict_tool_need
from server.domain.tasks import LONG_CONTEXT_TOKENS, Category, TaskAnalysis
from server.errors import InvalidTask

ANALYZER_VERSION = "local-5"

# System prompt and tool schemas sent with every task, on top of the task itself.
_OVERHEAD_TOKENS = 60
_DOCUMENT_TOKENS = 2_500  # above this much text, the task is about a document before anything else

# Typical answer length per category at complexity 1 and 5 (tokens), from the seeds' ranges.
_OUTPUT_RANGE: dict[Category, tuple[int, int]] = {
    Category.DEEP_REASONING: (150, 3000),
    Category.COMPLEX_CODING: (200, 5000),
    Category.LONG_DOCUMENT: (300, 3000),
    Category.AGENTIC_TOOL_USE: (150, 1000),
    Category.QA_RETRIEVAL: (40, 1200),
    Category.TEXT_GENERATION: (120, 2500),
    Category.CLASSIFICATION: (10, 200),
    Category.EMBEDDING: (10, 50),
}
_PROOF = re.compile(r"\b(prove|proof|derive|theorem)\b")
_TESTS = re.compile(r"\b(unit )?tests?\b")
_RECENT_YEAR = re.compile(r"\b20(2[3-9]|3\d)\b")
_QUANTITY_QUESTION = re.compile(
    r"\bhow (many|much|long|far|old|fast)\b|\bwhat (is|was) the (total|number|cost|price|remainder|percentage)\b|"
    r"\bwhat percentage\b"
)
_COMPLEX_HINTS = WordRegex(
    r"\b(distributed|concurren\w*|thread-?safe|scal\w+|production|architecture|multi-?(tier|step|file|part)|"
    r"comprehensive|complete (implementation|application|system)|end-to-end|optimi[sz]\w+|security|"
    r"trade-?offs?|rigorous|formal|justify|in depth|detailed|sliding window|consensus|fault-?toleran\w+)\b"
)
_TRIVIAL_HINTS = re.compile(
    r"^\W*(what is the capital|who (wrote|painted|invented)|when (was|did)|define|translate|hi|hello|thanks)\b"
)
_MULTI_PART = re.compile(r"\b(and then|then (derive|prove|explain|write|use)|also|additionally|finally|"
                         r"first[, ].{0,80}\bthen\b|\b(i|ii|iii)\)|\(\w\) )")  # fmt: skip


def analyze_task(
    task: str,
    *,
    history_tokens: int = 0,
    category: Category | None = None,
    strong_score: float | None = None,
    analyzer: str = "local",
    notes: tuple[str, ...] = (),
    tool_need: ToolNeed | None = None,
) -> TaskAnalysis:
    """Analyse one task. Raises `InvalidTask` for an empty task.

    Another analyser that has decided the `category` and/or `strong_score` passes them in; everything
    else (complexity, token estimates) is derived from the rules for that category, tool need from
    `tool_need` whatever the category, and `notes` lead the reasons.
    """
    if not task or not task.strip():
        raise InvalidTask("task is empty: pass the text of the task to analyse")
    f = extract(task)
    scores = category_scores(f)
    # The category follows the rules' explicit tool requests only, so it is the same with or without the
    # learned tool-need model; what that model adds is offered as tools.
    rule_need = predict_tool_need(task)
    need = tool_need if tool_need is not None else rule_need
    rule_category = _rule_category(f, scores, rule_need.kinds)
    category = category or rule_category
    complexity = _complexity(category, f)
    task_tokens = (
        estimate_tokens(task[:20_000]) * max(1, len(task) // 20_000)
        if len(task) > 20_000
        else (estimate_tokens(task, f.cjk_chars))
    )
    input_tokens = task_tokens + max(history_tokens, 0) + _OVERHEAD_TOKENS
    output_tokens = _output_tokens(category, complexity)
    # Tool need is its own prediction: a task in the agentic category that asks for none of the tools there
    # are (e.g. "explain what a web search engine does") is offered none.
    requires_tools = bool(need.kinds)
    strong = _strong_score(category, complexity, f) if strong_score is None else round(strong_score, 4)
    if category is not rule_category:
        category_reason = f"category {category.value} (the rules said {rule_category.value})"
    elif scores[category] < max(scores.values()):  # the tool need decided it
        category_reason = f"category {category.value} (it asks for tools; the cues said {_runner_up(scores, category)})"
    else:
        runner_up = _runner_up(scores, category)
        category_reason = f"category {category.value} (score {scores[category]:.1f}; next {runner_up})"
    reasons = (
        *notes,
        category_reason,
        f"complexity {complexity}/5, strong_score {strong:.2f}",
        f"~{input_tokens:,} input tokens (task {task_tokens:,}, history {history_tokens:,}), ~{output_tokens:,} output",
        *need.reasons,
    )
    return TaskAnalysis(
        category=category,
        complexity=complexity,
        strong_score=strong,
        estimated_input_tokens=input_tokens,
        estimated_output_tokens=output_tokens,
        requires_tools=requires_tools,
        requires_long_context=input_tokens > LONG_CONTEXT_TOKENS,
        reasons=reasons,
        analyzer=analyzer,
        tool_kinds=need.kinds,
        critical_actions=critical_actions(task),
    )


def rule_signals(task: str) -> tuple[Features, dict[Category, float], float]:
    """The rules' raw view of a task — features, per-category scores, strong_score — for the learned router."""
    f = extract(task)
    scores = category_scores(f)
    category = _rule_category(f, scores, predict_tool_need(task).kinds)
    return f, scores, _strong_score(category, _complexity(category, f), f)


def rule_category(f: Features, scores: dict[Category, float], tool_kinds: tuple[str, ...]) -> Category:
    """The rules' category for features and scores from `rule_signals` and the task's tool need."""
    return _rule_category(f, scores, tool_kinds)


def _rule_category(f: Features, scores: dict[Category, float], tool_kinds: tuple[str, ...]) -> Category:
    best = max(scores, key=lambda c: (scores[c], -_TIE_ORDER.index(c)))
    if scores[best] <= 0:
        best = Category.QA_RETRIEVAL if f.questions else Category.TEXT_GENERATION
    # A task that asks for our tools to be used ("use Python to compute …", "what did I tell you about …") is
    # tool use whatever its topic: it needs a model that calls tools well. Code to write and documents to read
    # keep their category (their models are offered the tools too).
    if tool_kinds and best not in (Category.LONG_DOCUMENT, Category.COMPLEX_CODING):
        return Category.AGENTIC_TOOL_USE
    return best


# When two categories score the same, the earlier one wins (the more demanding reading of the task).
_TIE_ORDER = [
    Category.LONG_DOCUMENT, Category.COMPLEX_CODING, Category.DEEP_REASONING, Category.AGENTIC_TOOL_USE,
    Category.CLASSIFICATION, Category.TEXT_GENERATION, Category.QA_RETRIEVAL, Category.EMBEDDING,
]  # fmt: skip


# Every cue branch, and an index from each word prefix to the branches that need it: a text's prefixes pick
# the few branches that can match, and only those regexes run (those with no usable prefix always run).
_CUES = [(category, cue, points) for category, cues in CUES.items() for cue, points in cues]
_BRANCHES = [(index, branch) for index, (_, cue, _) in enumerate(_CUES) for branch in cue.branches]
_ALWAYS = frozenset(n for n, (_, branch) in enumerate(_BRANCHES) if branch.needed is None)


def _branches_by_prefix() -> dict[str, set[int]]:
    index: dict[str, set[int]] = {}
    for n, (_, branch) in enumerate(_BRANCHES):
        for key in branch.needed or ():
            index.setdefault(key, set()).add(n)
    return index


_BY_PREFIX = _branches_by_prefix()
_PREFIXES = PrefixIndex([branch.needed for _, branch in _BRANCHES])


def _matched_cues(text: str) -> set[int]:
    candidates = set(_ALWAYS)
    for key in _PREFIXES.present(text).intersection(_BY_PREFIX):
        candidates |= _BY_PREFIX[key]
    matched: set[int] = set()
    for n in sorted(candidates):
        index, branch = _BRANCHES[n]
        if index not in matched and branch.search(text):
            matched.add(index)
    return matched


def category_scores(f: Features) -> dict[Category, float]:
    scores = {c: 0.0 for c in Category}
    for index in _matched_cues(f.cue_text):
        category, _, points = _CUES[index]
        scores[category] += points
    tokens = f.chars // 4
    scores[Category.COMPLEX_CODING] += 1.5 * min(f.code_fences, 2) + 0.5 * min(f.code_lines, 6)
    scores[Category.DEEP_REASONING] += 0.8 * min(f.math_marks, 6)
    if f.numbers >= 2 and f.chars < 3_000 and _QUANTITY_QUESTION.search(f.scan) and not _RECENT_YEAR.search(f.scan):
        scores[Category.DEEP_REASONING] += 2.0 + 0.3 * min(f.numbers, 6)  # a word problem
    if f.choices >= 3:
        scores[Category.QA_RETRIEVAL] += 2.0
        if f.math_marks >= 2:  # a multiple-choice question set in formulas is a problem to work out
            scores[Category.DEEP_REASONING] += 3.0
    if tokens > _DOCUMENT_TOKENS:
        scores[Category.LONG_DOCUMENT] += 8.0 + min(tokens / 2_000, 8.0)
    elif tokens > 1_500:
        scores[Category.LONG_DOCUMENT] += 1.0 + tokens / 1_000
    return scores


def _runner_up(scores: dict[Category, float], winner: Category) -> str:
    rest = sorted(((s, c.value) for c, s in scores.items() if c is not winner), reverse=True)
    return f"{rest[0][1]} {rest[0][0]:.1f}" if rest else "none"


def _complexity(category: Category, f: Features) -> int:
    base = {
        Category.DEEP_REASONING: 3, Category.COMPLEX_CODING: 3, Category.LONG_DOCUMENT: 3,
        Category.AGENTIC_TOOL_USE: 3, Category.QA_RETRIEVAL: 2, Category.TEXT_GENERATION: 2,
        Category.CLASSIFICATION: 1, Category.EMBEDDING: 1,
    }[category]  # fmt: skip
    level = base
    level += min(_COMPLEX_HINTS.count(f.scan), 2)
    if _MULTI_PART.search(f.scan):
        level += 1
    if category is Category.DEEP_REASONING and _PROOF.search(f.scan):
        level += 1
    if category is Category.COMPLEX_CODING and _TESTS.search(f.scan) and f.words > 25:
        level += 1
    if f.words > 400 and category is not Category.LONG_DOCUMENT:
        level += 1
    if f.chars < 80 and f.sentences <= 1 and not f.math_marks:
        level -= 1
    if _TRIVIAL_HINTS.search(f.head):
        level = 1
    return max(1, min(5, level))


def _output_tokens(category: Category, complexity: int) -> int:
    low, high = _OUTPUT_RANGE[category]
    # geometric steps between the category's low and high ends
    return round(low * (high / low) ** ((complexity - 1) / 4))


# Prior of needing the strong model, per category (tuned on public RouteLLM outcome data).
_PRIOR = {
    Category.DEEP_REASONING: 0.55, Category.COMPLEX_CODING: 0.55, Category.LONG_DOCUMENT: 0.5,
    Category.AGENTIC_TOOL_USE: 0.45, Category.QA_RETRIEVAL: 0.3, Category.TEXT_GENERATION: 0.3,
    Category.CLASSIFICATION: 0.15, Category.EMBEDDING: 0.05,
}  # fmt: skip


# Cues measured on public strong-vs-weak outcomes (RouteLLM's GPT-4 vs Mixtral results): questions that
# need inference over a scenario or several quantities separate the models more than recall questions.
_INFERENCE = WordRegex(
    r"\b(if|then|therefore|because|would|most likely|best explains?|argument|logically|implies|assume|valid|"
    r"conclude|suppose)\b"
)
_QUANTITY_RELATION = WordRegex(r"\b(times as|more than|less than|fewer|twice|half|percent|remaining|left over|rest)\b")
_RECALL = WordRegex(r"\b(who|name|which country|capital|when did|what year|known as|refers? to|called|defined as)\b")
_CHOICE_START = re.compile(r"\n\s*\(?A[.)]\s")


def _strong_score(category: Category, complexity: int, f: Features) -> float:
    """A logistic blend of the category prior, complexity, question length and inference cues; in [0, 1].

    Within a kind of task, a longer question stem (answer choices excluded) is the most reliable single
    sign that a small model will fail where a frontier one succeeds.
    """
    logit = math.log(_PRIOR[category] / (1 - _PRIOR[category]))
    logit += 0.55 * (complexity - 3)
    choices = _CHOICE_START.search(f.scan) if f.choices >= 3 else None
    stem = f.scan[: choices.start()] if choices else f.scan
    logit += 0.45 * math.log1p(len(stem) / 120) - 0.5
    logit += 0.08 * min(_INFERENCE.count(stem), 4) + 0.05 * min(_QUANTITY_RELATION.count(stem), 5)
    logit -= 0.08 * min(_RECALL.count(stem), 2)
    return round(1 / (1 + math.exp(-logit)), 4)
