"""Shared fixtures: a temporary HOME for the whole session, asyncio-only anyio backend, isolated data dirs,
registries with or without keys, and the fake provider APIs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.domain.config import load_config
from server.domain.registry import Registry
from tests.fakes import providers as f
from tests.pgserver import PostgresServer, find_bindir

# Every cloud provider's key variable, set to an obviously fake value.
ALL_KEYS = {
    "OPENAI_API_KEY": "test-openai-key-0000",
    "ANTHROPIC_API_KEY": "test-anthropic-key-0000",
    "GEMINI_API_KEY": "test-gemini-key-0000",
    "TOGETHER_API_KEY": "test-together-key-0000",
    "GROQ_API_KEY": "test-groq-key-0000",
    "OPENROUTER_API_KEY": "test-openrouter-key-0000",
    "MOONSHOT_API_KEY": "test-moonshot-key-0000",
    "DEEPSEEK_API_KEY": "test-deepseek-key-0000",
    "MISTRAL_API_KEY": "test-mistral-key-0000",
}


@pytest.fixture(scope="session", autouse=True)
def _temporary_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole session runs under a temporary HOME: nothing a test, a CLI, `serve`, the Inspector or npm
    writes can land in the developer's home (tests/test_home_isolation.py checks it).

    Set before the first test and inherited by every subprocess. npm keeps its cache in this HOME; `npx
    --no-install` still finds the Inspector in ./node_modules. Each test gets its own MODEL_ROUTER_HOME below.
    """
    home = tmp_path_factory.mktemp("session-home")
    values = {
        "HOME": home,
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
        "MODEL_ROUTER_HOME": home / ".local" / "share" / "model-router",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, path in values.items():
            path.mkdir(parents=True, exist_ok=True)
            patch.setenv(name, str(path))
        patch.setenv("npm_config_update_notifier", "false")  # no registry lookup from the Inspector's npx
        yield home


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, started on first use (initdb + pg_ctl as an unprivileged
    user, on a loopback port) and stopped at the end. Skipped only off CI when PostgreSQL is not installed."""
    bindir = find_bindir()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bindir = None
    if bindir is None:
        reason = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, or no psycopg)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: .ci/run installs it; CI must run the PostgreSQL tests")
        pytest.skip(f"{reason}: apt-get install postgresql and pip install -e '.[dev]' to run these tests")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


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


@pytest.fixture
def fake() -> Iterator[f.FakeProviders]:
    """The provider APIs (OpenAI- and Anthropic-shaped) on loopback, scripted per model by the test."""
    with f.FakeProviders() as providers:
        yield providers


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
