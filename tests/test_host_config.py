"""`model-router claude-config`: the printed entry, and --install merging into an existing file safely."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli


def test_printed_entry_has_absolute_command_and_key_placeholders(tmp_path: Path) -> None:
    done = run_cli("claude-config", home=tmp_path, env={"OPENAI_API_KEY": "sk-real-secret-value-1"})
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)["mcpServers"]["model-router"]
    assert Path(entry["command"]).is_absolute() and entry["command"].endswith("model-router")
    assert entry["args"] == ["serve"]
    assert entry["env"]["OPENAI_API_KEY"] == "<your OPENAI_API_KEY>"
    assert "sk-real-secret-value-1" not in done.stdout + done.stderr


def test_install_merges_keeps_other_servers_and_writes_a_backup(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    original = {"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "fs"]}}, "theme": "dark"}
    config.write_text(json.dumps(original))
    done = run_cli("claude-config", "--install", "--config-file", str(config), home=tmp_path)
    assert done.returncode == 0, done.stderr
    merged = json.loads(config.read_text())
    assert merged["mcpServers"]["filesystem"] == original["mcpServers"]["filesystem"]
    assert merged["theme"] == "dark"
    assert merged["mcpServers"]["model-router"]["args"] == ["serve"]
    backups = list(tmp_path.glob("claude_desktop_config.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == original


def test_install_refuses_a_file_it_cannot_parse_and_leaves_it_untouched(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    broken = '{"mcpServers": {"filesystem": '
    config.write_text(broken)
    done = run_cli("claude-config", "--install", "--config-file", str(config), home=tmp_path)
    assert done.returncode == 1
    assert "not valid JSON" in done.stderr and "untouched" in done.stderr
    assert config.read_text() == broken
    assert not list(tmp_path.glob("*.bak-*"))


def test_install_creates_a_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    done = run_cli("claude-config", "--install", "--config-file", str(config), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "model-router" in json.loads(config.read_text())["mcpServers"]


def test_a_placeholder_key_does_not_count_as_configured(tmp_path: Path) -> None:
    done = run_cli("models", "--json", home=tmp_path, env={"OPENAI_API_KEY": "<your OPENAI_API_KEY>"})
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows["openai/o3"]["available"] is False
    assert "placeholder" in rows["openai/o3"]["availability"]
