"""The embedding strong-need scorer: the shipped model, training through the CLI, the held-out split, its use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from server.analysis import embedding
from server.analysis.analyzers import load_analyzer
from server.analysis.metrics import PairItem
from server.analysis.strong_need import SHIPPED, load, load_shipped, split_halves
from server.domain.config import load_config
from server.errors import LearnedModelError
from tests.helpers import console_script, run_cli

SHIPPED_SCORER = Path(__file__).resolve().parents[1] / "server" / "data" / SHIPPED
PAIRS_DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "pairs_dev.jsonl"

pytestmark = pytest.mark.skipif(not embedding.available(), reason=f"the sentence encoder: {embedding.INSTALL_HINT}")

HARD_MATH = (
    "Let S be the set of positive integers n such that n^2 + 12n - 2007 is a perfect square. Find the remainder "
    "when the sum of all elements of S is divided by 1000. Justify every step: factor the expression, bound the "
    "divisors, and check each candidate pair."
)


def test_the_shipped_scorer_loads_with_calibrated_thresholds() -> None:
    model = load_shipped()
    assert model.version.startswith("strong-need-1:")
    assert set(model.thresholds) == {"balanced", "cheapest"}
    # Cheapest sends fewer prompts to the strong model than balanced does.
    assert 0.0 < model.thresholds["balanced"] < model.thresholds["cheapest"] < 1.0
    assert model.info["pair_rows"] > 8000


def test_a_competition_problem_needs_the_strong_model_more_than_a_sum() -> None:
    model = load_shipped()
    hard, easy = model.score(HARD_MATH), model.score("What is 2+2?")
    assert 0.0 <= easy < hard <= 1.0


def test_the_default_analyser_takes_strong_score_and_thresholds_from_the_scorer(tmp_path: Path) -> None:
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}))
    shipped = load_shipped()
    assert f"+{shipped.version}" in analyzer.version  # the shipped learned analyser + the scorer (+ tool need)
    assert analyzer.thresholds == shipped.thresholds
    analysis = analyzer.analyze_now(HARD_MATH)  # type: ignore[attr-defined]
    assert analysis.strong_score == pytest.approx(shipped.score(HARD_MATH), abs=1e-4)
    assert any(shipped.version in r for r in analysis.reasons)


def test_an_unreadable_trained_scorer_leaves_the_rules_strong_score(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "strong_need.npz").write_bytes(b"not a zip archive")
    with pytest.raises(LearnedModelError, match="corrupt or incomplete; run `model-router train"):
        load(tmp_path / "strong_need.npz")
    analyzer = load_analyzer(load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}))
    assert "strong-need" not in analyzer.version
    assert analyzer.thresholds == {}
    assert "strong_score comes from the rules" in caplog.text


def test_a_scorer_file_with_a_header_missing_its_prior_is_refused_clearly(tmp_path: Path) -> None:
    shipped = load_shipped()
    path = tmp_path / "strong_need.npz"
    with np.load(SHIPPED_SCORER, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    header = json.loads(str(arrays["header"]))
    del header["prior"]
    np.savez(path, **{**arrays, "header": np.array(json.dumps(header))})
    with pytest.raises(LearnedModelError, match="incomplete or mis-shaped; run `model-router train"):
        load(path)
    assert shipped.thresholds  # the shipped file itself is untouched and fine


@pytest.mark.skipif(not PAIRS_DEV.is_file(), reason=f"{PAIRS_DEV} is absent (the public eval data is not shipped)")
def test_training_on_the_public_pairs_reproduces_the_shipped_scorer_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "again.npz"
    done = run_cli("train", str(PAIRS_DEV), "--strong-need", "--out", str(out), home=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SHIPPED_SCORER.read_bytes()


def _pairs() -> list[dict[str, object]]:
    """Proofs about groups need the strong model; greetings do not. Subjects alternate so both halves have both."""
    rows: list[dict[str, object]] = []
    for i in range(40):
        rows.append({"id": f"h{i}", "source": f"algebra/s{i % 4}", "scores": {"strong": 1, "weak": 0},
                     "prompt": f"Prove that every group of order {i + 2} squared with a normal Sylow subgroup "
                               "is solvable, computing each composition factor."})  # fmt: skip
        rows.append({"id": f"e{i}", "source": f"chat/s{i % 4}", "scores": {"strong": 1, "weak": 1},
                     "prompt": f"Say hello to my friend number {i}."})  # fmt: skip
    return rows


def test_training_through_the_cli_writes_a_scorer_the_analyser_then_uses(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _pairs()))
    trained = run_cli("train", str(data), "--strong-need", "--json", home=tmp_path, timeout=300)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["path"] == str(tmp_path / "strong_need.npz")
    assert summary["pair_rows"] == 80
    # The held-out evaluation trains on one half of the subjects and ranks the other half's prompts.
    for direction in ("A->B", "B->A"):
        algebra = summary["held_out"][direction]["groups"]["algebra"]
        assert algebra["router"]["n"] == 20
    model = load(Path(summary["path"]))
    assert model.version == summary["version"]
    assert model.score("Prove that every group of order 121 is abelian.") > model.score("Say hello to Ann.")
    evaluated = run_cli("eval", str(data), "--json", "--analyzer", "local", home=tmp_path, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert f"+{summary['version']}" in result["analyzer"]
    assert result["pairs"]["analyzer"]["algebra"]["n"] == 40


def test_training_without_outcome_lines_says_what_is_needed(tmp_path: Path) -> None:
    data = tmp_path / "labels.jsonl"
    data.write_text(json.dumps({"id": "1", "prompt": "Sort these numbers.", "category": "classification"}) + "\n")
    trained = run_cli("train", str(data), "--strong-need", home=tmp_path)
    assert trained.returncode != 0
    assert "0 outcome lines: need at least 20 with scores {strong, weak}" in trained.stderr
    assert not (tmp_path / "strong_need.npz").exists()


def test_the_held_out_halves_share_no_subject_and_alternate_plain_rows() -> None:
    pairs = [PairItem(f"m{i}", "q", f"mmlu/subject{i % 7}", 1, 0) for i in range(70)]
    pairs += [PairItem(f"g{i}", "q", "gsm8k", 1, 0) for i in range(11)]
    a, b = split_halves(pairs)
    subjects_a = {p.source for p in a if p.group == "mmlu"}
    subjects_b = {p.source for p in b if p.group == "mmlu"}
    assert subjects_a and subjects_b and not subjects_a & subjects_b
    assert len(subjects_a | subjects_b) == 7
    assert [p.id for p in a if p.group == "gsm8k"] == [f"g{i}" for i in range(0, 11, 2)]
    assert [p.id for p in b if p.group == "gsm8k"] == [f"g{i}" for i in range(1, 11, 2)]
    assert sorted(p.id for p in a + b) == sorted(p.id for p in pairs)


@pytest.mark.slow
@pytest.mark.anyio
async def test_route_task_over_stdio_uses_the_scorer_and_its_thresholds(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=console_script(),
        args=["serve"],
        env={"MODEL_ROUTER_HOME": str(tmp_path), "ANTHROPIC_API_KEY": "test-key-123456"},
    )
    shipped = load_shipped()
    word_problem = (
        "A train leaves at 3pm going 60 mph; another leaves the same station at 4pm going 80 mph on the same "
        "track. When does the second train catch up, and how far from the station are they then?"
    )
    async with Client(params, mode="legacy") as client:
        easy = (await client.call_tool("route_task", {"task": "What is 2+2?"})).structured_content
        hard = (await client.call_tool("route_task", {"task": word_problem})).structured_content
    for route in (easy, hard):
        assert any(f"from {shipped.version}" in reason for reason in route["reasons"])
        assert route["threshold"] == shipped.thresholds["balanced"]
    assert easy["strong_score"] < shipped.thresholds["balanced"] <= hard["strong_score"]
    assert easy["situation"] == "cost_optimized" and hard["situation"] != "cost_optimized"
