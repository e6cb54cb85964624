"""The learned category classifier: a linear model over sentence embeddings and the rules' signals.

Features: the encoder's L2-normalised sentence vector (`embedding`) followed by the rules' structural
features and per-category scores (`vectorize.structural_features`). scikit-learn fits a multinomial
logistic regression at training time; at run time the model is plain numbers scored with numpy, so a
stored model is JSON (no pickle) and loads without scikit-learn.

Why the rules' vote is mixed in: measured leave-one-source-out on the public dev set, a pure classifier
scores ~0.2-0.6, because some categories come from a single source (all agentic prompts are BFCL, all long
documents LEval) and vanish from training when that source is left out; it can never predict them. The
final probabilities are `rule_weight * onehot(rules' category) + (1 - rule_weight) * p(model)`: the rules'
category stands unless the model prefers another one by more than rule_weight / (1 - rule_weight) in
probability, and a category the model never saw is the rules' to give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.analysis.local import rule_category, rule_signals
from server.analysis.tool_need import predict as predict_tool_need
from server.analysis.validation import Fitter
from server.analysis.vectorize import STRUCTURAL, structural_features
from server.domain.tasks import Category
from server.errors import LearnedModelError

ENCODER = "wordllama/l2_supercat-256"
# Chosen by leave-one-source-out (LOSO) accuracy on dev.jsonl (README, "How the analysers are trained"):
# every weight below this let the model override the rules more often and lowered LOSO accuracy.
RULE_WEIGHT = 0.45
REGULARISATION_C = 1.0
_ALL = list(Category)


@dataclass(frozen=True, eq=False)  # numpy arrays have no single truth value for ==
class CategoryClassifier:
    """Fitted weights (one row per class) over [embedding, structural features], plus the rule mix."""

    classes: tuple[Category, ...]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    rule_weight: float
    encoder: str = ENCODER

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, every Category) mixed probabilities; columns follow `list(Category)`."""
        return self.mix(*features(texts))

    def mix(self, rows: np.ndarray, rules: Sequence[Category]) -> np.ndarray:
        """`probabilities` from precomputed `features`."""
        model = np.zeros((len(rules), len(_ALL)))
        model[:, [_ALL.index(c) for c in self.classes]] = _softmax(rows @ self.coef.T + self.intercept)
        voted = np.zeros_like(model)
        voted[np.arange(len(rules)), [_ALL.index(c) for c in rules]] = 1.0
        return self.rule_weight * voted + (1.0 - self.rule_weight) * model

    def predict(self, text: str) -> tuple[Category, float]:
        """The category and its mixed probability."""
        mixed = self.probabilities([text])[0]
        best = int(mixed.argmax())
        return _ALL[best], float(mixed[best])

    def to_payload(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "features": ["embedding", *STRUCTURAL],
            "classes": [c.value for c in self.classes],
            "coef": [[round(float(w), 6) for w in row] for row in self.coef],
            "intercept": [round(float(b), 6) for b in self.intercept],
            "rule_weight": self.rule_weight,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CategoryClassifier:
        if payload.get("encoder") != ENCODER or payload.get("features") != ["embedding", *STRUCTURAL]:
            raise LearnedModelError(
                f"the category classifier was built for encoder {payload.get('encoder')!r} and other features"
            )
        coef = np.asarray(payload["coef"], dtype=np.float64)
        classes = tuple(Category(c) for c in payload["classes"])
        if coef.shape != (len(classes), _dimensions()):
            raise ValueError("coefficient shape does not match the classes and features")
        return cls(classes, coef, np.asarray(payload["intercept"], dtype=np.float64), float(payload["rule_weight"]))


def _dimensions() -> int:
    from server.analysis.embedding import DIMENSIONS

    return DIMENSIONS + len(STRUCTURAL)


def features(texts: Sequence[str]) -> tuple[np.ndarray, list[Category]]:
    """The classifier's input rows (sentence embedding, then the rules' structural features) and the rules'
    category of each text."""
    from server.analysis.embedding import embed

    structural, rules = [], []
    for text in texts:
        f, scores, strong = rule_signals(text)
        structural.append(structural_features(f, scores, strong))
        rules.append(rule_category(f, scores, predict_tool_need(text).kinds))
    rows = np.array(structural, dtype=np.float64).reshape(len(texts), len(STRUCTURAL))
    return np.hstack([embed(texts).astype(np.float64), rows]), rules


def fit(
    prompts: Sequence[str], labels: Sequence[str], *, rule_weight: float = RULE_WEIGHT, c: float = REGULARISATION_C
) -> CategoryClassifier:
    """Fit on labelled prompts with scikit-learn (lbfgs: deterministic for the same data)."""
    return fit_rows(features(prompts)[0], labels, rule_weight=rule_weight, c=c)


def validation_fitter(prompts: Sequence[str], **options: Any) -> Fitter:
    """A `validation.Fitter` over `prompts` that computes their features once for every fold."""
    rows, rules = features(prompts)
    where = {prompt: i for i, prompt in enumerate(prompts)}

    def fit_fold(train: Sequence[str], labels: Sequence[str]) -> Callable[[Sequence[str]], Sequence[str]]:
        model = fit_rows(rows[[where[p] for p in train]], labels, **options)

        def predict(test: Sequence[str]) -> list[str]:
            index = [where[p] for p in test]
            mixed = model.mix(rows[index], [rules[i] for i in index])
            return [_ALL[int(k)].value for k in mixed.argmax(axis=1)]

        return predict

    return fit_fold


def fit_rows(
    rows: np.ndarray, labels: Sequence[str], *, rule_weight: float = RULE_WEIGHT, c: float = REGULARISATION_C
) -> CategoryClassifier:
    """`fit` from precomputed `features` rows."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        from server.analysis.embedding import INSTALL_HINT

        raise LearnedModelError(f"training the category classifier needs scikit-learn: {INSTALL_HINT}") from exc
    classes = tuple(c_ for c_ in Category if c_.value in set(labels))
    if len(classes) < 2:
        raise LearnedModelError("the category classifier needs lines of at least two categories")
    model = LogisticRegression(C=c, max_iter=5_000)
    model.fit(rows, [Category(label).value for label in labels])
    coef, intercept = model.coef_, model.intercept_
    if len(classes) == 2:  # sklearn keeps one row for two classes: softmax over [0, w] is the same sigmoid
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    order = [list(model.classes_).index(cat.value) for cat in classes]
    return CategoryClassifier(classes, coef[order], intercept[order], rule_weight)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
