"""Offline measures of routing quality, defined as in RouteLLM and the eval README. Pure functions.

- Category accuracy, macro-F1 and the confusion matrix of the analyser's category.
- APGR: sort prompts by `strong_score` (highest first); routing the top k to the strong model gives quality
  q(k); PGR(k) = (q(k) - q_weak) / (q_strong - q_weak); APGR is the area under PGR over k in [0, 1]
  (trapezoids, one step per prompt). Random routing gives 0.5.
- CPT(x): the smallest share of strong calls whose PGR reaches x.
Ties in `strong_score` are broken by input order, so results are reproducible.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import EvalDataError


@dataclass(frozen=True, slots=True)
class CategoryItem:
    id: str
    prompt: str
    category: str
    source: str = ""  # the dataset it came from; leave-one-source-out groups by the part before '/'

    @property
    def group(self) -> str:
        return self.source.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class PairItem:
    """A prompt with the measured quality of the strong and the weak model on it."""

    id: str
    prompt: str
    source: str
    strong: float
    weak: float

    @property
    def group(self) -> str:
        return self.source.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class LabelledSet:
    categories: list[CategoryItem]
    pairs: list[PairItem]


def load_labelled(path: Path) -> LabelledSet:
    """Read a JSONL file of `{id, prompt, category}` and/or `{id, prompt, scores: {strong, weak}}` lines."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 may sit inside a string
    except OSError as exc:
        raise EvalDataError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise EvalDataError(f"{path} is not UTF-8 text; expected JSON lines") from None
    return parse_labelled(lines, str(path))


def parse_labelled(lines: Iterable[str], name: str = "<input>") -> LabelledSet:
    categories: list[CategoryItem] = []
    pairs: list[PairItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
            raise EvalDataError(f"{where}: expected an object with a non-empty string 'prompt'")
        item_id = str(item.get("id", f"line-{number}"))
        labelled = False
        if isinstance(item.get("category"), str):
            categories.append(CategoryItem(item_id, item["prompt"], item["category"], str(item.get("source") or "")))
            labelled = True
        scores = item.get("scores")
        if isinstance(scores, dict) and {"strong", "weak"} <= scores.keys():
            try:
                strong, weak = float(scores["strong"]), float(scores["weak"])
            except (TypeError, ValueError):
                raise EvalDataError(f"{where}: scores.strong and scores.weak must be numbers") from None
            pairs.append(PairItem(item_id, item["prompt"], str(item.get("source", "all")), strong, weak))
            labelled = True
        if not labelled:
            raise EvalDataError(
                f"{where}: needs 'category' (a category name) or 'scores' with 'strong' and 'weak' (numbers)"
            )
    return LabelledSet(categories, pairs)


# ── categories ───────────────────────────────────────────────────────────────


def category_metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the labels present in `truth`, per-label precision/recall/F1, confusion."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    labels = sorted(set(truth))
    confusion: dict[str, dict[str, int]] = {t: defaultdict(int) for t in labels}
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] += 1
    per_label = {}
    for label in labels:
        tp = confusion[label].get(label, 0)
        support = sum(confusion[label].values())
        predicted_as = sum(row.get(label, 0) for row in confusion.values())
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "n": len(truth),
        "accuracy": correct / len(truth) if truth else 0.0,
        "macro_f1": sum(m["f1"] for m in per_label.values()) / len(labels) if labels else 0.0,
        "per_category": per_label,
        "confusion": {t: dict(sorted(row.items())) for t, row in confusion.items()},
    }


# ── strong / weak ────────────────────────────────────────────────────────────


def pgr_curve(pairs: Sequence[PairItem], scores: Sequence[float]) -> list[float] | None:
    """PGR after routing the top 0..n prompts to the strong model; None when strong is not better on average."""
    n = len(pairs)
    weak = sum(p.weak for p in pairs) / n
    strong = sum(p.strong for p in pairs) / n
    gap = strong - weak
    if n == 0 or gap <= 0:
        return None
    order = sorted(range(n), key=lambda i: -scores[i])  # stable: ties keep input order
    quality = weak * n
    curve = [0.0]
    for i in order:
        quality += pairs[i].strong - pairs[i].weak
        curve.append((quality / n - weak) / gap)
    return curve


def gap_metrics(pairs: Sequence[PairItem], scores: Sequence[float]) -> dict[str, Any]:
    """n, mean weak/strong quality, APGR, CPT50 and CPT80 of one set of prompts."""
    n = len(pairs)
    out: dict[str, Any] = {"n": n}
    if n == 0:
        return out
    out["weak"] = sum(p.weak for p in pairs) / n
    out["strong"] = sum(p.strong for p in pairs) / n
    curve = pgr_curve(pairs, scores)
    if curve is None:
        return {**out, "apgr": None, "cpt50": None, "cpt80": None}
    out["apgr"] = sum((curve[k] + curve[k + 1]) / 2 for k in range(n)) / n
    out["cpt50"] = _cpt(curve, 0.5)
    out["cpt80"] = _cpt(curve, 0.8)
    return out


def _cpt(curve: list[float], target: float) -> float:
    n = len(curve) - 1
    return next((k / n for k, pgr in enumerate(curve) if pgr >= target - 1e-12), 1.0)


def gap_metrics_by_group(pairs: Sequence[PairItem], scores: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """`gap_metrics` per source prefix (the part before '/'), plus `all`."""
    groups: dict[str, list[PairItem]] = defaultdict(list)
    for pair in pairs:
        groups[pair.group].append(pair)
    result = {g: gap_metrics(items, [scores[p.id] for p in items]) for g, items in sorted(groups.items())}
    if len(groups) > 1:
        result["all"] = gap_metrics(pairs, [scores[p.id] for p in pairs])
    return result


def random_scores(pairs: Sequence[PairItem], seed: int = 0) -> dict[str, float]:
    rng = random.Random(seed)
    return {p.id: rng.random() for p in pairs}


def length_scores(pairs: Sequence[PairItem]) -> dict[str, float]:
    return {p.id: float(len(p.prompt)) for p in pairs}


def threshold_for(pairs: Sequence[PairItem], scores: Sequence[float], target_pgr: float) -> tuple[float, float]:
    """The strong_score threshold that reaches `target_pgr` with the fewest strong calls, and that share.

    Routing every prompt with score >= threshold to the strong model recovers at least `target_pgr` of the
    gap on `pairs` (ties at the threshold all go strong, so the share may exceed CPT slightly).
    """
    curve = pgr_curve(pairs, scores)
    if curve is None:
        raise ValueError("the strong model is not better than the weak one on these pairs")
    ranked = sorted(scores, reverse=True)
    k = next((k for k, pgr in enumerate(curve) if pgr >= target_pgr - 1e-12), len(ranked))
    if k == 0:
        return 1.0, 0.0
    threshold = ranked[k - 1]
    share = sum(s >= threshold for s in scores) / len(scores)
    return threshold, share
