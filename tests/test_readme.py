"""The README cannot drift: every `model-router` command and flag it shows exists, every script it names runs.

The run command itself is executed by `tests/e2e/test_local_model.py` (the embedded model, no keys) and
the test command by `.ci/run`.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from tests.helpers import run_cli

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SUBCOMMANDS = ["serve", "route", "complete", "report", "decisions", "models", "prices", "analyze", "eval", "train",
               "doctor", "claude-config", "db"]  # fmt: skip


def marked_command(marker: str) -> str:
    """The command between `<!-- marker -->` and `<!-- /marker -->`."""
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```\s*<!-- /{marker} -->", README, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1).strip()


def readme_invocations() -> list[tuple[str, list[str]]]:
    """(subcommand, flags) for every `model-router <subcommand> ...` the README shows, in code or in text.

    A code line that starts with spaces and `[` continues the previous command's options.
    """
    found: list[tuple[str, list[str]]] = []
    for line in README.splitlines():
        if found and re.match(r"\s{4,}\[", line):
            found[-1][1].extend(_flags(line.split("#")[0]))
            continue
        for match in re.finditer(r"model-router ([a-z-]+)([^`\n]*)", line):
            if match.group(1) in SUBCOMMANDS:
                found.append((match.group(1), _flags(match.group(2).split("  #")[0])))
    return found


def _flags(text: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text)


@cache
def help_text(command: str) -> str:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_shows_every_subcommand() -> None:
    shown = {command for command, _ in readme_invocations()}
    assert shown == set(SUBCOMMANDS)


@pytest.mark.parametrize(("command", "flags"), readme_invocations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_and_flag_in_the_readme_exists(command: str, flags: list[str]) -> None:
    text = help_text(command)
    for flag in flags:
        assert flag in text, f"README shows `model-router {command} {flag}`, which --help does not list"


def test_the_run_command_installs_local_and_completes_with_no_keys() -> None:
    parts = [shlex.split(step) for step in marked_command("run-command").split("&&")]
    settings = [word for word in parts[1] if "=" in word and word.split("=")[0].isupper()]
    install = parts[1][len(settings) :]
    assert install[:3] == [".venv/bin/pip", "install", "-e"] and "local" in install[3]
    # llama.cpp built for any x86-64 with AVX2, not for this CPU: a native build can crash where AMX is reported.
    assert any(word.startswith("CMAKE_ARGS=") and "-DGGML_NATIVE=OFF" in word for word in settings)
    assert parts[-1][:2] == [".venv/bin/model-router", "complete"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
    assert marked_command("test-command").endswith(".venv/bin/python -m pytest")


@pytest.mark.parametrize("script", sorted(set(re.findall(r"python (bench/\w+\.py)", README))))
def test_every_benchmark_the_readme_names_exists_and_compiles(script: str) -> None:
    path = ROOT / script
    assert path.is_file()
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
