"""How well a trainable category classifier generalises: k-fold cross-validation and leave-one-source-out.

Leave-one-source-out (LOSO) trains on every source but one and tests on the one left out, for each source,
and pools the predictions: it measures prompts whose wording, template and length the model never saw,
which is what a user's prompts are. Cross-validation folds are shuffled with a fixed seed, so the figures
are reproducible. Pure: the caller hands in how to fit and how to predict.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from server.analysis.metrics import CategoryItem, category_metrics

# Fit on (prompts, labels) and return a function from prompts to predicted labels.
Fitter = Callable[[Sequence[str], Sequence[str]], Callable[[Sequence[str]], Sequence[str]]]


def cross_validate(items: Sequence[CategoryItem], fit: Fitter, *, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Category measures of predictions made by models that never saw the item (k shuffled folds)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    fold_of = {index: position % folds for position, index in enumerate(order)}
    predicted = _held_out_predictions(items, fit, [[i for i in order if fold_of[i] == k] for k in range(folds)])
    return {**category_metrics([item.category for item in items], predicted), "folds": folds}


def leave_one_source_out(items: Sequence[CategoryItem], fit: Fitter) -> dict[str, Any]:
    """Category measures when each source is predicted by a model trained on all the others, plus per-source
    accuracy. Needs items from at least two sources."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[item.group].append(index)
    if len(groups) < 2 or "" in groups:
        raise ValueError("leave-one-source-out needs a 'source' on every line and at least two sources")
    predicted = _held_out_predictions(items, fit, [groups[g] for g in sorted(groups)])
    truth = [item.category for item in items]
    per_source = {
        g: sum(predicted[i] == truth[i] for i in indices) / len(indices) for g, indices in sorted(groups.items())
    }
    return {**category_metrics(truth, predicted), "per_source": per_source}


def per_source_accuracy(items: Sequence[CategoryItem], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy within each source (for an analyser that is not trained, this is its whole LOSO story)."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item, guess in zip(items, predicted, strict=True):
        hits[item.group or "-"][0] += guess == item.category
        hits[item.group or "-"][1] += 1
    return {g: right / total for g, (right, total) in sorted(hits.items())}


def _held_out_predictions(items: Sequence[CategoryItem], fit: Fitter, splits: list[list[int]]) -> list[str]:
    predicted = [""] * len(items)
    for test in splits:
        held = set(test)
        train = [item for i, item in enumerate(items) if i not in held]
        predict = fit([item.prompt for item in train], [item.category for item in train])
        for index, label in zip(test, predict([items[i].prompt for i in test]), strict=True):
            predicted[index] = label
    return predicted
