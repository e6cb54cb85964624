"""The strong-need scorer: how much a prompt gains from the strong model, from its sentence embedding.

RouteLLM-style: trained on `{prompt, scores: {strong, weak}}` outcomes, it ranks prompts by the expected
gain of the strong model, which is what APGR rewards. Two logistic models over the same features — "only
the strong model was right" and "only the weak one was" — give `gain = p_strong_only - p_weak_only`.
Features: the 256-d sentence embedding (server/analysis/embedding.py) and a dozen structural ones (length,
numbers, maths marks, the answer-choice stem…, scaled by the training data's mean and spread), each given
twice — once for multiple-choice prompts and once for the rest — so an MMLU question and a word problem
get their own weights for length. The rules' strong-score logit is added with a small weight `prior`,
chosen on the training data by a 2-fold split by source (the rules know that longer stems need more,
which a half of the data may not show). `strong_score = (1 + tanh(gain + prior * rule_logit)) / 2`.

Training needs scikit-learn (`[learned]`); scoring needs only numpy. The stored model is a `.npz` of plain
arrays plus a JSON header (no pickle); the package ships one trained on the public pairs_dev.jsonl.
Thresholds per cost preference are calibrated on a fifth of the pairs the weights never saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from server.analysis import embedding
from server.analysis.local import rule_signals
from server.analysis.metrics import PairItem, gap_metrics, length_scores, random_scores, threshold_for
from server.errors import LearnedModelError

FORMAT = "model-router/strong-need"
FORMAT_VERSION = 1
SHIPPED = "strong_need.npz"
# The share of the strong-weak quality gap each cost preference must recover (as the learned router).
TARGET_PGR = {"balanced": 0.8, "cheapest": 0.5}
STRUCTURAL = (
    "log_chars", "log_words", "log_numbers", "log_sentences", "math_marks", "code_lines", "questions",
    "log_stem_chars", "log_choice_chars", "log_choice_digits", "rule_logit",
)  # fmt: skip
PRIORS = (0.0, 0.02, 0.05, 0.1, 0.2)
_C = 0.3  # inverse L2 strength; the outcome labels are noisy, so the weights are kept small
_CHOICES = re.compile(r"\n\s*\(?A[.)]\s")


@dataclass(frozen=True)
class StrongNeedModel:
    """Weights over [embedding, structural] times {multiple choice, other}, and the calibrated thresholds."""

    strong: np.ndarray  # (features + 1,) last entry is the intercept
    weak: np.ndarray
    mean: np.ndarray  # the structural features' training mean and spread
    scale: np.ndarray
    prior: float
    thresholds: dict[str, float]
    info: dict[str, Any]

    @property
    def version(self) -> str:
        return f"strong-need-{FORMAT_VERSION}:{self.info.get('digest', 'unsaved')[:12]}"

    def score(self, text: str) -> float:
        """strong_score of one prompt, in [0, 1]."""
        return float(self.score_many([text])[0])

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        rows, rule_logits = features(texts, self.mean, self.scale)
        gain = _predict(self.strong, rows) - _predict(self.weak, rows)
        return (1.0 + np.tanh(gain + self.prior * rule_logits)) / 2


def structural(text: str) -> list[float]:
    """The unscaled structural features of one prompt, in `STRUCTURAL` order."""
    f, _, rule_score = rule_signals(text)
    choices = _CHOICES.search(text) if f.choices >= 3 else None
    stem, options = (text[: choices.start()], text[choices.start() :]) if choices else (text, "")
    rule_score = min(max(rule_score, 1e-4), 1 - 1e-4)
    return [
        math.log1p(f.chars), math.log1p(f.words), math.log1p(f.numbers), math.log1p(f.sentences),
        min(f.math_marks, 10), min(f.code_lines, 10), min(f.questions, 5), math.log1p(len(stem)),
        math.log1p(len(options)), math.log1p(sum(c.isdigit() for c in options)),
        math.log(rule_score / (1 - rule_score)),
    ]  # fmt: skip


def features(texts: Sequence[str], mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's input rows (one per text) and the rules' strong-score logits."""
    raw = np.array([structural(t) for t in texts], dtype=np.float64).reshape(len(texts), len(STRUCTURAL))
    rule_logits = raw[:, -1].copy()
    scaled = (raw - mean) / scale
    choice = np.array([[1.0 if _is_multiple_choice(t) else 0.0] for t in texts]).reshape(len(texts), 1)
    base = np.hstack([embedding.embed(texts).astype(np.float64), scaled])
    return np.hstack([base * choice, base * (1 - choice)]), rule_logits


def _is_multiple_choice(text: str) -> bool:
    return _CHOICES.search(text) is not None


def _predict(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    z = np.clip(rows @ weights[:-1] + weights[-1], -35.0, 35.0)
    return 1.0 / (1.0 + np.exp(-z))


# ── training ─────────────────────────────────────────────────────────────────


def train(pairs: Sequence[PairItem]) -> StrongNeedModel:
    """Fit on the pairs (a fifth, by a hash of the id, is kept to calibrate the thresholds)."""
    if len(pairs) < 20:
        raise LearnedModelError(f"{len(pairs)} outcome lines: need at least 20 with scores {{strong, weak}}")
    fit_part = [p for p in pairs if not _calibration_row(p.id)]
    held = [p for p in pairs if _calibration_row(p.id)]
    if len(held) < 20:
        fit_part, held = list(pairs), list(pairs)  # too few to hold out: calibrate in-sample
    raw = np.array([structural(p.prompt) for p in fit_part])
    mean, scale = raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-6)
    rows, rule_logits = features([p.prompt for p in fit_part], mean, scale)
    prior = _choose_prior(fit_part, rows, rule_logits)
    strong, weak = _fit_pair(fit_part, rows)
    model = StrongNeedModel(strong, weak, mean, scale, prior, {}, {})
    thresholds, calibration = _calibrate(model, held)
    info = {
        "pair_rows": len(pairs),
        "fit_rows": len(fit_part),
        "prior": prior,
        "calibration": calibration,  # no timestamps: the same pairs give the same bytes
    }
    return StrongNeedModel(strong, weak, mean, scale, prior, thresholds, info)


def _fit_pair(pairs: Sequence[PairItem], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two logistic models; each kind of prompt (multiple choice or not) weighs the same in total, so a
    few hundred word problems are not drowned by thousands of MMLU questions."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise LearnedModelError(f"training needs scikit-learn: {embedding.INSTALL_HINT}") from exc
    choice = np.array([_is_multiple_choice(p.prompt) for p in pairs])
    counts = {kind: max(int((choice == kind).sum()), 1) for kind in (True, False)}
    weight = np.array([len(pairs) / (2 * counts[bool(c)]) for c in choice])
    out = []
    for label in ([p.strong > p.weak for p in pairs], [p.weak > p.strong for p in pairs]):
        target = np.array(label)
        if target.all() or not target.any():  # one class only: a constant model
            out.append(np.append(np.zeros(rows.shape[1]), 0.0 if target.any() else -35.0))
            continue
        fitted = LogisticRegression(C=_C, max_iter=5000).fit(rows, target, sample_weight=weight)
        out.append(np.append(fitted.coef_[0], fitted.intercept_[0]))
    return out[0], out[1]


def _choose_prior(pairs: Sequence[PairItem], rows: np.ndarray, rule_logits: np.ndarray) -> float:
    """The rules' weight that ranks best on unseen sources: fit on one half by source, score the other."""
    folds = split_halves(pairs)
    if any(not fold for fold in folds):
        return PRIORS[0]
    index = {p.id: i for i, p in enumerate(pairs)}
    totals = dict.fromkeys(PRIORS, 0.0)
    for test in folds:
        test_ids = {p.id for p in test}
        train_rows = [i for i, p in enumerate(pairs) if p.id not in test_ids]
        strong, weak = _fit_pair([pairs[i] for i in train_rows], rows[train_rows])
        chosen = [index[p.id] for p in test]
        gain = _predict(strong, rows[chosen]) - _predict(weak, rows[chosen])
        for prior in PRIORS:
            totals[prior] += _mean_apgr(test, list(gain + prior * rule_logits[chosen]))
    return max(PRIORS, key=lambda prior: (round(totals[prior], 6), -prior))


def _mean_apgr(pairs: Sequence[PairItem], scores: Sequence[float]) -> float:
    """APGR averaged over the benchmarks (source prefixes) present; ones where strong is not better are skipped."""
    by_group: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_group.setdefault(p.group, []).append(i)
    values = [gap_metrics([pairs[i] for i in ids], [scores[i] for i in ids])["apgr"] for ids in by_group.values()]
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else 0.0


def _calibrate(model: StrongNeedModel, held: Sequence[PairItem]) -> tuple[dict[str, float], dict[str, Any]]:
    scores = list(model.score_many([p.prompt for p in held]))
    thresholds: dict[str, float] = {}
    info: dict[str, Any] = {"held_out_pairs": len(held)}
    for preference, target in TARGET_PGR.items():
        try:
            threshold, share = threshold_for(held, scores, target)
        except ValueError:
            continue  # the strong model is not better on these pairs: keep the config's thresholds
        thresholds[preference] = round(float(threshold), 4)
        info[preference] = {"target_pgr": target, "strong_share": round(share, 4)}
    return thresholds, info


def _calibration_row(item_id: str) -> bool:
    return zlib.crc32(item_id.encode()) % 5 == 0


def split_halves(pairs: Sequence[PairItem]) -> tuple[list[PairItem], list[PairItem]]:
    """Two halves that share no subject: sources with a subject (`mmlu/anatomy`) alternate by sorted subject
    name; prompts of a source without one (`gsm8k`) alternate by row."""
    subjects = sorted({p.source for p in pairs if "/" in p.source})
    first = set(subjects[::2])
    plain: dict[str, int] = {}
    a: list[PairItem] = []
    b: list[PairItem] = []
    for p in pairs:
        if "/" in p.source:
            (a if p.source in first else b).append(p)
        else:
            row = plain[p.source] = plain.get(p.source, -1) + 1
            (a if row % 2 == 0 else b).append(p)
    return a, b


def held_out_report(pairs: Sequence[PairItem]) -> dict[str, Any]:
    """Train on each half of `split_halves`, score the other: APGR/CPT per benchmark beside random and length."""
    a, b = split_halves(pairs)
    report: dict[str, Any] = {}
    for name, fit_on, test in (("A->B", a, b), ("B->A", b, a)):
        if len(fit_on) < 20 or not test:
            continue
        scores = train(fit_on).score_many([p.prompt for p in test])
        by_id = dict(zip((p.id for p in test), scores.tolist(), strict=True))
        baselines = {"router": by_id, "random": random_scores(test), "length": length_scores(test)}
        groups: dict[str, list[PairItem]] = {}
        for p in test:
            groups.setdefault(p.group, []).append(p)
        report[name] = {
            "train": len(fit_on),
            "groups": {
                group: {kind: gap_metrics(items, [s[p.id] for p in items]) for kind, s in baselines.items()}
                for group, items in sorted(groups.items())
            },
        }
    return report


# ── storage ──────────────────────────────────────────────────────────────────


def save(model: StrongNeedModel, path: Path) -> StrongNeedModel:
    """Write atomically; returns the model with its digest (which names its version) filled in."""
    arrays = {"strong": model.strong, "weak": model.weak, "mean": model.mean, "scale": model.scale}
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "structural": list(STRUCTURAL),
        "dimensions": embedding.DIMENSIONS, "prior": model.prior, "thresholds": model.thresholds,
        "info": {k: v for k, v in model.info.items() if k != "digest"},
    }  # fmt: skip
    digest = _digest(header, arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as sink:
        np.savez_compressed(sink, header=np.array(json.dumps(header, sort_keys=True)), strong=model.strong,
                            weak=model.weak, mean=model.mean, scale=model.scale)  # fmt: skip
    partial.replace(path)
    return StrongNeedModel(model.strong, model.weak, model.mean, model.scale, model.prior, model.thresholds,
                           {**model.info, "digest": digest})  # fmt: skip


def load(path: Path) -> StrongNeedModel:
    """Read a stored scorer; every problem is a LearnedModelError naming the file and the fix."""
    retrain = f"run `model-router train PAIRS.jsonl --strong-need --out {path}` to write a new one"
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k].astype(np.float64) for k in ("strong", "weak", "mean", "scale")}
            header = json.loads(str(stored["header"]))
    except FileNotFoundError:
        raise LearnedModelError(f"no strong-need model at {path}; {retrain}") from None
    except (OSError, ValueError, KeyError, EOFError):
        raise LearnedModelError(f"the strong-need model {path} is corrupt or incomplete; {retrain}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LearnedModelError(f"{path} is not a model-router strong-need model; {retrain}")
    width = 2 * (embedding.DIMENSIONS + len(STRUCTURAL)) + 1
    if (
        header.get("format_version") != FORMAT_VERSION
        or header.get("structural") != list(STRUCTURAL)
        or header.get("dimensions") != embedding.DIMENSIONS
        or arrays["strong"].shape != (width,)
        or arrays["weak"].shape != (width,)
    ):
        raise LearnedModelError(f"the strong-need model {path} was built with other features; {retrain}")
    try:
        return StrongNeedModel(
            arrays["strong"], arrays["weak"], arrays["mean"], arrays["scale"], float(header["prior"]),
            {str(k): float(v) for k, v in header["thresholds"].items()},
            {**header["info"], "digest": _digest(header, arrays)},
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LearnedModelError(f"the strong-need model {path} is incomplete or mis-shaped; {retrain}") from None


def load_shipped() -> StrongNeedModel:
    """The scorer trained on the public pairs_dev.jsonl that ships in the package."""
    with resources.as_file(resources.files("server") / "data" / SHIPPED) as path:
        return load(path)


def _digest(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    body = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for key in sorted(arrays):
        body.update(np.ascontiguousarray(arrays[key], dtype=np.float64).tobytes())
    return body.hexdigest()
