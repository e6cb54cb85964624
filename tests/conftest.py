"""Shared fixtures: asyncio-only anyio backend, isolated data dirs and registries with or without keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.domain.config import load_config
from server.domain.registry import Registry

# Every cloud provider's key variable, set to an obviously fake value.
ALL_KEYS = {
    "OPENAI_API_KEY": "test-openai-key-0000",
    "ANTHROPIC_API_KEY": "test-anthropic-key-0000",
    "GEMINI_API_KEY": "test-gemini-key-0000",
    "TOGETHER_API_KEY": "test-together-key-0000",
    "GROQ_API_KEY": "test-groq-key-0000",
    "OPENROUTER_API_KEY": "test-openrouter-key-0000",
    "MOONSHOT_API_KEY": "test-moonshot-key-0000",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads the developer's config, keys or data dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MODEL_ROUTER_HOME", str(home))
    monkeypatch.delenv("MODEL_ROUTER_CONFIG", raising=False)
    for name in [*ALL_KEYS, "BRAVE_API_KEY", "SEARXNG_URL", "MODEL_ROUTER_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    yield home


def make_registry(
    env: dict[str, str] | None = None, *, local: bool = True, config_path: Path | None = None
) -> Registry:
    env = {"MODEL_ROUTER_HOME": os.environ["MODEL_ROUTER_HOME"], **(env or {})}
    return Registry(load_config(config_path, env=env), env, local_runtime=lambda: local)


@pytest.fixture
def registry_all_keys() -> Registry:
    """Every provider configured: the decision matrix shows through unchanged."""
    return make_registry(ALL_KEYS)


@pytest.fixture
def registry_no_keys() -> Registry:
    """A fresh machine: no keys, the embedded model installed."""
    return make_registry({})
