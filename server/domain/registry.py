"""The model registry at run time: validated model entries plus whether each one can be called here.

A model is *available* when it is enabled and its provider needs no key or its key env var is set; a
`llamacpp` provider is available only when llama-cpp-python is installed; a self-hosted HTTP provider
(Ollama) only when the injected `probe` finds it up (the probe caches its answer briefly, so asking costs
no round trip per call). Everything else is computed once, when the registry is built.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.domain.config import Config, ModelConfig, ProviderConfig
from server.domain.pricing import blended_price
from server.domain.tasks import Category

# Ranking stand-ins for models whose entry gives no benchmark scores (self-hosted small models, Kimi K2):
# conservative per tier, so an unscored model never outranks a scored one of the same tier.
_UNSCORED_CAPABILITY = {1: 75, 2: 70, 3: 62, 4: 45}
_CATEGORIES = [c.value for c in Category]
_CATEGORY_SCORE = {
    "deep_reasoning": "reasoning_score",
    "complex_coding": "coding_score",
    "agentic_tool_use": "instruction_following",
}


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a model can be called here, and what to do if not."""

    available: bool
    detail: str


def llama_cpp_installed() -> bool:
    """True when the embedded model's runtime is importable (cheap: no import happens)."""
    return importlib.util.find_spec("llama_cpp") is not None


class Registry:
    """Models by id (and alias), with provider facts and availability."""

    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        local_runtime: Callable[[], bool] = llama_cpp_installed,
        probe: Callable[[ProviderConfig], str | None] | None = None,
    ) -> None:
        self.config = config
        self.models: tuple[ModelConfig, ...] = tuple(m for m in config.models if m.enabled)
        self._by_name: dict[str, ModelConfig] = {}
        for model in config.models:
            for name in (model.id, *model.aliases):
                self._by_name[name] = model
        local_ok = local_runtime() if any(p.kind == "llamacpp" for p in config.providers.values()) else False
        self._availability = {m.id: self._check(m, env, local_ok) for m in config.models}
        # The selector asks these thousands of times a second: answer from tables built once.
        self._available = {m.id for m in config.models if self._availability[m.id].available}
        self._self_hosted = {m.id for m in config.models if config.providers[m.provider].self_hosted}
        self._probe = probe
        self._probed = {m.id for m in config.models if self._probe_applies(config.providers[m.provider])}
        self._price_rank = {m.id: blended_price(m) for m in config.models}
        self._capability = {
            (m.id, category): self._score(m, category) for m in config.models for category in _CATEGORIES
        }

    def resolve(self, name: str) -> ModelConfig | None:
        """The model with this id or alias, enabled or not."""
        return self._by_name.get(name)

    def provider(self, model: ModelConfig) -> ProviderConfig:
        return self.config.providers[model.provider]

    def is_self_hosted(self, model: ModelConfig) -> bool:
        """Calls to this model stay on the user's own hardware (a property of its provider)."""
        return model.id in self._self_hosted

    def availability(self, model: ModelConfig) -> Availability:
        found = self._availability[model.id]
        if found.available and model.id in self._probed:
            problem = self._reach(model)
            if problem is not None:
                return Availability(False, problem)
        return found

    def is_available(self, model: ModelConfig) -> bool:
        return model.id in self._available and (model.id not in self._probed or self._reach(model) is None)

    def _reach(self, model: ModelConfig) -> str | None:
        return None if self._probe is None else self._probe(self.config.providers[model.provider])

    @staticmethod
    def _probe_applies(provider: ProviderConfig) -> bool:
        return provider.self_hosted and provider.kind != "llamacpp" and bool(provider.base_url)

    def close_matches(self, name: str, limit: int = 3) -> list[str]:
        """Ids that look like `name`, for 'did you mean' messages."""
        names = list(self._by_name)
        matches = difflib.get_close_matches(name, names, n=limit, cutoff=0.4)
        tail = name.rsplit("/", 1)[-1].lower()
        matches += [n for n in names if tail and tail in n.lower() and n not in matches]
        return [self._by_name[m].id for m in dict.fromkeys(matches)][:limit]

    def price_rank(self, model: ModelConfig) -> float:
        """Blended price per 1M tokens for ranking (unpriced: infinity)."""
        return self._price_rank[model.id]

    def capability(self, model: ModelConfig, category: str) -> int:
        """The model's score for a category (falls back to quality_index, then to a per-tier stand-in)."""
        return self._capability[(model.id, category)]

    @staticmethod
    def _score(model: ModelConfig, category: str) -> int:
        field = _CATEGORY_SCORE.get(category, "quality_index")
        score = getattr(model, field) or model.quality_index
        return score if score is not None else _UNSCORED_CAPABILITY[model.tier]

    def _check(self, model: ModelConfig, env: Mapping[str, str], local_ok: bool) -> Availability:
        provider = self.config.providers[model.provider]
        if not model.enabled:
            return Availability(False, "disabled in the config (enabled = false)")
        if provider.kind == "llamacpp":
            if local_ok:
                return Availability(True, "embedded model (llama-cpp-python installed)")
            return Availability(False, "install the embedded runtime: pip install 'mcp-model-router[local]'")
        if provider.api_key_env is None:
            return Availability(True, f"provider {model.provider} needs no key")
        value = env.get(provider.api_key_env, "")
        if value.startswith("<") and value.endswith(">"):
            return Availability(False, f"{provider.api_key_env} holds a placeholder ({value}); put the real key there")
        if value:
            return Availability(True, f"{provider.api_key_env} is set")
        return Availability(False, f"set {provider.api_key_env} to enable")
