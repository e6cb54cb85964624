"""Cheap text features of a task, computed once and shared by the category, complexity and strong-score rules.

Everything here is a pure function of the text: regexes compiled at import, no I/O, no models. Long
inputs are sampled (head and tail) for the keyword scans so that cost stays bounded for 50k+ characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CUE_HEAD = 600
CUE_TAIL = 300
_SCAN_HEAD = 2500
_SCAN_TAIL = 1000

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\$?\d[\d,]*(?:\.\d+)?%?")
NUMBER_WORDS = frozenset((
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
    "thirty", "forty", "fifty", "hundred", "thousand", "million", "twice", "thrice", "half", "double", "triple",
    "dozen", "quarter",
))  # fmt: skip
_CODE_SCAN = 2_000  # code shows itself early; scanning further only costs time
CODE_FENCE = re.compile(r"```")
MATH_SYNTAX = re.compile(
    # Every branch starts with a literal or a class, so the engine skips ahead to candidate characters.
    r"\$[^$]+\$|\\frac|\\sqrt|\\pi|\\cdot|\\le|\\ge|\^\d|[=<>]\s*-?\d|\d\s*[-+*/]\s*\d"
)
CHOICES = re.compile(r"(?:^|\n)\s*\(?[A-D][.)]\s", re.MULTILINE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

_INSTRUCTION_SCAN = 2_000  # the instruction is looked for in this much of the head (and the tail)
_INSTRUCTION_HEAD = 600  # at most this much of the first paragraph is read
_INSTRUCTION_TAIL = 300  # a last paragraph up to this long is read (a question asked after a document)
_INTRO_REACH = 300  # in a short task, introduced content starts on a new line within this many characters
_FENCED = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_PARAGRAPH = re.compile(r"\n[ \t\r]*\n")
_CONTENT_INTRO = re.compile(
    r"\b(?:the following|below|as follows|(?:this|these|my) (?:\w+ )?(?:dialogues?|conversations?|articles?|texts?|"
    r"passages?|documents?|reviews?|paragraphs?|emails?|stor(?:y|ies)|sentences?|code|snippets?|scripts?|"
    r"programs?))\b[^:\n]{0,60}?[:.]"
)


@dataclass(frozen=True, slots=True)
class Features:
    """What the rules look at."""

    chars: int
    words: int
    lines: int
    numbers: int
    sentences: int
    code_fences: int
    code_lines: int
    math_marks: int
    choices: int
    questions: int
    cjk_chars: int
    scan: str  # lower-cased head (+ tail) of the text, for keyword rules
    cue_text: str  # a shorter head + tail, where instructions sit: what the cue regexes read
    head: str  # lower-cased first 300 characters: where the instruction usually is
    tail: str  # lower-cased last 600 characters: where the instruction often is in long inputs


_CODE_TOKENS = ("def ", "class ", "return ", "import ", "#include", "function ", "=>", "console.log", "print(",
                "assert ", ";\n", "{\n", "public static", "select ", "fn ", "func ", "const ", "let ")  # fmt: skip


def _code_marks(text: str) -> int:
    """How code-like the text is: occurrences of common code tokens (substring counts are fast)."""
    return sum(text.count(token) for token in _CODE_TOKENS)


def _number_words(words: list[str]) -> int:
    count = sum(map(NUMBER_WORDS.__contains__, words))
    for word in words:
        if "-" in word:  # twenty-one
            count += sum(map(NUMBER_WORDS.__contains__, word.split("-")))
    return count


@dataclass(frozen=True, slots=True)
class Instruction:
    """What a task asks, apart from what it hands over."""

    text: str  # lower-cased: the first paragraph up to any introduced content, plus a short closing question
    introduces_content: bool  # it opens with an instruction that introduces pasted content


def instruction(task: str) -> Instruction:
    """`task`'s instruction: its first paragraph up to where it introduces pasted content ("… the following
    article:", "Summarize this dialogue:"), plus a short last paragraph (a question after a document); fenced
    code removed. "The following …:" introduces content only when it starts on a later line or the task is
    long: in "Answer the following question: if a train …" the question is the task. Bounded work for any
    length."""
    head = _FENCED.sub(" ", task[:_INSTRUCTION_SCAN].lower())
    first = _PARAGRAPH.split(head, maxsplit=1)[0][:_INSTRUCTION_HEAD]
    intro = _CONTENT_INTRO.search(first)
    if (
        intro
        and intro.group().startswith("the following")
        and len(task) <= _INSTRUCTION_HEAD
        and "\n" not in head[intro.end() : intro.end() + _INTRO_REACH]
    ):
        intro = None
    parts = [first[: intro.end()] if intro else first]
    tail = _FENCED.sub(" ", task[-_INSTRUCTION_SCAN:].lower())
    if _PARAGRAPH.search(head) or _PARAGRAPH.search(tail):  # else the task is one paragraph: `first`
        last = _PARAGRAPH.split(tail)[-1].strip()
        # After an introduced article or dialogue, the last paragraph is still content unless it asks something.
        if last and len(last) <= _INSTRUCTION_TAIL and (not intro or "?" in last):
            parts.append(last)
    return Instruction("\n".join(parts), intro is not None)


def instruction_text(task: str) -> str:
    """The lower-cased instruction of `task` (`instruction`)."""
    return instruction(task).text


def extract(text: str) -> Features:
    """Features of `text`; bounded work for any length."""
    sample = text[:_SCAN_HEAD] + "\n" + text[-_SCAN_TAIL:] if len(text) > _SCAN_HEAD + _SCAN_TAIL else text
    scan = sample.lower()
    words = WORD.findall(scan)
    return Features(
        chars=len(text),
        words=len(words) * max(1, len(text) // max(len(sample), 1)),
        lines=text.count("\n") + 1,
        numbers=len(NUMBER.findall(sample)) + _number_words(words),
        sentences=max(1, len(re.findall(r"[.!?](?:\s|$)", sample))),
        code_fences=len(CODE_FENCE.findall(sample)) // 2,
        code_lines=_code_marks(sample[:_CODE_SCAN]),
        math_marks=len(MATH_SYNTAX.findall(sample[:_CODE_SCAN])),
        choices=len(CHOICES.findall(sample)),
        questions=sample.count("?"),
        cjk_chars=len(CJK.findall(sample)),
        scan=scan,
        cue_text=_cue_text(text, scan),
        head=scan[:300],
        tail=scan[-600:],
    )


def estimate_tokens(text: str, cjk_chars: int | None = None) -> int:
    """Tokens for typical BPE tokenizers: ~4 characters each for English and code, ~1 per CJK character."""
    cjk = len(CJK.findall(text)) if cjk_chars is None else cjk_chars
    return max(1, (len(text) - cjk) // 4 + cjk + 1)


def _cue_text(text: str, scan: str) -> str:
    # When the task opens with an instruction that introduces pasted content, the cues read that instruction
    # only: "I booked it" inside a dialogue to summarise is not a booking to make.
    asked = instruction(text)
    if asked.introduces_content:
        return asked.text
    return scan if len(scan) <= CUE_HEAD + CUE_TAIL else scan[:CUE_HEAD] + "\n" + scan[-CUE_TAIL:]
