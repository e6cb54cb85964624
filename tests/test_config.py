"""Config loading: shipped defaults, the user file merged over them, and errors that name file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.domain.config import load_config
from server.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_defaults_hold_every_seed_model() -> None:
    config = load_config(env={})
    ids = {m.id for m in config.models}
    for expected in [
        "google/gemini-2.5-pro",
        "anthropic/claude-sonnet-4",
        "openai/o3",
        "anthropic/claude-opus-4",
        "google/gemini-2.5-flash",
        "together/deepseek-r1",
        "openai/o4-mini",
        "openai/gpt-4.1",
        "together/llama-4-maverick",
        "together/llama-4-scout",
        "openai/gpt-4.1-nano",
        "google/gemini-2.5-flash-lite",
        "moonshot/kimi-k2",
        "ollama/qwen3:1.7b",
        "local/gemma-3-270m",
    ]:
        assert expected in ids
    kimi = next(m for m in config.models if m.id == "moonshot/kimi-k2")
    assert (kimi.input_price, kimi.cached_input_price, kimi.output_price) == (0.60, 0.15, 2.50)
    assert config.prices_as_of
    assert set(config.providers) >= {
        "openai",
        "anthropic",
        "google",
        "together",
        "groq",
        "openrouter",
        "ollama",
        "local",
    }
    assert config.providers["ollama"].base_url == "http://localhost:11434/v1"
    assert config.providers["google"].api_key_env == "GEMINI_API_KEY"


def test_user_file_overrides_fields_adds_models_and_providers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [providers.openai]
        base_url = "http://127.0.0.1:9999/v1"
        [providers.vllm]
        kind = "openai"
        base_url = "http://127.0.0.1:8001/v1"
        self_hosted = true
        [[models]]
        id = "openai/gpt-4.1-nano"
        enabled = false
        [[models]]
        id = "vllm/qwen3-32b"
        api_model_id = "Qwen/Qwen3-32B"
        tier = 3
        context_window = 32768
        input_price = 0.0
        output_price = 0.0
        [routing]
        baseline_model = "openai/o3"
        [budgets]
        per_task_usd = 0.10
        """,
    )
    config = load_config(path, env={})
    assert config.providers["openai"].base_url == "http://127.0.0.1:9999/v1"
    assert config.providers["openai"].api_key_env == "OPENAI_API_KEY"  # untouched fields survive the merge
    nano = next(m for m in config.models if m.id == "openai/gpt-4.1-nano")
    assert nano.enabled is False and nano.input_price == 0.10
    assert any(m.id == "vllm/qwen3-32b" for m in config.models)
    assert config.routing.baseline_model == "openai/o3"
    assert config.routing.balanced_threshold == 0.19  # shipped default survives the merge
    assert config.budgets.per_task_usd == 0.10
    assert config.source == str(path)


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, '[routing]\nbaseline_model = "openai/o3"\n')
    config = load_config(env={"MODEL_ROUTER_CONFIG": str(path)})
    assert config.routing.baseline_model == "openai/o3"


def test_data_dir_from_environment(tmp_path: Path) -> None:
    assert load_config(env={"MODEL_ROUTER_HOME": str(tmp_path)}).data_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[providers.openai]\nkind = "grpc"\n', ["providers.openai.kind", "openai", "anthropic", "llamacpp", "grpc"]),
        ('[[models]]\nid = "openai/o3"\ntier = 7\n', ["models[id=openai/o3].tier", "less than or equal to 4"]),
        ("[routing]\nbaselin_model = 1\n", ["routing.baselin_model", "unknown key"]),
        ('[routing]\nbaseline_model = "openai/nope"\n', ["routing.baseline_model", "openai/nope"]),
        (
            '[[models]]\nid = "acme/x"\napi_model_id = "x"\ntier = 2\ncontext_window = 10\n',
            ["acme", "[providers.acme]"],
        ),
        ('[[models]]\nid = "openai/new"\ntier = 2\n', ["models[id=openai/new]", "required key is missing"]),
        ("[budgets]\ndaily_usd = -1\n", ["budgets.daily_usd", "greater than or equal to 0"]),
        ("this is = = not toml", ["not valid TOML"]),
    ],
)
def test_bad_config_names_file_key_and_what_is_allowed(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message
    assert "Traceback" not in message


def test_missing_config_file_says_which_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*MODEL_ROUTER_CONFIG"):
        load_config(env={"MODEL_ROUTER_CONFIG": str(tmp_path / "absent.toml")})
