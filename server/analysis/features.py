"""Cheap text features of a task, computed once and shared by the category, complexity and strong-score rules.

Everything here is a pure function of the text: regexes compiled at import, no I/O, no models. Long
inputs are sampled (head and tail) for the keyword scans so that cost stays bounded for 50k+ characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCAN_HEAD = 6_000
_SCAN_TAIL = 2_000

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\$?\d[\d,]*(?:\.\d+)?%?")
NUMBER_WORD = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|twice|thrice|half|double|triple|dozen|quarter)\b",
    re.IGNORECASE,
)
CODE_FENCE = re.compile(r"```")
CODE_SYNTAX = re.compile(
    r"\bdef \w+\(|\bclass \w+[:(]|\breturn\b|\bimport \w+|#include|\bfunction\s+\w+\(|=>|\bpublic static\b|"
    r"\bconsole\.log|\bprint\(|\bassert \w+\(|;\s*$|\{\s*$|\bSELECT\b.+\bFROM\b",
    re.MULTILINE,
)
MATH_SYNTAX = re.compile(
    r"\$[^$]+\$|\\frac|\\sqrt|\\pi|\\cdot|\\le|\\ge|\^\d|\b[a-z]\s*=\s*\d|[=<>]\s*-?\d|\d\s*[-+*/]\s*\d"
)
CHOICES = re.compile(r"(?:^|\n)\s*\(?[A-D][.)]\s", re.MULTILINE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


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
    head: str  # lower-cased first 300 characters: where the instruction usually is
    tail: str  # lower-cased last 600 characters: where the instruction often is in long inputs


def extract(text: str) -> Features:
    """Features of `text`; bounded work for any length."""
    sample = text[:_SCAN_HEAD] + "\n" + text[-_SCAN_TAIL:] if len(text) > _SCAN_HEAD + _SCAN_TAIL else text
    scan = sample.lower()
    return Features(
        chars=len(text),
        words=len(WORD.findall(sample)) * max(1, len(text) // max(len(sample), 1)),
        lines=text.count("\n") + 1,
        numbers=len(NUMBER.findall(sample)) + len(NUMBER_WORD.findall(sample)),
        sentences=max(1, len(re.findall(r"[.!?](?:\s|$)", sample))),
        code_fences=len(CODE_FENCE.findall(sample)) // 2,
        code_lines=len(CODE_SYNTAX.findall(sample)),
        math_marks=len(MATH_SYNTAX.findall(sample)),
        choices=len(CHOICES.findall(sample)),
        questions=sample.count("?"),
        cjk_chars=len(CJK.findall(sample)),
        scan=scan,
        head=scan[:300],
        tail=scan[-600:],
    )


def estimate_tokens(text: str, cjk_chars: int | None = None) -> int:
    """Tokens for typical BPE tokenizers: ~4 characters each for English and code, ~1 per CJK character."""
    cjk = len(CJK.findall(text)) if cjk_chars is None else cjk_chars
    return max(1, (len(text) - cjk) // 4 + cjk + 1)
