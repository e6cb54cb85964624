"""Text → sparse feature vector for the learned router: hashed words and word pairs plus structural features.

Hashing (CRC-32, stable across runs and machines, unlike `hash()`) keeps the model a fixed size with no
vocabulary to ship. Structural features reuse the built-in analyser's features and rule scores, so the
learned model starts from what the rules know and learns corrections. Bounded work for any length: only
the head and tail of long texts are read, like the rules do.
"""

from __future__ import annotations

import math
import re
import zlib

from server.analysis.features import Features
from server.analysis.local import rule_signals
from server.domain.tasks import Category

HASH_BITS = 18
HASH_DIM = 1 << HASH_BITS
_HEAD = 2_000
_TAIL = 1_000
_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
_CATEGORIES = list(Category)

# Structural features live above the hashed range; their order is part of the model format.
STRUCTURAL = (
    "bias", "log_chars", "log_words", "log_numbers", "log_sentences", "math_marks", "choices", "code_lines",
    "code_fences", "questions", "long_input", "rule_strong_score", *(f"rule:{c.value}" for c in _CATEGORIES),
)  # fmt: skip
_BASE = HASH_DIM

SparseVector = dict[int, float]


def vectorize(text: str) -> SparseVector:
    """The feature vector of one prompt: L2-normalised hashed n-grams plus scaled structural features."""
    sample = text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + "\n" + text[-_TAIL:]
    tokens = _TOKEN.findall(sample.lower())
    vector: SparseVector = {}
    previous = ""
    for token in tokens:
        _add(vector, zlib.crc32(token.encode()) & (HASH_DIM - 1))
        if previous:
            _add(vector, zlib.crc32(f"{previous} {token}".encode()) & (HASH_DIM - 1))
        previous = token
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    for key in vector:
        vector[key] /= norm
    for offset, value in enumerate(_structural(*rule_signals(text))):
        if value:
            vector[_BASE + offset] = value
    return vector


def structural_features(f: Features, scores: dict[Category, float], rule_strong_score: float) -> list[float]:
    """The `STRUCTURAL` values (in order) from the rules' view of a text (`local.rule_signals`)."""
    return _structural(f, scores, rule_strong_score)


def _add(vector: SparseVector, key: int) -> None:
    vector[key] = vector.get(key, 0.0) + 1.0


def _structural(f: Features, scores: dict[Category, float], rule_strong_score: float) -> list[float]:
    top = max(max(scores.values()), 1.0)
    return [
        1.0,
        math.log1p(f.chars) / 10,
        math.log1p(f.words) / 8,
        math.log1p(f.numbers) / 3,
        math.log1p(f.sentences) / 3,
        min(f.math_marks, 10) / 10,
        1.0 if f.choices >= 3 else 0.0,
        min(f.code_lines, 10) / 10,
        min(f.code_fences, 3) / 3,
        min(f.questions, 5) / 5,
        1.0 if f.chars > 10_000 else 0.0,
        rule_strong_score,
        *(max(scores[c], 0.0) / top for c in _CATEGORIES),
    ]
