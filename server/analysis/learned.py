"""The learned router: linear models over hashed text features, trained on a user's labelled outcomes.

Two optional parts, each trained when its kind of label is present:
- a softmax classifier for the task category (from `{prompt, category}` lines);
- a strong-need scorer (from `{prompt, scores: {strong, weak}}` lines): one logistic model for "only the
  strong model got it right" and one for "only the weak one did"; strong_score = (1 + p_strong - p_weak) / 2.
  A fifth of the pairs (chosen by a hash of the id) is held out to calibrate the cost preferences'
  thresholds, so the thresholds are measured on prompts the scorer did not see.
Pure Python (no numpy/torch): SGD with a fixed shuffle seed, so the same file gives the same model.
The stored file is gzip'd JSON with a format version and a SHA-256 of its payload.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.analysis.metrics import CategoryItem, PairItem, threshold_for
from server.analysis.vectorize import HASH_BITS, STRUCTURAL, SparseVector, vectorize
from server.domain.tasks import Category
from server.errors import LearnedModelError, reason

if TYPE_CHECKING:
    from server.analysis.classifier import CategoryClassifier

FORMAT = "model-router/learned-router"
FORMAT_VERSION = 1
MODEL_FILE = "learned_router.json.gz"
# The cost preferences' quality targets: the share of the strong-weak quality gap each must recover.
TARGET_PGR = {"balanced": 0.8, "cheapest": 0.5}
_PRUNE = 1e-4
_L2 = 1e-5


@dataclass(frozen=True)
class LearnedModel:
    """A trained model: category weights and/or strong-need weights, plus calibrated thresholds."""

    classes: tuple[Category, ...]
    category_weights: dict[int, list[float]]
    strong_weights: dict[int, float]
    weak_weights: dict[int, float]
    thresholds: dict[str, float]
    info: dict[str, Any]
    # The category part over sentence embeddings (`[learned]`); when set it replaces `category_weights`.
    classifier: CategoryClassifier | None = None

    @property
    def has_categories(self) -> bool:
        return bool(self.classes)

    @property
    def has_strong(self) -> bool:
        return bool(self.strong_weights)

    @property
    def version(self) -> str:
        return f"learned-{FORMAT_VERSION}:{self.info.get('digest', 'unsaved')[:12]}"

    def category(self, vector: SparseVector) -> tuple[Category, float]:
        """The most likely category and its probability."""
        probabilities = _softmax(_class_logits(self.category_weights, vector, len(self.classes)))
        best = max(range(len(self.classes)), key=probabilities.__getitem__)
        return self.classes[best], probabilities[best]

    def strong_score(self, vector: SparseVector) -> float:
        strong = _sigmoid(_dot(self.strong_weights, vector))
        weak = _sigmoid(_dot(self.weak_weights, vector))
        return min(1.0, max(0.0, (1.0 + strong - weak) / 2))


# ── training ─────────────────────────────────────────────────────────────────


def train(
    categories: Sequence[CategoryItem],
    pairs: Sequence[PairItem],
    *,
    epochs: int = 6,
    seed: int = 0,
    encoder: bool = False,
) -> LearnedModel:
    """Fit whichever parts the labels allow. Raises LearnedModelError when there is nothing to learn from.

    With `encoder` (the `[learned]` extra installed), the category part is the embedding classifier
    (`classifier.fit`); otherwise it is the hashed-feature softmax below.
    """
    known = {c.value for c in Category}
    bad = sorted({item.category for item in categories} - known)
    if bad:
        raise LearnedModelError(f"unknown categories {bad}; use one of {sorted(known)}")
    if not categories and not pairs:
        raise LearnedModelError("no labelled lines: need 'category' or 'scores' {strong, weak} on each line")
    classes: tuple[Category, ...] = ()
    category_weights: dict[int, list[float]] = {}
    classifier = None
    if categories and encoder:
        from server.analysis.classifier import fit

        classifier = fit([item.prompt for item in categories], [item.category for item in categories])
        classes = classifier.classes
    elif categories:
        classes = tuple(sorted({Category(item.category) for item in categories}, key=list(Category).index))
        index = {c: i for i, c in enumerate(classes)}
        vectors = [vectorize(item.prompt) for item in categories]
        labels = [index[Category(item.category)] for item in categories]
        category_weights = fit_softmax(vectors, labels, len(classes), epochs=epochs * 2, seed=seed)
    strong_weights: dict[int, float] = {}
    weak_weights: dict[int, float] = {}
    thresholds: dict[str, float] = {}
    calibration_info: dict[str, Any] = {}
    if pairs:
        fit_part = [p for p in pairs if not _held_out(p.id)]
        held = [p for p in pairs if _held_out(p.id)]
        if len(held) < 20 or len(fit_part) < 20:
            fit_part, held = list(pairs), list(pairs)  # too few to hold out: calibrate in-sample
        vectors = [vectorize(p.prompt) for p in fit_part]
        strong_weights = fit_logistic(vectors, [p.strong > p.weak for p in fit_part], epochs=epochs, seed=seed)
        weak_weights = fit_logistic(vectors, [p.weak > p.strong for p in fit_part], epochs=epochs, seed=seed + 1)
        scorer = LearnedModel((), {}, strong_weights, weak_weights, {}, {})
        held_scores = [scorer.strong_score(vectorize(p.prompt)) for p in held]
        for preference, target in TARGET_PGR.items():
            try:
                threshold, share = threshold_for(held, held_scores, target)
            except ValueError:
                continue  # the strong model is not better on these pairs: keep the config's thresholds
            thresholds[preference] = round(threshold, 4)
            calibration_info[preference] = {"target_pgr": target, "strong_share": round(share, 4)}
        calibration_info["held_out_pairs"] = len(held)
    info = {
        "category_rows": len(categories),
        "pair_rows": len(pairs),
        "epochs": epochs,
        "hash_bits": HASH_BITS,
        "calibration": calibration_info,
        "category_features": "embedding+rules" if classifier else "hashed",
    }
    # No timestamps in the file: the same data gives the same bytes, so a shipped model can be checked.
    return LearnedModel(classes, category_weights, strong_weights, weak_weights, thresholds, info, classifier)


def _held_out(item_id: str) -> bool:
    return zlib.crc32(item_id.encode()) % 5 == 0


def fit_logistic(
    vectors: Sequence[SparseVector], labels: Sequence[bool], *, epochs: int, seed: int
) -> dict[int, float]:
    """Binary logistic regression by averaged SGD (the mean of the weights over all steps is far less noisy
    than the last ones on labels this noisy), with L2 on the touched weights."""
    weights: dict[int, float] = {}
    moments: dict[int, float] = {}  # sum of step * update: average = weights - moments / steps
    step = 1
    for step, i, rate in _schedule(len(vectors), epochs, seed, decay=0.7):
        vector = vectors[i]
        error = _sigmoid(_dot(weights, vector)) - (1.0 if labels[i] else 0.0)
        for key, value in vector.items():
            w = weights.get(key, 0.0)
            update = -rate * (error * value + _L2 * w)
            weights[key] = w + update
            moments[key] = moments.get(key, 0.0) + step * update
    step += 1
    averaged = {k: w - moments[k] / step for k, w in weights.items()}
    return {k: round(w, 5) for k, w in averaged.items() if abs(w) >= _PRUNE}


def fit_softmax(
    vectors: Sequence[SparseVector], labels: Sequence[int], classes: int, *, epochs: int, seed: int
) -> dict[int, list[float]]:
    """Multinomial logistic regression by averaged SGD; weights per feature hold one value per class."""
    weights: dict[int, list[float]] = {}
    moments: dict[int, list[float]] = {}
    step = 1
    for step, i, rate in _schedule(len(vectors), epochs, seed, decay=0.8):
        vector = vectors[i]
        probabilities = _softmax(_class_logits(weights, vector, classes))
        probabilities[labels[i]] -= 1.0  # gradient of the cross-entropy w.r.t. the logits
        for key, value in vector.items():
            row = weights.get(key)
            if row is None:
                row = weights[key] = [0.0] * classes
                moments[key] = [0.0] * classes
            moment = moments[key]
            for c in range(classes):
                update = -rate * (probabilities[c] * value + _L2 * row[c])
                row[c] += update
                moment[c] += step * update
    step += 1
    averaged = {k: [w - m / step for w, m in zip(row, moments[k], strict=True)] for k, row in weights.items()}
    return {k: [round(w, 5) for w in row] for k, row in averaged.items() if max(map(abs, row)) >= _PRUNE}


def _schedule(count: int, epochs: int, seed: int, *, decay: float) -> Iterator[tuple[int, int, float]]:
    """(step, example index, learning rate) for `epochs` shuffled passes; the rate decays after each pass."""
    order = list(range(count))
    rng = random.Random(seed)
    rate, step = 0.5, 1
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            yield step, i, rate
            step += 1
        rate *= decay


def _dot(weights: dict[int, float], vector: SparseVector) -> float:
    return sum(weights.get(k, 0.0) * v for k, v in vector.items())


def _class_logits(weights: dict[int, list[float]], vector: SparseVector, classes: int) -> list[float]:
    logits = [0.0] * classes
    for key, value in vector.items():
        row = weights.get(key)
        if row is not None:
            for c in range(classes):
                logits[c] += row[c] * value
    return logits


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))


# ── storage ──────────────────────────────────────────────────────────────────


def _classifier(payload: Any, path: Path) -> CategoryClassifier | None:
    if payload is None:
        return None
    try:
        from server.analysis.classifier import CategoryClassifier
    except ImportError as exc:  # numpy comes with the [learned] extra
        hint = "pip install 'mcp-model-router[learned]'"
        raise LearnedModelError(f"the learned model {path} needs the sentence encoder: {hint}") from exc
    return CategoryClassifier.from_payload(payload)


def save(model: LearnedModel, path: Path) -> LearnedModel:
    """Write atomically; returns the model with its digest (which names its version) filled in."""
    payload = {
        "classes": [c.value for c in model.classes],
        "category_weights": {str(k): row for k, row in model.category_weights.items()},
        "strong_weights": {str(k): w for k, w in model.strong_weights.items()},
        "weak_weights": {str(k): w for k, w in model.weak_weights.items()},
        "thresholds": model.thresholds,
        "info": {k: v for k, v in model.info.items() if k != "digest"},
        "structural": list(STRUCTURAL),
    }
    if model.classifier is not None:
        payload["classifier"] = model.classifier.to_payload()
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    document = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "sha256": digest, "payload": payload},
                          separators=(",", ":"), sort_keys=True)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(gzip.compress(document.encode(), mtime=0))
    partial.replace(path)
    return LearnedModel(model.classes, model.category_weights, model.strong_weights, model.weak_weights,
                        model.thresholds, {**model.info, "digest": digest}, model.classifier)  # fmt: skip


def load(path: Path) -> LearnedModel:
    """Read and verify a stored model; every problem is a LearnedModelError naming the file and the fix."""
    retrain = f"run `model-router train FILE.jsonl` to write a new one at {path}"
    try:
        raw = gzip.decompress(path.read_bytes())
        document = json.loads(raw)
    except FileNotFoundError:
        raise LearnedModelError(f"no learned model at {path}; {retrain}") from None
    except (ValueError, EOFError, gzip.BadGzipFile):  # BadGzipFile is an OSError: first
        raise LearnedModelError(f"the learned model {path} is corrupt (not gzip'd JSON); {retrain}") from None
    except OSError as exc:
        raise LearnedModelError(f"cannot read the learned model {path} ({reason(exc)}); {retrain}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise LearnedModelError(f"{path} is not a model-router learned model; {retrain}")
    if document.get("format_version") != FORMAT_VERSION:
        raise LearnedModelError(
            f"the learned model {path} has format version {document.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}; {retrain}"
        )
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise LearnedModelError(f"the learned model {path} has no payload; {retrain}")
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    if hashlib.sha256(body.encode()).hexdigest() != document.get("sha256"):
        raise LearnedModelError(f"the learned model {path} is corrupt (checksum mismatch); {retrain}")
    try:
        if payload["structural"] != list(STRUCTURAL) or payload["info"].get("hash_bits") != HASH_BITS:
            raise LearnedModelError(f"the learned model {path} was built with other features; {retrain}")
        classes = tuple(Category(c) for c in payload["classes"])
        return LearnedModel(
            classes=classes,
            category_weights={int(k): [float(w) for w in row] for k, row in payload["category_weights"].items()},
            strong_weights={int(k): float(w) for k, w in payload["strong_weights"].items()},
            weak_weights={int(k): float(w) for k, w in payload["weak_weights"].items()},
            thresholds={str(k): float(v) for k, v in payload["thresholds"].items()},
            info={**payload["info"], "digest": document["sha256"]},
            classifier=_classifier(payload.get("classifier"), path),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LearnedModelError(f"the learned model {path} is incomplete or malformed; {retrain}") from None
