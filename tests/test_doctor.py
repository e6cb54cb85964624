"""`model-router doctor`: a healthy setup, a missing key, a broken sub-server command, an invalid config."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from server.cli.doctor import Check, probe_generation
from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def _doctor(tmp_path: Path, config: str | None = None, *, generate: bool = False, **env: str) -> tuple[int, list[dict]]:
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env}
    if config is not None:
        path = tmp_path / "router.toml"
        path.write_text(config)
        full["MODEL_ROUTER_CONFIG"] = str(path)
    flags = [] if generate else ["--no-generate"]
    done = run_cli("doctor", "--json", *flags, home=tmp_path / "home", env=full, timeout=300)
    return done.returncode, json.loads(done.stdout)


def _by_name(checks: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


def test_healthy_setup_passes(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, generate=True, OPENAI_API_KEY="sk-test-abcdef123456")
    by = _by_name(checks)
    assert code == 0, checks
    if importlib.util.find_spec("llama_cpp") is not None:  # [local] installed: a real generation ran
        assert by["local model"]["status"] == "ok" and by["local model"]["detail"].startswith("generated 4 tokens")
    assert by["config"]["status"] == "ok" and by["data_dir"]["status"] == "ok"
    assert by["provider openai"]["status"] == "ok" and "sk-test-abcdef123456" not in json.dumps(checks)
    for name in ("web_search", "code_exec", "memory"):
        assert by[f"tool server {name}"]["status"] == "ok"
    sandbox = by["code sandbox"]
    assert sandbox["status"] in ("ok", "warn") and "Isolation here" in sandbox["detail"]
    assert (sandbox["status"] == "ok") == ("NOT guaranteed" not in sandbox["detail"])


def test_strict_code_sandbox_that_cannot_keep_its_promises_is_an_error(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, '[tool_servers.code_exec.env]\nCODE_EXEC_SANDBOX = "basic"\n'
                           'CODE_EXEC_STRICT = "1"\n')  # fmt: skip
    sandbox = _by_name(checks)["code sandbox"]
    assert code == 1 and sandbox["status"] == "error"
    assert "Strict mode is on, so code is refused" in sandbox["detail"] and "user namespaces" in sandbox["fix"]


def test_missing_key_for_a_configured_provider_is_an_error_with_the_fix(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, '[providers.anthropic]\nbase_url = "https://api.anthropic.com"\n')
    anthropic = _by_name(checks)["provider anthropic"]
    assert code == 1 and anthropic["status"] == "error"
    assert "ANTHROPIC_API_KEY" in anthropic["detail"] and "ANTHROPIC_API_KEY" in anthropic["fix"]


def test_broken_sub_server_command_is_an_error(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, '[tool_servers.memory]\ncommand = "/nonexistent/python"\n')
    memory = _by_name(checks)["tool server memory"]
    assert code == 1 and memory["status"] == "error" and "tool_servers.memory" in memory["fix"]


def test_invalid_config_is_reported_not_raised(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, "[routing]\nmax_fallbacks = 9\n")
    assert code == 1 and checks[0]["name"] == "config" and checks[0]["status"] == "error"
    assert "routing.max_fallbacks" in checks[0]["detail"]


def test_a_learned_analyzer_without_a_model_is_an_error_with_the_fix(tmp_path: Path) -> None:
    code, checks = _doctor(tmp_path, '[routing]\nanalyzer = "learned"\n')
    analyzer = _by_name(checks)["analyzer"]
    assert code == 1 and analyzer["status"] == "error"
    assert "no learned model at" in analyzer["detail"] and "model-router train" in analyzer["fix"]


@pytest.mark.skipif(importlib.util.find_spec("wordllama") is None, reason="needs the [learned] extra")
def test_a_broken_trained_tool_need_model_is_a_warning_that_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "tool_need.json.gz").write_bytes(b"not gzip")
    _, checks = _doctor(tmp_path, "")
    scorers = _by_name(checks)["learned scorers"]
    assert scorers["status"] == "warn" and "tool-need model" in scorers["detail"]
    assert "corrupt" in scorers["detail"] and "strong-need scorer" not in scorers["detail"]


def _probe(code: str, timeout_s: float = 60.0) -> Check:
    return anyio.run(lambda: probe_generation([sys.executable, "-c", code], timeout_s))


def test_a_native_crash_in_the_test_generation_is_an_error_naming_the_portable_rebuild() -> None:
    check = _probe("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")  # as a mis-built llama.cpp dies
    assert check.status == "error" and "SIGSEGV" in check.detail and "take the whole server down" in check.detail
    assert check.fix is not None and "-DGGML_NATIVE=OFF" in check.fix and "--no-cache-dir" in check.fix


def test_a_failing_or_hanging_test_generation_is_reported() -> None:
    failed = _probe("import sys; sys.exit('the GGUF is corrupt')")
    assert failed.status == "error" and "the GGUF is corrupt" in failed.detail
    hung = _probe("import time; time.sleep(30)", timeout_s=0.5)
    assert hung.status == "warn" and "did not finish" in hung.detail


def test_the_test_generation_sees_no_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdef123456")
    check = _probe("import os, sys; sys.exit('key leaked' if 'OPENAI_API_KEY' in os.environ else 0)")
    assert check.status == "ok", check.detail
