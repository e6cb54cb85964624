"""Tool need: which kinds of tool a task explicitly asks for, each with the words that showed it.

A prediction of its own, beside the category: "Use Python to compute 6*7*1000+1" is a maths task that
needs code run, and a coding task ("write a function that …") needs no tool at all. The kinds are the
sub-servers' (`domain.tasks.TOOL_KINDS`):
- code: run, execute or test code ("run it in Python"), or compute something with Python / an interpreter;
- search: search, look up or browse the web, or a question about facts newer than a model's training
  (a year from 2024 on, "as of today", "right now", "the current <office or price>", the weather, the latest
  race or news);
- fetch: a URL to read, or a bare domain after "go to" / "visit" / "read" (and not a program to write that
  downloads it);
- memory: remember or recall across the conversation ("remember that …", "save my …", "what did I tell you",
  "as I mentioned", "I forgot …"), or a short question about the user's (or "our") own facts ("what is my
  first name?", "which hotel did we book?"), which only stored memory can answer — unless it asks advice or
  states what is needed ("what is my star sign if I was born on 1 May?").
Questions *about* tools ("explain what a web search engine does"), code that is written or explained but not
run, and arithmetic the model can do itself need no tool.

Pure: regexes compiled at import, no I/O. Only the instruction is read (`instruction_text`): a URL, a date
or an "I told you" inside a pasted article, dialogue, document or program does not count. The cues say the
intents above in general words, never a single prompt's; `bench/bench_tool_need.py` measures them on
`tests/data/tool_need.jsonl`, on the sets taken after they were written and on `dev.jsonl`. `cue_features`
gives a learned model (tool_need_model.py) these cues, and a few more, as inputs beside the embedding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.analysis.features import instruction_text
from server.domain.tasks import TOOL_KINDS

_PERSONAL_QUESTION_CHARS = 300  # a question about the user's own facts is short: no context is given

# An imperative: at the start of a sentence or clause, or after a word that introduces a request.
_IMPERATIVE = r"(?:^|[.!?:;,\n(\"']\s*|\b(?:please|you|and|then|also|now|just|first|to)\s+)"
_CODE_NOUN = r"(?:python|code|script|program|snippet|function|tests?|calculation)"
_INTERPRETER = (
    r"(?:python|code|a (?:python )?script|(?:the|a|an) (?:python |code )?interpreter|a calculator|the sandbox|"
    r"the (?:code|python) (?:tool|sandbox)|code execution)"
)
_COMPUTE = (
    r"(?:compute|calculate|work out|find|check|get|evaluate|count|solve|figure out|determine|verify|convert|"
    r"plot|simulate|sort)"
)
_WRITING = re.compile(
    r"^\W*(?:please\s+)?(?:write|compose|draft|craft|create|generate|implement|build|develop|design|make|"
    r"help me (?:write|construct|draft|create))\b"
)
_CODE_WRITING = re.compile(
    r"^\W*(?:please\s+)?(?:write|implement|create|build|develop|design|code|generate|make)\b[^.?!\n]{0,80}?"
    r"\b(?:function|program|script|class|method|module|app|application|api|scraper|crawler|bot|tool|cli)\b"
)
_QUESTION = re.compile(
    r"\?|^\W*(?:who|what|when|where|which|how|find|list|give me|name)\b|"
    r"\b(?:tell me|find out|i (?:would like|want|need) to know)\b"
)

# "run this" / "execute the following", or a code noun soon after the verb ("run a quick Python calculation");
# not a pronoun further on ("run a marathon this year").
_RUN = re.compile(
    rf"{_IMPERATIVE}(?:run|execute)\s+(?:it|this|that|them|these|the following)\b|"
    rf"{_IMPERATIVE}(?:run|execute)\b[^.?!\n]{{0,40}}?\b{_CODE_NOUN}\b"
)
_USE_TO_COMPUTE = re.compile(rf"\b(?:use|using)\s+{_INTERPRETER}\b\s*,?\s*(?:to\s+)?{_COMPUTE}\b")
_COMPUTE_WITH = re.compile(rf"\b{_COMPUTE}\b[^.?!\n]{{0,60}}?\b(?:with|using|via|in)\s+{_INTERPRETER}\b")
# "run it in Python", "execute it to confirm": a run asked for after the task is stated.
_RUN_IT = re.compile(
    rf"\b(?:run|execute)\s+(?:it|this|that)\s+(?:in|with|on|using)\s+{_INTERPRETER}\b|"
    r"\b(?:run|execute)\s+(?:it|this|that)\s+to\s+(?:confirm|check|verify|see)\b"
)
_TEST = re.compile(
    rf"{_IMPERATIVE}test (?:it|them|this|that|the (?:code|function|script|program)|"
    r"your (?:code|function|solution))\b"
)
_SEARCH = re.compile(
    rf"{_IMPERATIVE}(?:search|google|browse|look (?:it )?up)\b(?!\s+(?:engine|algorithm|tree))|"
    r"\b(?:search|look|check|find)\s+(?:the web|online|the internet)\b|"
    r"\bdo an? (?:web|online|internet) search\b|^\W*(?:web|online|internet) search\b"
)
_URL = re.compile(
    r"\bhttps?://[^\s)>\]\"']+|\bwww\.[a-z0-9-]+\.[a-z]{2,}|"
    # a bare domain after a verb of reading ("go to example.com", "read docs.python.org/3/…")
    r"\b(?:go to|open|visit|read|fetch|browse|check|at|from)\s+(?:the \w+ (?:at|on)\s+)?"
    r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|gov|edu|ai|info)\b(?:/\S*)?"
)
_REMEMBER = re.compile(
    rf"{_IMPERATIVE}(?:remember|memori[sz]e|recall|keep in mind|note (?:this|that|it) down|note down|"
    r"don'?t forget|do not forget|save (?:this|that|it)|store (?:this|that|it))\b|"
    r"\bdo you (?:still )?remember\b|\bdo you recall\b|"
    r"(?:^|[.!?:;]\s*)(?:please\s+)?(?:save|store|note|record|keep track of)\s+(?:my|our|the following)\b"
)
_SAID_BEFORE = re.compile(
    r"\bwhat (?:did|have) i (?:tell|told|say|said|mention|mentioned)\b|\bi (?:told|mentioned to) you\b|"
    r"\b(?:i|you) (?:told|said|mentioned)\b[^.?!\n]{0,40}\b(?:earlier|before|last time)\b|"
    r"\b(?:earlier|before|last time),? (?:you|i) (?:told|said|mentioned)\b|\bas i (?:said|mentioned|told you)\b|"
    r"\b(?:for|in) (?:our|the) (?:next|future) (?:session|conversation|chat)s?\b|"
    r"\bprevious (?:session|conversation|chat)\b|"
    r"\bremind me\b|\bi (?:completely |totally |just )?"
    r"(?:forgot|forget|have forgotten|almost forgot|may be forgetting|misremember|"
    r"(?:can'?t|cannot|don'?t|do not) remember)\b"
)
_CUES: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "code": [
        ("asks to run code", _RUN),
        ("asks to compute with a tool", _USE_TO_COMPUTE),
        ("asks to compute with a tool", _COMPUTE_WITH),
        ("asks to run code", _RUN_IT),
        ("asks to test code", _TEST),
    ],
    "search": [("asks to search the web", _SEARCH)],
    "fetch": [("names a URL to read", _URL)],
    "memory": [("asks to remember", _REMEMBER), ("asks to recall something said before", _SAID_BEFORE)],
}
# Facts newer than a model's training: searched for only when the task asks a question (not when it asks for
# writing), since "the latest discovery" in a headline to write needs no search.
_RECENT = re.compile(
    r"\bas of (?:today|now)\b|\b20(?:2[4-9]|[3-9]\d)\b|"
    r"\b(?:latest|current|newest|most recent)\s+(?:\w+\s+){0,2}?(?:news|prices?|version|release|results?|scores?|"
    r"weather|president|mayor|governor|ceo|premier|prime minister|leader|champion|rankings?|population|"
    r"exchange rate|stock|headlines)\b|\bcurrently (?:plays?|leads?|holds?|runs?|is the)\b|"
    r"\b(?:most recent|latest|upcoming|next)\s+(?:\w+\s+){0,2}?(?:race|match|game|election|episode|launch|news)\b|"
    r"\b(?:recent|today'?s|this week'?s) news\b|\bnews (?:about|on)\b|"
    r"\bright now\b|\b(?:scheduled|happening|playing|on|open|for)\s+(?:today|tonight|tomorrow|this weekend)\b|"
    r"\b(?:today|tonight|tomorrow|this weekend)\s*\?|\bweather (?:forecast|in|for|today|like)\b"
)
_PERSONAL = re.compile(
    r"\b(?:what|what's|where|when|which|who|how (?:old|many|much|long|often))\b[^?.!\n]{0,80}?\b(?:my|am i|i|we|our)\b"
)
_HOW_TO_USE = re.compile(r"\bhow (?:do|can|could|would|should|to)\b[^.?!\n]{0,20}?\buse\b")
# Advice, a hypothetical or general knowledge about people: the question itself holds what is needed to answer.
_ADVICE = re.compile(
    r"\b(?:should|could|can|would|might|shall)\s+(?:i|we)\b|\bhow (?:do|can|to)\b|\bwhat if\b|\bif (?:i|we)\b|"
    r"\bdo (?:i|we) need\b|\bour (?:planet|world|solar system|universe|galaxy|bodies|body|brains?|society|species)\b"
)


@dataclass(frozen=True, slots=True)
class ToolNeed:
    """The kinds of tool a task asks for (in `TOOL_KINDS` order) and, per kind, why."""

    kinds: tuple[str, ...]
    reasons: tuple[str, ...]


def predict(task: str) -> ToolNeed:
    """Which tool kinds `task` explicitly asks for; bounded work for any length."""
    text = instruction_text(task)
    found: dict[str, str] = {}
    for kind, cues in _CUES.items():
        for why, cue in cues:
            match = cue.search(text)
            if match:
                found[kind] = f'{why} ("{_snippet(match)}")'
                break
    writing = bool(_WRITING.search(text))
    if "code" in found and _HOW_TO_USE.search(text) and not _RUN.search(text):
        del found["code"]  # "how can I use Python to parse JSON?" asks how, not for a run
    if "fetch" in found and _CODE_WRITING.search(text):
        del found["fetch"]  # a program to write that downloads the URL: the model writes code, reads nothing
    # A URL to read answers "the newest version listed there": the page, not a search, is the source.
    if "search" not in found and "fetch" not in found and not writing and _QUESTION.search(text):
        match = _RECENT.search(text)
        if match:
            found["search"] = f'asks about recent facts ("{_snippet(match)}")'
    if "memory" not in found and len(task) <= _PERSONAL_QUESTION_CHARS and not writing and "?" in text:
        match = _PERSONAL.search(text)
        if match and not _ADVICE.search(text):
            found["memory"] = f'asks about the user\'s own facts ("{_snippet(match)}")'
    kinds = tuple(kind for kind in TOOL_KINDS if kind in found)
    return ToolNeed(kinds, tuple(f"tool need {kind}: {found[kind]}" for kind in kinds))


_FENCE_SCAN = 2_000  # a fenced block the task brings shows in its head
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|me|mine|we|our|us)\b")
_SECOND_PERSON = re.compile(r"\b(?:you|your)\b")
# The user states their situation, then asks: the answer is in the prompt, not in anything stored.
_STATES_CONTEXT = re.compile(r"^[^?]*?\b(?:i|i'm|i've|my|we|we're|our)\b[^?.!]*[.;!]\s+\S")
# A question about something said, decided or done before: what stored memory answers.
_PAST_RECALL = re.compile(
    r"\b(?:did|was|were|had)\s+(?:i|we|you|the|my|our|they|he|she)\b|"
    r"\b(?:i|we)\s+(?:said|mentioned|told|picked|chose|decided|settled|agreed|booked|gave|shared|listed)\b"
)
# The cue features a learned model reads beside the sentence embedding (tool_need_model.py), in this order.
CUE_FEATURES = (
    *(f"rule_{kind}" for kind in TOOL_KINDS),
    "recent", "personal", "advice", "writing", "code_writing", "question", "question_mark", "first_person",
    "second_person", "url", "fenced_code", "chars_lt_80", "chars_lt_200", "chars_lt_600", "chars_ge_600",
    "states_context", "past_recall",
)  # fmt: skip


def cue_features(task: str, need: ToolNeed | None = None) -> list[float]:
    """`task`'s cue features in `CUE_FEATURES` order (0 or 1): which kinds the rules found (`need`, else
    `predict(task)`), the raw cues before the rules' exclusions, person, question form, a length bucket, and
    whether the user states their own situation or asks about something said or done before."""
    need = need or predict(task)
    text = instruction_text(task)
    size = len(task)
    flags = [
        *(kind in need.kinds for kind in TOOL_KINDS),
        _RECENT.search(text), _PERSONAL.search(text), _ADVICE.search(text), _WRITING.search(text),
        _CODE_WRITING.search(text), _QUESTION.search(text), "?" in text, _FIRST_PERSON.search(text),
        _SECOND_PERSON.search(text), _URL.search(text), "```" in task[:_FENCE_SCAN],
        size < 80, 80 <= size < 200, 200 <= size < 600, size >= 600,
        _STATES_CONTEXT.search(text), _PAST_RECALL.search(text),
    ]  # fmt: skip
    return [1.0 if flag else 0.0 for flag in flags]


def _snippet(match: re.Match[str]) -> str:
    return match.group(0).strip(" \n.,;:!?(\"'")[:60]
