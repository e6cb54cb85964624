"""Category accuracy on bench/data/category_heldout.jsonl, prompts nobody tuned the analysers on (issue #18).

Prints, through `model-router eval` (server/analysis/evaluate.py: accuracy, macro-F1, per-category recall,
per-source accuracy):
- the rules (`--analyzer local`);
- the default analyser (`auto`: the shipped learned model when the encoder is installed, else the rules);
- the learned model retrained on ../shared/eval/dev.jsonl alone at run time (`train --no-validate`), with
  whether its file is byte-identical to the shipped one (skipped with a message when ../shared/eval is absent).

How the set was built, and the figures measured before any analyser was tuned with it: bench/data/README.md.

    python bench/bench_category_heldout.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "bench" / "data" / "category_heldout.jsonl"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
sys.path.insert(0, str(ROOT))

from bench_analyzer import cli  # noqa: E402  (the same `model-router … --json` runner)


def report(title: str, result: dict[str, Any]) -> None:
    c = result["categories"]
    print(f"{title} [{result['analyzer']}]: accuracy {c['accuracy']:.3f}, macro-F1 {c['macro_f1']:.3f} (n={c['n']})")
    print("  recall: " + ", ".join(f"{k} {v['recall']:.2f}" for k, v in c["per_category"].items()))
    print("  accuracy per source: " + ", ".join(f"{k} {v:.2f}" for k, v in c["per_source"].items()))


def main() -> None:
    from server.analysis.analyzers import SHIPPED_MODEL

    print(f"category analysers on {HELDOUT.relative_to(ROOT)} (held out: not tuned on; see bench/data/README.md):")
    with tempfile.TemporaryDirectory(prefix="bench-category-heldout-") as tmp:
        home = Path(tmp) / "home"
        report("rules (--analyzer local)", cli("eval", str(HELDOUT), "--analyzer", "local", home=home))
        report("default analyser (auto)", cli("eval", str(HELDOUT), home=home))  # a fresh home: analyzer = "auto"
        if not DEV.is_file():
            print(f"skipped the retrained model: {DEV} is absent (the eval data is not shipped)")
            return
        model = Path(tmp) / "dev.json.gz"
        cli("train", str(DEV), "--out", str(model), "--no-validate", home=home)
        same = "yes" if model.read_bytes() == SHIPPED_MODEL.read_bytes() else "NO"
        title = f"learned, retrained on dev.jsonl now (file byte-identical to the shipped model: {same})"
        report(title, cli("eval", str(HELDOUT), "--model", str(model), home=home))


if __name__ == "__main__":
    main()
