"""Tool-need prediction: precision and recall of the rules and of the shipped rules-OR-learned combination.

Prints:
- the rules (`server.analysis.tool_need`) on tests/data/tool_need.jsonl (181 labelled prompts) and on the
  held-out sets tool_need_heldout.jsonl (63), tool_need_heldout2.jsonl (94), tool_need_heldout3.jsonl (35)
  and tool_need_heldout4.jsonl (99, blind), tool_need_first_person.jsonl (67, blind) and
  tool_need_chat.jsonl (84): requires_tools precision/recall, per kind and per source, each with what its
  figure is worth (see tests/data/README.md);
- the learned tool-need model (`server.analysis.tool_need_model`, the rules OR a per-kind logistic regression
  over the WordLlama embedding and the cue features): pooled 5-fold CV over the five training sets (retrained
  per fold, thresholds chosen inside it) beside the rules, with the out-of-fold false flags on the chat
  set's and dev.jsonl's no-tool prompts; then the shipped model on the two sets never trained on
  (tool_need_heldout4.jsonl, tool_need_first_person.jsonl; their prompts are dropped from dev.jsonl too), how
  many of issue 18's reviewer prompts it offers memory, and its latency;
- a held-out check of the rules on ../shared/eval/dev.jsonl (not labelled for tool need: its non-agentic
  prompts ask for no tool, so any prediction there is a false positive; its BFCL web_search and memory
  prompts need search and memory) — skipped when that file is absent;
- the rules' latency: p50/p99 for prompts under 4k characters and for 50k-character documents.

    python bench/bench_tool_need.py          (also run by bench/bench_analyzer.py)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "tool_need.jsonl"
HELD_OUT = ROOT / "tests" / "data" / "tool_need_heldout.jsonl"
HELD_OUT_2 = ROOT / "tests" / "data" / "tool_need_heldout2.jsonl"
HELD_OUT_3 = ROOT / "tests" / "data" / "tool_need_heldout3.jsonl"
HELD_OUT_4 = ROOT / "tests" / "data" / "tool_need_heldout4.jsonl"
CHAT = ROOT / "tests" / "data" / "tool_need_chat.jsonl"
FIRST_PERSON = ROOT / "tests" / "data" / "tool_need_first_person.jsonl"
TRAIN_SETS = [DATA, HELD_OUT, HELD_OUT_2, HELD_OUT_3, CHAT]  # what the shipped learned model is trained on
NEVER_TRAINED = [HELD_OUT_4, FIRST_PERSON]  # test sets: their prompts are dropped from dev.jsonl's negatives too
# Issue 18's reviewer: ordinary first-person chat the first learned model offered the memory tools to.
REVIEWER_PROMPTS = tuple((ROOT / "tests" / "data" / "tool_need_reviewer_first_person.txt").read_text().splitlines())
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
sys.path.insert(0, str(ROOT))

from server.analysis.tool_need import predict  # noqa: E402
from server.domain.tasks import TOOL_KINDS  # noqa: E402

# What each held-out figure is worth (tests/data/README.md says how each set was taken).
HELD_OUT_NOTES = (
    (HELD_OUT, "taken after the cues were frozen, when recall was 0.851; two memory cues were added since"),
    (
        HELD_OUT_2,
        "the rules before the cue change scored precision 0.936 recall 0.657 here (the honest figure); "
        "its misses were then read, so this figure is not held out",
    ),
    (HELD_OUT_3, "taken after the cue change and measured once; the rules before the change scored the same"),
    (HELD_OUT_4, "blind: labelled before any analyser ran on it; the rules scored 0.944 / 0.879 when first measured"),
    (FIRST_PERSON, "blind: written before the second model; the rules scored 0.833 / 0.870 when first measured"),
    (CHAT, "first-person chat written to train the second model; the cues were not changed for it"),
)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def precision_recall(predicted: Sequence[bool], truth: Sequence[bool]) -> str:
    hits = sum(p and t for p, t in zip(predicted, truth, strict=True))
    precision = f"{hits / sum(predicted):.3f}" if any(predicted) else "n/a (none predicted)"
    recall = f"{hits / sum(truth):.3f}" if any(truth) else "n/a"
    return f"precision {precision} recall {recall} (n={len(truth)}, {sum(truth)} need a tool)"


def rules(rows: list[dict[str, Any]], note: str) -> list[bool]:
    kinds = [set(predict(r["prompt"]).kinds) for r in rows]
    truth = [bool(r["tools"]) for r in rows]
    predicted = [bool(k) for k in kinds]
    print(f"rules, requires_tools: {precision_recall(predicted, truth)}  (target recall >= 0.90 at precision >= 0.85)")
    print(f"  ({note})")
    for kind in TOOL_KINDS:
        print(f"  {kind:7} {precision_recall([kind in k for k in kinds], [kind in r['tools'] for r in rows])}")
    print("  per source (precision / recall of requires_tools):")
    for source in sorted({r["source"] for r in rows}):
        index = [i for i, r in enumerate(rows) if r["source"] == source]
        label = source.split(" (")[0][:44]
        print(f"    {label:44} {precision_recall([predicted[i] for i in index], [truth[i] for i in index])}")
    return predicted


def learned() -> None:
    """Pooled 5-fold CV of the shipped design over the five training sets (dev.jsonl's no-tool prompts join
    the training folds, as when shipping, and are scored out of fold too): the model is retrained per fold
    and its thresholds chosen inside the fold. Then the shipped model on the sets it never saw."""
    try:
        import numpy as np

        from server.analysis.tool_need_model import ToolNeedItem, read_items, train
    except ImportError as exc:
        print(f"learned tool need: skipped ({exc}; pip install 'mcp-model-router[learned]')")
        return
    labelled = read_items(TRAIN_SETS, exclude=NEVER_TRAINED)
    dev = read_items([DEV], exclude=NEVER_TRAINED) if DEV.is_file() else []
    negatives = [i for i in dev if i.prompt not in {x.prompt for x in labelled}]
    items: list[ToolNeedItem] = labelled + negatives
    order = np.random.default_rng(0).permutation(len(items))
    fold = np.zeros(len(items), dtype=int)
    for k in range(5):
        fold[order[k::5]] = k
    combined: list[set[str]] = [set() for _ in items]
    for k in range(5):
        model = train([item for item, f in zip(items, fold, strict=True) if f != k])
        for i in np.flatnonzero(fold == k):
            combined[i] = set(model.predict(items[i].prompt).kinds)
    rule_kinds = [set(predict(item.prompt).kinds) for item in items]
    rows = [{"tools": sorted(i.tools)} for i in labelled]
    chat = {r["prompt"] for r in read(CHAT) if not r["tools"]}
    print(
        f"\npooled 5-fold CV over the five training sets ({len(labelled)} prompts"
        f"{f', plus {len(negatives)} no-tool dev.jsonl prompts in the training folds' if negatives else ''}):"
    )
    for name, kinds in (("rules", rule_kinds), ("rules OR learned", combined)):
        report(name, kinds[: len(labelled)], rows)
        flagged = sum(bool(k) for k, i in zip(kinds, labelled, strict=False) if i.prompt in chat)
        print(f"    {CHAT.name} no-tool prompts flagged (out of fold): {flagged} of {len(chat)}")
        if negatives:
            flagged = sum(bool(k) for k in kinds[len(labelled) :])
            print(f"    dev.jsonl no-tool prompts flagged (out of fold): {flagged} of {len(negatives)}")
    shipped_model(negatives)


def shipped_model(negatives: Sequence[Any]) -> None:
    """The shipped model on the two sets never trained on, dev's no-tool prompts, and the reviewer's prompts."""
    from server.analysis.tool_need_model import load_shipped

    shipped = load_shipped()
    for path, note in (
        (HELD_OUT_4, "labelled before any analyser ran on it; the first model scored 0.900 / 0.931 on it"),
        (FIRST_PERSON, "written before retraining; the first model scored 0.438 / 0.913 on it"),
    ):
        held_out = read(path)
        print(f"\n{path.name} ({len(held_out)} prompts, never trained on; {note}):")
        report("rules", [set(predict(r["prompt"]).kinds) for r in held_out], held_out)
        report("rules OR learned (shipped)", [set(shipped.predict(r["prompt"]).kinds) for r in held_out], held_out)
    print(f"\nthe shipped model {shipped.version}, thresholds {shipped.thresholds}:")
    if negatives:
        flagged = sum(bool(shipped.predict(i.prompt).kinds) for i in negatives)
        print(f"  shipped model on dev.jsonl's no-tool prompts (in its training data): {flagged} of {len(negatives)}")
    memory = [p for p in REVIEWER_PROMPTS if "memory" in shipped.predict(p).kinds]
    print(f"  issue 18 reviewer's first-person prompts offered memory: {len(memory)} of {len(REVIEWER_PROMPTS)}"
          f" (rules alone: {sum('memory' in predict(p).kinds for p in REVIEWER_PROMPTS)})")  # fmt: skip
    samples = timed(lambda text: shipped.predict(text), [r["prompt"] for r in read(HELD_OUT_4)])
    print(
        f"  shipped model latency per prompt: p50 {statistics.median(samples):.3f} ms, "
        f"p99 {samples[int(len(samples) * 0.99) - 1]:.3f} ms over {len(samples)} calls"
    )


def report(name: str, kinds: Sequence[set[str]], rows: Sequence[dict[str, Any]]) -> None:
    predicted, truth = [bool(k) for k in kinds], [bool(r["tools"]) for r in rows]
    print(
        f"  {name:26} requires_tools: {precision_recall(predicted, truth)}  (target: recall >= 0.90, precision >= 0.85)"
    )
    recalls = []
    for kind in TOOL_KINDS:
        needed = [kind in r["tools"] for r in rows]
        found = sum(kind in k for k, n in zip(kinds, needed, strict=True) if n)
        recalls.append(f"{kind} {found}/{sum(needed)}")
    print(f"  {'':26} per-kind recall: {', '.join(recalls)}")


def held_out_dev() -> None:
    if not DEV.is_file():
        print(f"held-out check on dev.jsonl: skipped ({DEV} is absent; the eval data is not shipped)")
        return
    rows = read(DEV)
    negatives = [r for r in rows if r["category"] != "agentic_tool_use"]
    positives = [r for r in rows if r.get("source_category") in ("web_search", "memory")]
    false = sum(bool(predict(r["prompt"]).kinds) for r in negatives)
    found = sum(bool(predict(r["prompt"]).kinds) for r in positives)
    print(f"\nrules on dev.jsonl: {false} of {len(negatives)} non-agentic prompts predicted to need a tool; "
          f"{found} of {len(positives)} BFCL web_search/memory prompts found")  # fmt: skip


def latency(rows: list[dict[str, Any]]) -> None:
    prompts = [r["prompt"] for r in rows]
    if DEV.is_file():
        prompts += [r["prompt"] for r in read(DEV) if len(r["prompt"]) < 4_000]
    document = " ".join(prompts)
    documents = [(document[i:] + document)[:50_000] for i in range(0, 20_000, 1_000)]
    for label, texts in (("prompts < 4k chars", prompts), ("50k-char documents", documents)):
        samples = timed(predict, texts)
        print(f"rules latency, {label}: p50 {statistics.median(samples):.3f} ms, "
              f"p99 {samples[int(len(samples) * 0.99) - 1]:.3f} ms over {len(samples)} calls")  # fmt: skip


def timed(function: Callable[[str], object], texts: Sequence[str], repeat: int = 5) -> list[float]:
    samples = []
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            function(text)
            samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def main() -> None:
    rows = read(DATA)
    print(f"tool need on {DATA.relative_to(ROOT)} ({len(rows)} prompts):")
    rules(rows, "the cues were written with this set in view: an in-sample figure for the rules")
    for path, note in HELD_OUT_NOTES:
        held_out = read(path)
        print(f"\ntool need on {path.relative_to(ROOT)} ({len(held_out)} prompts):")
        rules(held_out, note)
    learned()
    held_out_dev()
    latency(rows)


if __name__ == "__main__":
    main()
