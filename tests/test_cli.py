"""The `model-router` command line, run as a user would (a real subprocess of the console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli


def test_route_json_has_the_tool_fields(tmp_path: Path) -> None:
    done = run_cli("route", "What is the capital of France?", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for field in [
        "category",
        "complexity",
        "strong_score",
        "primary_model",
        "fallback_models",
        "estimated_cost_usd",
        "reasons",
    ]:
        assert field in data
    assert data["category"] == "qa_retrieval"


def test_route_reads_stdin_and_prints_human_text(tmp_path: Path) -> None:
    done = run_cli("route", "-", "--self-hosted-only", stdin="Summarise this paragraph about owls.", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "primary:" in done.stdout and "reasons" not in done.stderr


def test_route_unknown_force_model_fails_with_a_hint(tmp_path: Path) -> None:
    done = run_cli("route", "hi", "--force-model", "openai/o33", home=tmp_path)
    assert done.returncode == 1
    assert "not in the registry" in done.stderr and "openai/o3" in done.stderr
    assert "Traceback" not in done.stderr


def test_models_json_lists_availability(tmp_path: Path) -> None:
    done = run_cli("models", "--json", env={"OPENAI_API_KEY": "sk-test-123456789"}, home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows["openai/o3"]["available"] is True
    assert rows["anthropic/claude-sonnet-4"]["available"] is False
    for key in [
        "id",
        "provider",
        "tier",
        "self_hosted",
        "input_price_per_million",
        "output_price_per_million",
        "context_window",
        "supports_tools",
        "available",
    ]:
        assert key in rows["openai/o3"]
    assert rows["local/gemma-3-270m"]["self_hosted"] is True
    assert "sk-test-123456789" not in done.stdout + done.stderr


def test_analyze_writes_one_line_per_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "a", "prompt": "What is the capital of France?"})
        + "\n"
        + json.dumps({"id": "b", "prompt": "Write a Python function that parses ISO dates, with tests."})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    done = run_cli("analyze", str(source), "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[0]["category"] == "qa_retrieval"
    assert {"category", "complexity", "strong_score"} <= rows[1].keys()


def test_analyze_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a"}\nnot json\n' + json.dumps({"id": "c", "prompt": "hello"}) + "\n")
    done = run_cli("analyze", str(source), home=tmp_path)
    assert done.returncode == 1
    assert ":1: skipped" in done.stderr and ":2: skipped" in done.stderr
    assert json.loads(done.stdout)["id"] == "c"


@pytest.mark.parametrize("command", [[], ["serve"], ["route"], ["models"], ["analyze"]])
def test_help_is_available_everywhere(tmp_path: Path, command: list[str]) -> None:
    done = run_cli(*command, "--help", home=tmp_path)
    assert done.returncode == 0
    assert "usage: model-router" in done.stdout


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[providers.openai]\nkind = "soap"\n')
    done = run_cli("models", env={"MODEL_ROUTER_CONFIG": str(config)}, home=tmp_path)
    assert done.returncode == 1
    assert str(config) in done.stderr and "providers.openai.kind" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_native_crash_leaves_the_python_stack_on_stderr(tmp_path: Path) -> None:
    """As a llama.cpp segfault would: the log must say where, not just that the process vanished."""
    code = ("import ctypes, sys; from server.cli import main; main(['route', 'hello']); "
            "ctypes.string_at(0)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "MODEL_ROUTER_HOME": str(tmp_path)})  # fmt: skip
    assert done.returncode < 0
    assert "Segmentation fault" in done.stderr and "string_at" in done.stderr
