"""`model-router analyze`, `eval` and `train`: the task analyser on files of prompts, measured and fitted."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from server.cli.common import EXIT_FAILURE, load_router, run_with_analyzer
from server.errors import RouterError, reason


def add_parsers(sub: Any) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="analyse a JSONL file of prompts",
        description="For each input line with `id` and `prompt`, write one JSON line with id, category, "
        "complexity, strong_score and token estimates.",
    )
    analyze.add_argument("input", type=Path, help="input JSONL file (- for stdin)")
    analyze.add_argument("--out", type=Path, help="output JSONL file (default stdout)")
    _analyzer_options(analyze)
    analyze.set_defaults(run=run_analyze)

    evaluate = sub.add_parser(
        "eval",
        help="measure the analyser on a labelled JSONL file",
        description="Lines with {id, prompt, category}: accuracy, macro-F1 and the confusion matrix of the "
        "analyser's category, and accuracy per source prefix when lines carry a `source` (for the untrained "
        "rules this is their leave-one-source-out; `train` measures a learned model's). "
        "Lines with {id, prompt, scores: {strong, weak}} (and optional source): APGR, "
        "CPT(50%%) and CPT(80%%) of strong_score per source prefix (before '/'), beside the random and "
        "prompt-length baselines. APGR 0.5 is random routing; CPT is the share of strong calls needed.",
    )
    evaluate.add_argument("input", type=Path, help="labelled JSONL file")
    _analyzer_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(run=run_eval)

    train = sub.add_parser(
        "train",
        help="fit the learned router on labelled outcomes",
        description="Fit the learned router from a JSONL file of {prompt, category, source} and/or {prompt, "
        "scores: {strong, weak}} lines and store it (default: learned_router.json.gz in the data dir, or "
        "[routing] learned_model). With the [learned] extra the category part is a logistic regression over "
        "sentence embeddings and the rules' signals; it is measured by 5-fold cross-validation and, when lines "
        'name their source, leave-one-source-out. Set [routing] analyzer = "learned" to use it. '
        "--strong-need and --tool-need fit the strong-need scorer or the tool-need model instead.",
    )
    train.add_argument("input", type=Path, nargs="+", help="labelled JSONL file (several only with --tool-need)")
    train.add_argument("--out", type=Path, help="where to write the model")
    train.add_argument("--epochs", type=int, default=6, help="SGD passes over the data (default 6)")
    train.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the 5-fold cross-validation and leave-one-source-out measures of the category part",
    )
    scorer = train.add_mutually_exclusive_group()
    scorer.add_argument(
        "--strong-need",
        action="store_true",
        help="fit the embedding strong-need scorer from the {prompt, scores} lines instead (needs the [learned] "
        "extra; default out: strong_need.npz in the data dir, which replaces the shipped one) and print its "
        "APGR on held-out halves (split by subject, or by row) beside the random and length baselines",
    )
    scorer.add_argument(
        "--tool-need",
        action="store_true",
        help="fit the learned tool-need model instead, from {prompt, tools} lines (tools: code, search, fetch, "
        "memory; [] for none) in one or more files; {prompt, category} lines of an eval file count as needing "
        "no tool, and its agentic_tool_use lines are skipped (needs the [learned] extra; default out: "
        "tool_need.json.gz in the data dir, which replaces the shipped one). Per-kind thresholds are chosen by "
        "5-fold cross-validation inside the data and printed",
    )
    train.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="with --tool-need: never train on a prompt of this held-out JSONL file, even where an input file "
        "(such as an eval file) holds it too; repeat for several files",
    )
    train.add_argument("--json", action="store_true", help="print the training summary as JSON")
    train.set_defaults(run=run_train)


def _analyzer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--analyzer", metavar="NAME", help="auto | local | learned | llm:<model id> (default: [routing] analyzer)"
    )
    parser.add_argument("--model", type=Path, metavar="PATH", help="learned model file (implies --analyzer learned)")


def run_analyze(args: argparse.Namespace) -> int:
    router = load_router(args)
    source = sys.stdin if str(args.input) == "-" else _open_input(args.input)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout

    async def work() -> int:
        errors = 0
        with source, out if args.out else _NoClose(out) as sink:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    if not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
                        raise ValueError("'prompt' must be a non-empty string")
                    analysis = await router.analyzer.analyze(item["prompt"])
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    errors += 1
                    print(f"model-router: {args.input}:{number}: skipped: {_describe(exc)}", file=sys.stderr)
                    continue
                sink.write(json.dumps(_analysis_row(item.get("id"), analysis)) + "\n")
        return errors

    errors = run_with_analyzer(router, work)
    return EXIT_FAILURE if errors else 0


def run_eval(args: argparse.Namespace) -> int:
    from server.analysis.evaluate import evaluate, print_evaluation
    from server.analysis.metrics import load_labelled

    router = load_router(args)
    data = load_labelled(args.input)
    result = run_with_analyzer(router, lambda: evaluate(router.analyzer, data))
    result["file"] = str(args.input)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_evaluation(result)
    return 0


def run_train(args: argparse.Namespace) -> int:
    import time as clock

    from server.analysis import embedding
    from server.analysis.analyzers import learned_model_path
    from server.analysis.learned import save, train
    from server.analysis.metrics import load_labelled
    from server.domain.config import load_config

    config = load_config(args.config)  # training needs no router: a broken model file must not stop a retrain
    if args.tool_need:
        return _train_tool_need(args, config.data_dir)
    if len(args.input) > 1:
        raise RouterError("pass one labelled file (several files are read only with --tool-need)")
    if args.exclude:
        raise RouterError("--exclude is read only with --tool-need; drop it or add --tool-need")
    data = load_labelled(args.input[0])
    if args.strong_need:
        return _train_strong_need(args, data.pairs, config.data_dir)
    started = clock.perf_counter()
    encoder = embedding.available()
    model = train(data.categories, data.pairs, epochs=max(1, args.epochs), encoder=encoder)
    path = args.out or learned_model_path(config)
    try:
        model = save(model, path)
    except OSError as exc:
        raise RouterError(f"cannot write the learned model to {path}: {exc.strerror or exc}; pass --out PATH") from None
    summary = {
        "path": str(path),
        "version": model.version,
        "bytes": path.stat().st_size,
        "seconds": round(clock.perf_counter() - started, 2),
        "category_rows": len(data.categories),
        "pair_rows": len(data.pairs),
        "categories": [c.value for c in model.classes],
        "thresholds": model.thresholds,
        "calibration": model.info.get("calibration", {}),
        "category_features": model.info.get("category_features"),
    }
    if data.categories and not args.no_validate:
        summary["validation"] = validate(data.categories, encoder=encoder, epochs=max(1, args.epochs))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    parts = [p for p, on in (("category", model.has_categories), ("strong_score", model.has_strong)) if on]
    print(f"trained {' + '.join(parts)} on {len(data.categories)} category and {len(data.pairs)} outcome lines "
          f"in {summary['seconds']} s")  # fmt: skip
    for preference, threshold in model.thresholds.items():
        share = summary["calibration"].get(preference, {}).get("strong_share")
        print(f"  {preference}: strong_score >= {threshold} goes strong ({share:.0%} of held-out prompts)")
    if "validation" in summary:
        print_validation(summary["validation"])
    print(f"wrote {path} ({summary['bytes']:,} bytes, {model.version})")
    print('use it with [routing] analyzer = "learned"' + ("" if args.out is None else f' and learned_model = "{path}"'))
    return 0


def validate(items: Any, *, encoder: bool, epochs: int) -> dict[str, Any]:
    """Cross-validation and (when lines name two or more sources) leave-one-source-out of the category part."""
    from server.analysis.validation import cross_validate, leave_one_source_out

    if encoder:
        from server.analysis.classifier import validation_fitter

        fitter = validation_fitter([item.prompt for item in items])
    else:
        fitter = _hashed_fitter(epochs)
    result = {"cross_validation": cross_validate(items, fitter)}
    try:
        result["leave_one_source_out"] = leave_one_source_out(items, fitter)
    except ValueError as exc:
        result["leave_one_source_out"] = {"skipped": str(exc)}
    return result


def _hashed_fitter(epochs: int) -> Any:
    from server.analysis.learned import train
    from server.analysis.metrics import CategoryItem
    from server.analysis.vectorize import vectorize

    def fit(prompts: Any, labels: Any) -> Any:
        model = train([CategoryItem(str(i), p, c) for i, (p, c) in enumerate(zip(prompts, labels, strict=True))],
                      [], epochs=epochs)  # fmt: skip
        return lambda test: [model.category(vectorize(p))[0].value for p in test]

    return fit


def print_validation(validation: dict[str, Any]) -> None:
    for name, title in (("cross_validation", "5-fold cross-validation"),
                        ("leave_one_source_out", "leave-one-source-out")):  # fmt: skip
        m = validation[name]
        if "skipped" in m:
            print(f"  {title}: skipped ({m['skipped']})")
            continue
        recalls = ", ".join(f"{k} {v['recall']:.2f}" for k, v in m["per_category"].items())
        print(f"  {title}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}; recall: {recalls}")
        if "per_source" in m:
            print("    per source: " + ", ".join(f"{k} {v:.2f}" for k, v in m["per_source"].items()))


def _train_strong_need(args: argparse.Namespace, pairs: list[Any], data_dir: Path) -> int:
    import time as clock

    from server.analysis.strong_need import SHIPPED, held_out_report, save, train

    started = clock.perf_counter()
    model = train(pairs)
    path = args.out or data_dir / SHIPPED
    try:
        model = save(model, path)
    except OSError as exc:
        raise RouterError(f"cannot write the strong-need model to {path}: {reason(exc)}; pass --out PATH") from None
    seconds = round(clock.perf_counter() - started, 2)
    report = held_out_report(pairs)
    summary = {
        "path": str(path), "version": model.version, "bytes": path.stat().st_size, "seconds": seconds,
        "pair_rows": len(pairs), "prior": model.prior, "thresholds": model.thresholds,
        "calibration": model.info.get("calibration", {}), "held_out": report,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"trained strong_need on {len(pairs)} outcome lines in {seconds} s (rules' weight {model.prior})")
    for preference, threshold in model.thresholds.items():
        share = summary["calibration"].get(preference, {}).get("strong_share")
        print(f"  {preference}: strong_score >= {threshold} goes strong ({share:.0%} of calibration prompts)")
    print(f"wrote {path} ({summary['bytes']:,} bytes, {model.version})")
    for direction, part in report.items():
        print(f"held-out halves {direction} (trained on {part['train']}):")
        for group, kinds in part["groups"].items():
            cells = ", ".join(f"{kind} {m['apgr']:.3f}" for kind, m in kinds.items() if m.get("apgr") is not None)
            print(f"  {group:8} n={kinds['router']['n']:<5} APGR {cells}")
    return 0


def _train_tool_need(args: argparse.Namespace, data_dir: Path) -> int:
    import time as clock

    from server.analysis.tool_need_model import SHIPPED, read_items, save, train

    started = clock.perf_counter()
    items = read_items(args.input, exclude=args.exclude)
    model = train(items)
    path = args.out or data_dir / SHIPPED
    try:
        model = save(model, path)
    except OSError as exc:
        raise RouterError(f"cannot write the tool-need model to {path}: {reason(exc)}; pass --out PATH") from None
    summary = {
        "path": str(path), "version": model.version, "bytes": path.stat().st_size,
        "seconds": round(clock.perf_counter() - started, 2), "prompts": len(items),
        "need_a_tool": model.info["need_a_tool"], "thresholds": model.thresholds,
        "out_of_fold": model.info["out_of_fold"],
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"trained tool_need on {len(items)} prompts ({summary['need_a_tool']} need a tool) in {summary['seconds']} s")
    for kind, m in summary["out_of_fold"].items():
        print(f"  {kind:7} p >= {m['threshold']:.2f} (or a rule): out-of-fold precision {m['precision']:.3f} "
              f"recall {m['recall']:.3f}")  # fmt: skip
    print(f"wrote {path} ({summary['bytes']:,} bytes, {model.version})")
    return 0


def _open_input(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise RouterError(f"cannot read {path}: {exc.strerror}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) or type(exc).__name__


def _analysis_row(item_id: Any, analysis: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "category": analysis.category.value,
        "complexity": analysis.complexity,
        "strong_score": round(analysis.strong_score, 4),
        "estimated_input_tokens": analysis.estimated_input_tokens,
        "estimated_output_tokens": analysis.estimated_output_tokens,
        "requires_tools": analysis.requires_tools,
        "tool_kinds": list(analysis.tool_kinds),
        "requires_long_context": analysis.requires_long_context,
        "critical_actions": list(analysis.critical_actions),
    }


class _NoClose:
    """Context manager around stdout that does not close it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __enter__(self) -> Any:
        return self._stream

    def __exit__(self, *exc: object) -> None:
        self._stream.flush()
