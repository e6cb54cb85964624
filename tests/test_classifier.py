"""The shipped learned analyser (sentence embeddings + the rules' signals): used by default, falls back to the
rules without its encoder, reproducible from the public dev set, and measured the same way on a user's data."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from server.analysis.analyzers import SHIPPED_MODEL, BuiltinAnalyzer, LearnedAnalyzer, load_analyzer
from server.analysis.learned import load
from server.domain.config import Config, load_config
from tests.helpers import run_cli

ROOT = Path(__file__).parents[1]
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"

# None of these is in dev.jsonl.
CODING = "Write a Python function that merges overlapping intervals in a list, with unit tests for edge cases."
TOOL_USE = (
    "You have access to these tools: get_weather(city: str), book_table(restaurant: str, time: str). "
    "Check the weather in Lisbon tomorrow and, if it is dry, book a table at Cervejaria Ramiro for 8pm."
)
DOCUMENT = "Summarise the key decisions in the meeting minutes below in five bullet points.\n\n" + "\n".join(
    f"Item {i}: the committee reviewed the budget line for depot {i}, heard the treasurer's report on "
    f"maintenance costs, and agreed to revisit the staffing plan at the next quarterly session."
    for i in range(120)
)


def _config(tmp_path: Path, routing: str = "") -> Config:
    path = tmp_path / "router.toml"
    path.write_text(f"[routing]\n{routing}\n")
    return load_config(path, env={"MODEL_ROUTER_HOME": str(tmp_path)})


def test_the_shipped_learned_analyser_is_the_default_and_classifies_unseen_prompts(tmp_path: Path) -> None:
    analyzer = load_analyzer(_config(tmp_path))
    assert isinstance(analyzer, LearnedAnalyzer)
    for task, category in ((CODING, "complex_coding"), (TOOL_USE, "agentic_tool_use"), (DOCUMENT, "long_document")):
        analysis = anyio.run(analyzer.analyze, task)
        assert (analysis.category.value, analysis.analyzer) == (category, "learned"), analysis.reasons
        assert analysis.reasons[0].startswith(f"shipped learned model {analyzer.model.version}: category {category}")
    # Tool need is its own prediction: the host's tools named in TOOL_USE are not ours to offer.
    assert anyio.run(analyzer.analyze, TOOL_USE).tools_offered == ()
    computing = anyio.run(analyzer.analyze, "Use Python to compute 6*7*1000+1 and tell me the result.")
    assert computing.requires_tools and "execute_python" in computing.tools_offered


def test_without_the_encoder_the_rules_answer_and_say_how_to_get_the_learned_analyser(tmp_path: Path) -> None:
    analyzer = load_analyzer(_config(tmp_path), encoder_available=lambda: False)
    assert isinstance(analyzer, BuiltinAnalyzer)
    analysis = anyio.run(analyzer.analyze, CODING)
    assert analysis.analyzer == "local" and analysis.category.value == "complex_coding"
    assert "mcp-model-router[learned]" in analysis.reasons[0]


def test_local_forces_the_rules_even_with_the_encoder_installed(tmp_path: Path) -> None:
    analyzer = load_analyzer(_config(tmp_path, 'analyzer = "local"'))
    assert isinstance(analyzer, BuiltinAnalyzer)
    assert anyio.run(analyzer.analyze, CODING).analyzer == "local"


def test_doctor_says_which_analyser_is_in_use(tmp_path: Path) -> None:
    done = run_cli("doctor", "--json", home=tmp_path)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["analyzer"]["status"] == "ok"
    assert checks["analyzer"]["detail"].startswith(f"shipped learned analyser {load(SHIPPED_MODEL).version}")


def test_the_shipped_strong_need_scorer_gives_the_learned_analyser_its_strong_score() -> None:
    from server.analysis.strong_need import load_shipped

    scorer = load_shipped()
    analyzer = LearnedAnalyzer(load(SHIPPED_MODEL), scorer)
    analysis = analyzer.analyze_now(CODING)
    assert (
        analysis.strong_score == pytest.approx(scorer.score(CODING), abs=1e-4)
        and analysis.category.value == "complex_coding"
    )
    assert f"from {scorer.version}" in analysis.reasons[0] and analyzer.thresholds == scorer.thresholds


@pytest.mark.skipif(not DEV.is_file(), reason=f"{DEV} is absent (the public eval data is not shipped)")
def test_training_on_the_public_dev_set_reproduces_the_shipped_model(tmp_path: Path) -> None:
    out = tmp_path / "again.json.gz"
    done = run_cli("train", str(DEV), "--out", str(out), "--no-validate", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SHIPPED_MODEL.read_bytes()


def test_train_prints_cross_validation_and_leave_one_source_out_then_eval_uses_the_model(tmp_path: Path) -> None:
    rows = []
    for source, words in (("shop", ["shoes", "lamp", "kettle"]), ("cafe", ["coffee", "scone", "soup"])):
        for i, word in enumerate(words * 4):
            rows.append(
                {
                    "id": f"{source}-c{i}",
                    "source": f"{source}/x",
                    "category": "complex_coding",
                    "prompt": f"Write a Python class that tracks the {word} stock, with unit tests ({i}).",
                }
            )
            rows.append(
                {
                    "id": f"{source}-s{i}",
                    "source": f"{source}/y",
                    "category": "classification",
                    "prompt": f"Is this review of the {word} positive or negative? 'It was fine.' ({i})",
                }
            )
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = tmp_path / "mine.json.gz"
    trained = run_cli("train", str(data), "--out", str(model), "--json", home=tmp_path)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["category_features"] == "embedding+rules"
    validation = summary["validation"]
    assert validation["cross_validation"]["n"] == len(rows)
    assert set(validation["leave_one_source_out"]["per_source"]) == {"shop", "cafe"}
    assert validation["leave_one_source_out"]["accuracy"] >= 0.9
    text = run_cli("train", str(data), "--out", str(model), home=tmp_path).stdout
    assert "5-fold cross-validation: accuracy" in text and "leave-one-source-out: accuracy" in text
    evaluated = run_cli("eval", str(data), "--model", str(model), "--json", home=tmp_path)
    result = json.loads(evaluated.stdout)
    assert result["analyzer"].startswith(summary["version"]) and result["categories"]["accuracy"] >= 0.9
    assert set(result["categories"]["per_source"]) == {"shop", "cafe"}


def test_without_the_encoder_train_validates_the_hashed_classifier_the_same_way() -> None:
    from server.analysis.metrics import CategoryItem
    from server.cli.analysis import validate

    items = [
        CategoryItem(f"{source}{i}", text.format(source=source, i=i), category, f"{source}/x")
        for source in ("north", "south")
        for i in range(12)
        for text, category in (
            ("Implement a {source} queue class in Python, version {i}.", "complex_coding"),
            ("Label the sentiment of this {source} review: it was lovely {i}.", "classification"),
        )
    ]
    result = validate(items, encoder=False, epochs=4)
    assert result["cross_validation"]["n"] == len(items) and result["cross_validation"]["accuracy"] >= 0.9
    assert set(result["leave_one_source_out"]["per_source"]) == {"north", "south"}
    no_sources = validate([CategoryItem(i.id, i.prompt, i.category) for i in items], encoder=False, epochs=4)
    assert "source" in no_sources["leave_one_source_out"]["skipped"]
