"""The learned tool-need model: the rules' kinds, plus the kinds a small classifier is confident of.

The rules (tool_need.py) say an explicit request well but miss questions with no cue word — "Which
appliance did I banish to the pantry?" asks stored memory, "What are the latest movie releases?" a search.
Per kind (code, search, fetch, memory) a one-vs-rest logistic regression reads the sentence embedding of the
instruction (server/analysis/embedding.py; pasted content is left out as the rules leave it out) and the
rules' cue features (`tool_need.cue_features`: which kinds fired, the raw cues, person, question form,
length, whether the user states their own situation or asks about something said before). A kind is needed
when its rule fired OR its probability reaches the kind's threshold. Thresholds are chosen on the training
data only, by 5-fold cross-validation inside it: the lowest on a grid whose out-of-fold precision for that
kind (rules OR model) stays at or above `PRECISION_TARGET`.

Training needs scikit-learn (`[learned]`); predicting needs only numpy and the encoder. The stored model is
gzipped JSON of rounded numbers (no pickle, no clock), so `model-router train … --tool-need` reproduces the
shipped file byte for byte from the same data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from server.analysis import embedding
from server.analysis.features import instruction_text
from server.analysis.tool_need import CUE_FEATURES, ToolNeed, cue_features, predict
from server.domain.tasks import TOOL_KINDS
from server.errors import LearnedModelError

FORMAT = "model-router/tool-need"
FORMAT_VERSION = 1
SHIPPED = "tool_need.json.gz"
PRECISION_TARGET = 0.9  # per kind, out of fold: a tool offered wrongly costs a call, one missed costs the answer
THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))  # 0.30 … 0.95
FOLDS = 5
_C = 1.0  # inverse L2 strength
_DECIMALS = 6  # stored weights are rounded so a retrain on another machine writes the same bytes
_MIN_POSITIVES = 3  # per kind, to fit it at all


@dataclass(frozen=True, slots=True)
class ToolNeedItem:
    """One training prompt and the tool kinds it needs (empty: none)."""

    prompt: str
    tools: frozenset[str]


@dataclass(frozen=True)
class ToolNeedModel:
    """Per-kind weights over [embedding, cue features] (last entry the intercept) and per-kind thresholds.
    A kind without weights (too few examples to fit) comes from the rules alone."""

    weights: dict[str, np.ndarray]
    thresholds: dict[str, float]
    info: dict[str, Any]

    @property
    def version(self) -> str:
        return f"tool-need-{FORMAT_VERSION}:{self.info.get('digest', 'unsaved')[:12]}"

    def probabilities(self, tasks: Sequence[str], needs: Sequence[ToolNeed] | None = None) -> dict[str, np.ndarray]:
        """Per kind, each task's probability of needing it (the model alone; `needs`: the rules' predictions
        if already made)."""
        rows = features(tasks, needs)
        return {kind: _sigmoid(rows @ w[:-1] + w[-1]) for kind, w in self.weights.items()}

    def predict(self, task: str) -> ToolNeed:
        """The rules' kinds and reasons, plus each kind the model reaches its threshold for, with its p."""
        rules = predict(task)
        reasons = dict(zip(rules.kinds, rules.reasons, strict=True))
        for kind, p in self.probabilities([task], [rules]).items():
            if kind not in reasons and p[0] >= self.thresholds[kind]:
                reasons[kind] = f"tool need {kind}: {self.version} p={p[0]:.2f} (embedding + cue features)"
        kinds = tuple(kind for kind in TOOL_KINDS if kind in reasons)
        return ToolNeed(kinds, tuple(reasons[kind] for kind in kinds))


def features(tasks: Sequence[str], needs: Sequence[ToolNeed] | None = None) -> np.ndarray:
    """One row per task: the instruction's sentence embedding, then its cue features."""
    vectors = embedding.embed([instruction_text(t) or t for t in tasks]).astype(np.float64)
    rules = needs or [predict(t) for t in tasks]
    cues = np.array([cue_features(t, n) for t, n in zip(tasks, rules, strict=True)], dtype=np.float64)
    cues = cues.reshape(len(tasks), len(CUE_FEATURES))
    return np.hstack([vectors, cues])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


# ── training ─────────────────────────────────────────────────────────────────


def train(items: Sequence[ToolNeedItem]) -> ToolNeedModel:
    """Fit each kind on all `items`; thresholds from out-of-fold probabilities within them."""
    if sum(bool(i.tools) for i in items) < 10 or sum(not i.tools for i in items) < 10:
        raise LearnedModelError(
            f"{len(items)} prompts: need at least 10 that need a tool and 10 that need none ({{prompt, tools}} lines)"
        )
    rows = features([i.prompt for i in items])
    fold = np.array([zlib.crc32(i.prompt.encode()) % FOLDS for i in items])
    weights: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}
    out_of_fold: dict[str, dict[str, float]] = {}
    for kind in TOOL_KINDS:
        truth = np.array([kind in i.tools for i in items])
        if truth.sum() < _MIN_POSITIVES:
            continue
        scores = np.zeros(len(items))
        for k in range(FOLDS):
            test = fold == k
            inner = _fit(rows[~test], truth[~test])
            scores[test] = _sigmoid(rows[test] @ inner[:-1] + inner[-1])
        rule = rows[:, CUE_FEATURES.index(f"rule_{kind}") + embedding.DIMENSIONS] > 0
        thresholds[kind], out_of_fold[kind] = choose_threshold(scores, rule, truth)
        weights[kind] = _fit(rows, truth)
    info = {"prompts": len(items), "need_a_tool": sum(bool(i.tools) for i in items), "out_of_fold": out_of_fold,
            "precision_target": PRECISION_TARGET}  # fmt: skip
    return ToolNeedModel(weights, thresholds, info)


def _fit(rows: np.ndarray, truth: np.ndarray) -> np.ndarray:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise LearnedModelError(f"training needs scikit-learn: {embedding.INSTALL_HINT}") from exc
    if truth.all() or not truth.any():  # one class in this fold: a constant model
        return np.append(np.zeros(rows.shape[1]), 35.0 if truth.any() else -35.0)
    fitted = LogisticRegression(C=_C, max_iter=5000, class_weight="balanced").fit(rows, truth)
    return np.round(np.append(fitted.coef_[0], fitted.intercept_[0]), _DECIMALS)


def choose_threshold(scores: np.ndarray, rule: np.ndarray, truth: np.ndarray) -> tuple[float, dict[str, float]]:
    """The lowest threshold on the grid at which (rule OR score >= threshold) keeps `PRECISION_TARGET`, and
    its precision and recall; the highest on the grid when none does (the rules then add nearly all)."""
    best = THRESHOLDS[-1]
    for threshold in THRESHOLDS:
        chosen = rule | (scores >= threshold)
        if chosen.any() and (chosen & truth).sum() / chosen.sum() >= PRECISION_TARGET:
            best = threshold
            break
    chosen = rule | (scores >= best)
    hits = int((chosen & truth).sum())
    return best, {
        "threshold": best,
        "precision": round(hits / max(int(chosen.sum()), 1), 4),
        "recall": round(hits / max(int(truth.sum()), 1), 4),
    }


def read_items(paths: Iterable[Path], exclude: Iterable[Path] = ()) -> list[ToolNeedItem]:
    """Training prompts from JSONL files: `{prompt, tools}` lines as labelled; `{prompt, category}` lines
    (an eval file such as dev.jsonl) need no tool unless their category is agentic_tool_use, which are
    skipped (their kinds are not labelled). A prompt seen twice is kept once — a `tools` label wins over one
    read from a category, and two different `tools` labels are an error; a prompt of any `exclude` file
    (a held-out set, which an eval file may share prompts with) is not read at all."""
    held_out = {item.prompt for item in read_items(exclude)} if exclude else set()
    items: dict[str, ToolNeedItem] = {}
    labelled_at: dict[str, str] = {}  # prompt -> where its `tools` label was read
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise LearnedModelError(f"cannot read {path}: it is not UTF-8 text") from None
        except OSError as exc:
            raise LearnedModelError(f"cannot read {path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
                prompt, labelled = row["prompt"], "tools" in row
                if not labelled and row["category"] == "agentic_tool_use":
                    continue
                tools = row["tools"] if labelled else []
                if not isinstance(tools, list):
                    raise TypeError
                kinds = frozenset(tools)
            except (ValueError, KeyError, TypeError):
                expected = "expected {prompt, tools: [kinds]} or {prompt, category}"
                raise LearnedModelError(f"{where}: {expected}") from None
            if not isinstance(prompt, str) or not prompt.strip() or not kinds <= set(TOOL_KINDS):
                raise LearnedModelError(f"{where}: prompt must be text and tools among {list(TOOL_KINDS)}")
            if prompt in held_out:
                continue
            if labelled and prompt in labelled_at and items[prompt].tools != kinds:
                raise LearnedModelError(f"{where}: the same prompt is labelled differently at {labelled_at[prompt]}")
            if labelled and prompt not in labelled_at:
                labelled_at[prompt] = where
                items[prompt] = ToolNeedItem(prompt, kinds)
            else:
                items.setdefault(prompt, ToolNeedItem(prompt, kinds))
    return list(items.values())


# ── storage ──────────────────────────────────────────────────────────────────


def save(model: ToolNeedModel, path: Path) -> ToolNeedModel:
    """Write atomically (gzip without a timestamp); returns the model with its digest filled in."""
    payload = _payload(model)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(gzip.compress(json.dumps(payload, sort_keys=True).encode(), mtime=0))
    partial.replace(path)
    return ToolNeedModel(model.weights, model.thresholds, {**model.info, "digest": digest})


def _payload(model: ToolNeedModel) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "dimensions": embedding.DIMENSIONS,
        "cue_features": list(CUE_FEATURES), "thresholds": model.thresholds,
        "weights": {kind: [float(x) for x in w] for kind, w in model.weights.items()},
        "info": {k: v for k, v in model.info.items() if k != "digest"},
    }  # fmt: skip


def load(path: Path) -> ToolNeedModel:
    """Read a stored model; every problem is a LearnedModelError naming the file and the fix."""
    retrain = f"run `model-router train FILE.jsonl … --tool-need --out {path}` to write a new one"
    try:
        payload = json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        raise LearnedModelError(f"no tool-need model at {path}; {retrain}") from None
    except (ValueError, EOFError, gzip.BadGzipFile):  # BadGzipFile is an OSError: first
        raise LearnedModelError(f"the tool-need model {path} is corrupt (not gzip'd JSON); {retrain}") from None
    except OSError as exc:
        raise LearnedModelError(f"cannot read the tool-need model {path} ({exc.strerror or exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LearnedModelError(f"{path} is not a model-router tool-need model; {retrain}")
    width = embedding.DIMENSIONS + len(CUE_FEATURES) + 1
    try:
        weights = {str(k): np.array(v, dtype=np.float64) for k, v in payload["weights"].items()}
        thresholds = {str(k): float(v) for k, v in payload["thresholds"].items()}
        info = dict(payload["info"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LearnedModelError(f"the tool-need model {path} is incomplete or mis-shaped; {retrain}") from None
    if (
        payload.get("format_version") != FORMAT_VERSION
        or payload.get("cue_features") != list(CUE_FEATURES)
        or payload.get("dimensions") != embedding.DIMENSIONS
        or any(w.shape != (width,) for w in weights.values())
        or set(weights) - set(TOOL_KINDS)
        or set(thresholds) != set(weights)
    ):
        raise LearnedModelError(f"the tool-need model {path} was built with other features; {retrain}")
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return ToolNeedModel(weights, thresholds, {**info, "digest": digest})


def load_shipped() -> ToolNeedModel:
    """The model that ships in the package (tests/data/README.md says what it was trained on)."""
    with resources.as_file(resources.files("server") / "data" / SHIPPED) as path:
        return load(path)
