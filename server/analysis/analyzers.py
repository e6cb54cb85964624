"""The analysers the router can be configured with, behind one async interface.

`[routing] analyzer` picks one: "auto" (the default: the shipped learned analyser, trained on the public
dev set, when the `[learned]` extra is installed, else the rules), "local" (the built-in rules), "learned"
(a model trained by `model-router train`), or "llm:<model id>" (a model asked for a JSON verdict).
Whatever goes wrong with the learned model or the LLM, the built-in analyser answers and the reasons say why.
When the sentence encoder is installed, strong_score (and its thresholds) come from the embedding
strong-need scorer (strong_need.py) unless a trained learned model supplies its own, and tool need from the
learned tool-need model (tool_need_model.py: the rules' kinds plus the ones it is confident of).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from server.analysis import embedding
from server.analysis.learned import MODEL_FILE, LearnedModel, load
from server.analysis.local import ANALYZER_VERSION, analyze_task
from server.analysis.vectorize import vectorize
from server.domain.config import Config
from server.domain.tasks import TaskAnalysis
from server.errors import InvalidTask, LearnedModelError, reason

if TYPE_CHECKING:  # numpy comes with the [learned] extra: these modules are imported only when it is there
    from server.analysis.strong_need import StrongNeedModel
    from server.analysis.tool_need_model import ToolNeedModel

log = logging.getLogger("model_router.analysis")

# The learned analyser the package ships: `model-router train dev.jsonl --out` this file reproduces it.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "learned_categories.json.gz"


class Analyzer(Protocol):
    """Turns a task into a `TaskAnalysis`. `thresholds` (preference → strong_score) override the config's."""

    @property
    def version(self) -> str: ...

    @property
    def thresholds(self) -> Mapping[str, float]: ...

    async def analyze(self, task: str, history_tokens: int = 0) -> TaskAnalysis: ...


class BuiltinAnalyzer:
    """The hand-written rules; `notes` lead the reasons (e.g. why a configured analyser was not used).
    With a `strong_need` scorer, strong_score and the thresholds are its own; with a `tool_need` model,
    tool need is the rules' kinds plus its confident ones."""

    def __init__(
        self, notes: tuple[str, ...] = (), strong_need: StrongNeedModel | None = None,
        tool_need: ToolNeedModel | None = None,
    ) -> None:  # fmt: skip
        self.notes = notes
        self.strong_need = strong_need
        self.tool_need = tool_need

    @property
    def version(self) -> str:
        return ANALYZER_VERSION + _models(self.strong_need, self.tool_need)

    @property
    def thresholds(self) -> Mapping[str, float]:
        return self.strong_need.thresholds if self.strong_need else {}

    def analyze_now(self, task: str, history_tokens: int = 0, notes: tuple[str, ...] = ()) -> TaskAnalysis:
        strong = None
        if self.strong_need and task.strip():
            strong = self.strong_need.score(task)
            notes = (*notes, f"strong_score {strong:.2f} from {self.strong_need.version}")
        need = self.tool_need.predict(task) if self.tool_need and task.strip() else None
        return analyze_task(
            task, history_tokens=history_tokens, strong_score=strong, notes=(*self.notes, *notes), tool_need=need
        )

    async def analyze(self, task: str, history_tokens: int = 0) -> TaskAnalysis:
        return self.analyze_now(task, history_tokens)


class LearnedAnalyzer:
    """Category and/or strong_score from a trained model; the rules supply whatever it was not trained on."""

    def __init__(
        self, model: LearnedModel, strong_need: StrongNeedModel | None = None, origin: str = "",
        tool_need: ToolNeedModel | None = None,
    ) -> None:  # fmt: skip
        self.model = model
        self.tool_need = tool_need
        # A model trained with outcomes scores strong_score itself; otherwise the embedding scorer does.
        self.strong_need = None if model.has_strong else strong_need
        self.origin = origin  # e.g. "shipped": said in the reasons

    @property
    def version(self) -> str:
        return self.model.version + _models(self.strong_need, self.tool_need)

    @property
    def thresholds(self) -> Mapping[str, float]:
        return self.strong_need.thresholds if self.strong_need else self.model.thresholds

    def analyze_now(self, task: str, history_tokens: int = 0) -> TaskAnalysis:
        if not task.strip():
            raise InvalidTask("task is empty: pass the text of the task to analyse")
        vector = vectorize(task)
        category = probability = strong = None
        parts = []
        if self.model.classifier is not None:
            category, probability = self.model.classifier.predict(task)
            parts.append(f"category {category.value} (p={probability:.2f}, embeddings + rules)")
        elif self.model.has_categories:
            category, probability = self.model.category(vector)
            parts.append(f"category {category.value} (p={probability:.2f})")
        if self.model.has_strong:
            strong = self.model.strong_score(vector)
            parts.append(f"strong_score {strong:.2f}")
        elif self.strong_need:
            strong = self.strong_need.score(task)
            parts.append(f"strong_score {strong:.2f} from {self.strong_need.version}")
        origin = f"{self.origin} " if self.origin else ""
        note = f"{origin}learned model {self.model.version}: " + ", ".join(parts)
        need = self.tool_need.predict(task) if self.tool_need else None
        return analyze_task(
            task, history_tokens=history_tokens, category=category, strong_score=strong, analyzer="learned",
            notes=(note,), tool_need=need,
        )  # fmt: skip

    async def analyze(self, task: str, history_tokens: int = 0) -> TaskAnalysis:
        return self.analyze_now(task, history_tokens)


def _models(strong_need: StrongNeedModel | None, tool_need: ToolNeedModel | None) -> str:
    """The versions of the other models an analyser answers with, as logged with each decision."""
    return "".join(f"+{model.version}" for model in (strong_need, tool_need) if model is not None)


def learned_model_path(config: Config) -> Path:
    configured = config.routing.learned_model
    if not configured:
        return config.data_dir / MODEL_FILE
    path = Path(configured).expanduser()
    return path if path.is_absolute() else config.data_dir / path


def load_analyzer(config: Config, *, encoder_available: Callable[[], bool] = embedding.available) -> Analyzer:
    """The analyser the config names. An LLM analyser starts unconnected: the runtime connects it.

    `encoder_available` is the seam that says whether the `[learned]` extra is installed."""
    name = config.routing.analyzer
    scorer = load_strong_need(config)
    tools = load_tool_need(config) if encoder_available() else None
    if name == "auto":
        return _default_analyzer(encoder_available, scorer, tools)
    if name == "learned":
        try:
            return LearnedAnalyzer(load(learned_model_path(config)), scorer, tool_need=tools)
        except LearnedModelError as exc:
            log.warning("%s; using the built-in analyser", exc)
            note = f"learned analyser unusable ({reason(exc)}); the built-in analyser answered"
            return BuiltinAnalyzer(notes=(note,), strong_need=scorer, tool_need=tools)
    if name.startswith("llm:"):
        from server.analysis.llm import LlmAnalyzer

        # Its fallback is the rules with the same tool-need model, which also gives the LLM's answers tool kinds.
        fallback = BuiltinAnalyzer(tool_need=tools)
        timeout_s = config.routing.llm_analyzer_timeout_s
        return LlmAnalyzer(name.removeprefix("llm:"), timeout_s=timeout_s, fallback=fallback)
    return BuiltinAnalyzer(strong_need=scorer, tool_need=tools)


def _default_analyzer(
    encoder_available: Callable[[], bool], scorer: StrongNeedModel | None, tools: ToolNeedModel | None
) -> Analyzer:
    """The shipped learned analyser when its encoder is installed; the rules otherwise, saying why."""
    if not encoder_available():
        return BuiltinAnalyzer(notes=(f"built-in rules (the learned analyser needs: {embedding.INSTALL_HINT})",))
    try:
        return LearnedAnalyzer(load(SHIPPED_MODEL), scorer, origin="shipped", tool_need=tools)
    except LearnedModelError as exc:
        log.warning("%s; using the built-in analyser", exc)
        note = f"shipped learned analyser unusable ({reason(exc)}); the rules answered"
        return BuiltinAnalyzer(notes=(note,), strong_need=scorer, tool_need=tools)


def load_strong_need(config: Config) -> StrongNeedModel | None:
    """The embedding strong-need scorer: one trained into the data dir, else the shipped one; None (the
    rules' strong_score) when the encoder is not installed or the file is unusable."""
    if not embedding.available():
        return None
    from server.analysis import strong_need

    scorer: StrongNeedModel | None = _trained_or_shipped(config, strong_need, "strong_score comes from the rules")
    return scorer


def load_tool_need(config: Config) -> ToolNeedModel | None:
    """The learned tool-need model: one trained into the data dir, else the shipped one; None (the rules
    alone) when the file is unusable. Call only when the encoder is installed."""
    from server.analysis import tool_need_model

    model: ToolNeedModel | None = _trained_or_shipped(config, tool_need_model, "tool need comes from the rules")
    return model


def _trained_or_shipped(config: Config, module: Any, otherwise: str) -> Any:
    """`module`'s model trained into the data dir, else the one it ships; None (logged, saying `otherwise`)
    when that file is unusable."""
    own = config.data_dir / module.SHIPPED
    try:
        return module.load(own) if own.is_file() else module.load_shipped()
    except LearnedModelError as exc:
        log.warning("%s; %s", exc, otherwise)
        return None
