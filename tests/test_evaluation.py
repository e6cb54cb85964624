"""Evaluation measures on tiny hand-computed sets, and `model-router eval` reading labelled files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.analysis.metrics import category_metrics, gap_metrics, gap_metrics_by_group, parse_labelled, threshold_for
from server.errors import EvalDataError
from tests.helpers import run_cli

# n = 4: weak mean 0.25, strong mean 0.75, gap 0.5. Only a and d need the strong model.
TINY = [
    {"id": "a", "prompt": "alpha", "source": "quiz/x", "scores": {"strong": 1, "weak": 0}},
    {"id": "b", "prompt": "bravo", "source": "quiz/y", "scores": {"strong": 1, "weak": 1}},
    {"id": "c", "prompt": "charlie", "source": "quiz/x", "scores": {"strong": 0, "weak": 0}},
    {"id": "d", "prompt": "delta", "source": "quiz/y", "scores": {"strong": 1, "weak": 0}},
]


def _pairs():
    return parse_labelled([json.dumps(item) for item in TINY]).pairs


def test_a_perfect_router_recovers_the_gap_with_the_fewest_strong_calls() -> None:
    # order a, d, b, c: PGR 0, .5, 1, 1, 1 -> trapezoids .25 + .75 + 1 + 1 = 3, / 4
    m = gap_metrics(_pairs(), [0.9, 0.2, 0.1, 0.8])
    assert (m["weak"], m["strong"]) == (0.25, 0.75)
    assert m["apgr"] == pytest.approx(0.75)
    assert (m["cpt50"], m["cpt80"]) == (0.25, 0.5)


def test_a_reversed_router_scores_below_random() -> None:
    # order c, b, d, a: PGR 0, 0, 0, .5, 1 -> trapezoids 0 + 0 + .25 + .75 = 1, / 4
    m = gap_metrics(_pairs(), [1 - s for s in (0.9, 0.2, 0.1, 0.8)])  # the perfect scores, reversed
    assert m["apgr"] == pytest.approx(0.25)
    assert (m["cpt50"], m["cpt80"]) == (0.75, 1.0)


def test_groups_are_source_prefixes_plus_all() -> None:
    scores = {"a": 0.9, "b": 0.2, "c": 0.1, "d": 0.8}
    result = gap_metrics_by_group(_pairs(), scores)
    assert set(result) == {"quiz"}  # one prefix: no separate "all"
    assert result["quiz"]["apgr"] == pytest.approx(0.75)


def test_threshold_for_a_quality_target_and_its_strong_share() -> None:
    threshold, share = threshold_for(_pairs(), [0.9, 0.2, 0.1, 0.8], 0.8)
    assert (threshold, share) == (0.8, 0.5)  # route a and d strong: the whole gap, half the calls


def test_category_metrics_by_hand() -> None:
    m = category_metrics(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    assert m["accuracy"] == 0.75
    assert m["per_category"]["x"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_category"]["y"]["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["confusion"] == {"x": {"x": 1, "y": 1}, "y": {"y": 2}}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "<input>:1: not JSON"),
        ('{"id": 1, "prompt": ""}', "non-empty string 'prompt'"),
        ('{"id": 1, "prompt": "hi"}', "needs 'category'"),
        ('{"id": 1, "prompt": "hi", "scores": {"strong": "yes", "weak": 0}}', "must be numbers"),
    ],
)
def test_bad_lines_name_the_line_and_the_fix(line: str, message: str) -> None:
    with pytest.raises(EvalDataError, match=message):
        parse_labelled([line])


def test_eval_cli_reports_categories_and_pairs_with_baselines(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    lines = [json.dumps(item) for item in TINY] + [
        json.dumps({"id": "q1", "prompt": "What is the capital of France?", "category": "qa_retrieval"}),
        json.dumps({"id": "q2", "prompt": "Write a Python function that reverses a list.",
                    "category": "complex_coding"}),
    ]  # fmt: skip
    data.write_text("\n".join(lines) + "\n")
    done = run_cli("eval", str(data), "--analyzer", "local", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["analyzer"].startswith("local-")
    assert result["categories"]["accuracy"] == 1.0 and result["categories"]["n"] == 2
    assert set(result["pairs"]) == {"analyzer", "random", "length"}
    assert result["pairs"]["analyzer"]["quiz"]["n"] == 4
    text = run_cli("eval", str(data))
    assert "APGR" in text.stdout and "random" in text.stdout and "length" in text.stdout


def test_eval_cli_on_a_bad_file_says_which_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": 1, "prompt": "fine", "category": "qa_retrieval"}\n{"id": 2}\n')
    done = run_cli("eval", str(data))
    assert done.returncode == 1
    assert f"{data}:2" in done.stderr and "prompt" in done.stderr and "Traceback" not in done.stderr
