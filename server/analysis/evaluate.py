"""`model-router eval`: run an analyser over a labelled set and put its measures beside the baselines."""

from __future__ import annotations

from typing import Any

from server.analysis.analyzers import Analyzer
from server.analysis.metrics import (
    LabelledSet,
    category_metrics,
    gap_metrics_by_group,
    length_scores,
    random_scores,
)
from server.analysis.validation import per_source_accuracy


async def evaluate(analyzer: Analyzer, data: LabelledSet) -> dict[str, Any]:
    """Category measures for category lines; APGR/CPT per source for outcome lines (with baselines)."""
    result: dict[str, Any] = {"analyzer": analyzer.version}
    if data.categories:
        predicted = [(await analyzer.analyze(item.prompt)).category.value for item in data.categories]
        result["categories"] = category_metrics([item.category for item in data.categories], predicted)
        if any(item.source for item in data.categories):
            result["categories"]["per_source"] = per_source_accuracy(data.categories, predicted)
    if data.pairs:
        scores = {pair.id: (await analyzer.analyze(pair.prompt)).strong_score for pair in data.pairs}
        result["pairs"] = {
            "analyzer": gap_metrics_by_group(data.pairs, scores),
            "random": gap_metrics_by_group(data.pairs, random_scores(data.pairs)),
            "length": gap_metrics_by_group(data.pairs, length_scores(data.pairs)),
        }
    return result


def print_evaluation(result: dict[str, Any]) -> None:
    print(f"{result.get('file', '')}  analyser {result['analyzer']}")
    categories = result.get("categories")
    if categories:
        print(f"\ncategory: accuracy {categories['accuracy']:.3f}, macro-F1 {categories['macro_f1']:.3f} "
              f"({categories['n']} prompts)")  # fmt: skip
        print(f"  {'category':18} {'precision':>9} {'recall':>7} {'F1':>6} {'n':>5}")
        for name, m in categories["per_category"].items():
            print(f"  {name:18} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:5}")
        if "per_source" in categories:
            print("  accuracy per source: " + ", ".join(f"{k} {v:.2f}" for k, v in categories["per_source"].items()))
        labels = sorted({p for row in categories["confusion"].values() for p in row} | set(categories["confusion"]))
        print("\n  confusion (rows: label, columns: predicted)")
        print("  " + " " * 18 + "".join(f"{label[:6]:>7}" for label in labels))
        for truth, row in categories["confusion"].items():
            print(f"  {truth:18}" + "".join(f"{row.get(label, 0):7}" for label in labels))
    pairs = result.get("pairs")
    if pairs:
        print("\nstrong_score (APGR: 0.5 = random, higher is better; CPT: share of strong calls, lower is better)")
        print(f"  {'source':8} {'router':>26} {'random':>26} {'length':>26}")
        for group, measured in pairs["analyzer"].items():
            cells = [_cell(pairs[kind][group]) for kind in ("analyzer", "random", "length")]
            print(f"  {group:8} " + " ".join(f"{cell:>26}" for cell in cells) + f"  n={measured['n']}")
        print("  (each cell: APGR / CPT50 / CPT80)")


def _cell(m: dict[str, Any]) -> str:
    if m.get("apgr") is None:
        return "n/a (strong not better)"
    return f"{m['apgr']:.3f} / {m['cpt50']:.3f} / {m['cpt80']:.3f}"
