"""A cheap necessary condition for each cue regex, so most regexes never run.

Almost every cue is `\\b(word|word...)...` or a top-level alternation of such branches. Every branch that
can match must begin a word of the text with its literal prefix, so a cue runs only when one of its
prefixes (first `PREFIX_LEN` letters) is among the prefixes of the text's words. Cues whose branches
have no usable literal prefix always run.
"""

from __future__ import annotations

import itertools
import operator
import re

PREFIX_LEN = 4
_WORD = re.compile(r"[a-z0-9]+")
_LITERAL = re.compile(r"[a-z0-9]+")


def _split_top(pattern: str, sep: str = "|") -> list[str]:
    """Split at `sep` outside groups and character classes."""
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _branch_prefixes(branch: str) -> list[str] | None:
    """Literal word prefixes one of which any match of `branch` must start with; None if unknown."""
    for lead in ("^\\W*", "^\\s*", "^"):  # a match at a line start still begins a word
        if branch.startswith(lead):
            branch = "\\b" + branch[len(lead) :]
            break
    body = branch[2:] if branch.startswith("\\b") else None
    if body is None:
        return None
    if body.startswith("("):
        close = _matching_paren(body)
        if close is None or body[close + 1 : close + 2] in ("*", "{"):
            return None
        prefixes: list[str] = []
        for alternative in _split_top(body[1:close].removeprefix("?:")):
            found = _branch_prefixes("\\b" + alternative)
            if found is None:
                return None
            prefixes += found
        if body[close + 1 : close + 2] == "?":  # an optional lead group: the rest may start the match instead
            rest = _branch_prefixes("\\b" + body[close + 2 :].lstrip(" "))
            return None if rest is None else prefixes + rest
        return prefixes
    literal = _LITERAL.match(body)
    if literal is None:
        return None
    word = literal.group()
    after = body[len(word) :]
    if after[:1] in ("?", "*", "{"):
        word = word[:-1]  # the last letter is optional
    elif after[:1] == " ":
        second = _LITERAL.match(after[1:])
        if second and after[1 + len(second.group()) : 2 + len(second.group())] not in ("?", "*", "{"):
            return [f"{word} {second.group()[:PREFIX_LEN]}"]  # a two-word phrase: far more selective
    return [word[:PREFIX_LEN]] if word else None


def _matching_paren(text: str) -> int | None:
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth == 0:
            return i
        i += 1
    return None


def prefixes_of(pattern: str) -> frozenset[str] | None:
    """The prefilter for a whole cue pattern (None: always run it)."""
    found: set[str] = set()
    for branch in _split_top(pattern):
        prefixes = _branch_prefixes(branch)
        if prefixes is None:
            return None
        found.update(prefixes)
    return frozenset(found)


class PrefixIndex:
    """The word prefixes of a text that some cue can need, for a fixed set of cue prefilters.

    Only prefix lengths that some cue uses are taken (C-level slicing over the distinct words), and word
    pairs only where the first word starts one of the cues' two-word phrases: a fraction of the work of
    taking every prefix of every word and word pair.
    """

    def __init__(self, needed: list[frozenset[str] | None]) -> None:
        keys = frozenset().union(*(n for n in needed if n is not None))
        words = [k for k in keys if " " not in k]
        pairs = [k.split(" ", 1) for k in keys if " " in k]
        self._word_cuts = [slice(0, n) for n in sorted({len(k) for k in words})]
        self._heads = frozenset(first for first, _ in pairs)
        self._pair_lengths = sorted({len(second) for _, second in pairs})

    def present(self, text: str) -> set[str]:
        words = _WORD.findall(text)
        distinct = set(words)
        keys: set[str] = set()
        for cut in self._word_cuts:
            keys.update(map(operator.itemgetter(cut), distinct))
        if self._heads:
            for first, second in itertools.pairwise(words):
                if first in self._heads:
                    keys.update(f"{first} {second[:n]}" for n in self._pair_lengths)
        return keys
