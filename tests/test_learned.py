"""The learned router: training, the stored file (round trip, corruption, versions) and its use in routing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import anyio
import pytest

from server.analysis.analyzers import BuiltinAnalyzer, LearnedAnalyzer, load_analyzer
from server.analysis.learned import load, save, train
from server.analysis.metrics import CategoryItem, PairItem
from server.analysis.vectorize import vectorize
from server.domain.config import load_config
from server.domain.registry import Registry
from server.errors import LearnedModelError
from server.routing.router import Router
from server.routing.selector import Preference, RouteOptions
from tests.helpers import run_cli

ROOT = Path(__file__).parents[1]
LANGS = ["Python", "Rust", "Go", "Java", "TypeScript", "C++"]
THINGS = ["linked list", "binary tree", "hash map", "priority queue", "trie"]
MOODS = ["great", "awful", "fine", "terrible", "lovely"]


def _categories() -> list[CategoryItem]:
    items = []
    for i, (lang, thing) in enumerate((lang, thing) for lang in LANGS for thing in THINGS):
        items.append(CategoryItem(f"c{i}", f"Implement a {thing} in {lang} with insert and delete.", "complex_coding"))
        mood = MOODS[i % len(MOODS)]
        items.append(CategoryItem(f"s{i}", f"Label the sentiment of this review: the {thing} was {mood}.",
                                  "classification"))  # fmt: skip
    return items


def _pairs() -> list[PairItem]:
    """Questions about tensors need the strong model; questions about fruit do not."""
    items = []
    for i in range(60):
        if i % 2:
            items.append(PairItem(f"p{i}", f"Compute the tensor contraction of rank {i} tensors.", "t/hard", 1, 0))
        else:
            items.append(PairItem(f"p{i}", f"How many apples are in basket {i}?", "t/easy", 1, 1))
    return items


def test_training_learns_categories_and_strong_need() -> None:
    model = train(_categories(), _pairs())
    assert model.has_categories and model.has_strong
    category, probability = model.category(vectorize("Implement a skip list in Python with insert and delete."))
    assert category.value == "complex_coding" and probability > 0.5
    hard = model.strong_score(vectorize("Compute the tensor contraction of rank 99 tensors."))
    easy = model.strong_score(vectorize("How many apples are in basket 99?"))
    assert hard > easy
    assert set(model.thresholds) == {"balanced", "cheapest"}


def test_round_trip_keeps_every_prediction_and_names_the_version(tmp_path: Path) -> None:
    model = save(train(_categories(), _pairs()), tmp_path / "m.json.gz")
    again = load(tmp_path / "m.json.gz")
    assert again.version == model.version and again.version.startswith("learned-1:")
    assert again.thresholds == model.thresholds
    for text in ["Implement a trie in Go.", "Label the sentiment: lovely.", "Compute the tensor contraction."]:
        vector = vectorize(text)
        assert again.category(vector) == model.category(vector)
        assert again.strong_score(vector) == model.strong_score(vector)
    assert (tmp_path / "m.json.gz").stat().st_size < 1_000_000


def test_training_is_deterministic(tmp_path: Path) -> None:
    first = save(train(_categories(), _pairs()), tmp_path / "a.json.gz")
    second = save(train(_categories(), _pairs()), tmp_path / "b.json.gz")
    assert first.category_weights == second.category_weights and first.strong_weights == second.strong_weights


def test_nothing_to_learn_and_unknown_categories_are_clear_errors() -> None:
    with pytest.raises(LearnedModelError, match="no labelled lines"):
        train([], [])
    with pytest.raises(LearnedModelError, match="unknown categories \\['poetry'\\]"):
        train([CategoryItem("x", "a poem", "poetry")], [])


def _tamper(path: Path, change) -> None:
    document = json.loads(gzip.decompress(path.read_bytes()))
    change(document)
    path.write_bytes(gzip.compress(json.dumps(document).encode()))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"\x00garbage\xff" * 10), "corrupt \\(not gzip'd JSON\\)"),
        (lambda p: p.write_bytes(gzip.compress(b"[1, 2, 3]")), "not a model-router learned model"),
        (lambda p: _tamper(p, lambda d: d["payload"]["thresholds"].update(balanced=0.0)), "checksum mismatch"),
        (lambda p: _tamper(p, lambda d: d.update(format_version=99)), "format version 99"),
        (lambda p: p.unlink(), "no learned model at"),
    ],
    ids=["garbage", "foreign-json", "tampered", "newer-format", "missing"],
)
def test_a_damaged_model_file_is_a_clear_error(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "m.json.gz"
    save(train(_categories(), []), path)
    damage(path)
    with pytest.raises(LearnedModelError, match=message) as caught:
        load(path)
    assert "model-router train" in str(caught.value)


def _router(tmp_path: Path, model_path: Path) -> Router:
    config_file = tmp_path / "router.toml"
    config_file.write_text(f'[routing]\nanalyzer = "learned"\nlearned_model = "{model_path}"\n')
    env = {"MODEL_ROUTER_HOME": str(tmp_path / "home")}
    return Router(Registry(load_config(config_file, env=env), env, local_runtime=lambda: True))


def test_routing_with_the_learned_model_says_so_and_uses_its_thresholds(tmp_path: Path) -> None:
    model = save(train(_categories(), _pairs()), tmp_path / "m.json.gz")
    router = _router(tmp_path, tmp_path / "m.json.gz")
    assert isinstance(router.analyzer, LearnedAnalyzer) and router.analyzer_version.split("+")[0] == model.version
    # The decision log names every model that answered: with the encoder, the tool-need model too.
    tools = router.analyzer.tool_need
    assert router.analyzer_version == model.version + (f"+{tools.version}" if tools else "")
    result = anyio.run(router.route, "Implement a deque in Rust with insert and delete.", RouteOptions())
    assert result.analyzer == "learned" and result.category == "complex_coding"
    assert result.reasons[0].startswith(f"learned model {model.version}: category complex_coding")
    assert result.threshold == model.thresholds["balanced"]
    cheap = anyio.run(router.route, "How many apples are in basket 7?", RouteOptions(preference=Preference.CHEAPEST))
    assert cheap.threshold == model.thresholds["cheapest"]


def test_a_corrupt_model_falls_back_to_the_builtin_analyser_and_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "m.json.gz"
    bad.write_bytes(b"not a model")
    router = _router(tmp_path, bad)
    assert isinstance(router.analyzer, BuiltinAnalyzer)
    result = anyio.run(router.route, "What is the capital of France?", RouteOptions())
    assert result.analyzer == "local" and result.category == "qa_retrieval"
    assert result.reasons[0].startswith("learned analyser unusable (the learned model")
    assert "corrupt" in result.reasons[0]


def test_the_default_model_path_is_in_the_data_dir(tmp_path: Path) -> None:
    env = {"MODEL_ROUTER_HOME": str(tmp_path)}
    config_file = tmp_path / "router.toml"
    config_file.write_text('[routing]\nanalyzer = "learned"\n')
    config = load_config(config_file, env=env)
    assert isinstance(load_analyzer(config), BuiltinAnalyzer)  # nothing trained yet
    save(train(_categories(), []), tmp_path / "learned_router.json.gz")
    assert isinstance(load_analyzer(config), LearnedAnalyzer)


def test_train_then_eval_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [{"id": c.id, "prompt": c.prompt, "category": c.category} for c in _categories()]
    rows += [{"id": p.id, "prompt": p.prompt, "source": p.source, "scores": {"strong": p.strong, "weak": p.weak}}
             for p in _pairs()]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trained = run_cli("train", str(data), "--json", home=tmp_path)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["path"] == str(tmp_path / "learned_router.json.gz")
    assert (summary["category_rows"], summary["pair_rows"]) == (60, 60)
    assert Path(summary["path"]).is_file()
    evaluated = run_cli("eval", str(data), "--json", "--analyzer", "learned", home=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["analyzer"].split("+")[0] == summary["version"]  # then the tool-need model's, if installed
    assert result["categories"]["accuracy"] == 1.0
    measured = result["pairs"]["analyzer"]["t"]
    assert measured["apgr"] == pytest.approx(0.75, abs=0.01)  # the separable data is routed perfectly
    assert result["pairs"]["random"]["t"]["apgr"] < measured["apgr"]


@pytest.mark.anyio
async def test_route_task_and_complete_say_they_used_the_learned_model(tmp_path: Path) -> None:
    import os

    from mcp.client import Client

    from server.execution.runtime import open_runtime
    from server.mcp.app import build_server
    from server.tools.toolbox import NoTools
    from tests.conftest import ALL_KEYS
    from tests.fakes import providers as f

    model = save(train(_categories(), _pairs()), tmp_path / "m.json.gz")
    with f.FakeProviders() as fake:
        extra = f'[routing]\nanalyzer = "learned"\nlearned_model = "{tmp_path / "m.json.gz"}"\n'
        env = {**os.environ, **ALL_KEYS}
        config = load_config(f.write_config(tmp_path, fake, extra=extra), env=env)
        router = Router(Registry(config, env, local_runtime=lambda: False))
        server = build_server(router, env=env, runtime_factory=lambda r: open_runtime(r, env, toolbox=NoTools()))
        task = "Implement a ring buffer in Go with insert and delete."
        async with Client(server) as client:
            routed = (await client.call_tool("route_task", {"task": task})).structured_content
            completed = (await client.call_tool("complete", {"task": task, "enable_tools": False})).structured_content
    for route in (routed, completed["route"]):
        assert route["analyzer"] == "learned" and route["category"] == "complex_coding"
        assert route["reasons"][0].startswith(f"learned model {model.version}")
    assert completed["response"] == "ok"
