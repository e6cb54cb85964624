"""Claude Desktop (and other hosts') configuration: print a ready `mcpServers` entry or merge it in.

Installing never loses the user's other servers: the file is parsed first (a file that cannot be parsed
is refused, untouched), a timestamped backup is written, then the new content replaces the file
atomically. Key values are never written: the entry carries placeholders the user fills in.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.domain.config import CONFIG_ENV, HOME_ENV, Config
from server.errors import HostConfigError

SERVER_NAME = "model-router"


def placeholder(env_var: str) -> str:
    return f"<your {env_var}>"


def is_placeholder(value: str) -> bool:
    return value.startswith("<") and value.endswith(">")


def default_claude_config_path(env: Mapping[str, str] | None = None, platform: str = sys.platform) -> Path:
    """Where Claude Desktop keeps its config on this platform."""
    env = os.environ if env is None else env
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if platform.startswith("win"):
        return Path(env.get("APPDATA", str(Path.home()))) / "Claude" / "claude_desktop_config.json"
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "Claude" / "claude_desktop_config.json"


def command_path() -> str:
    """Absolute path of the `model-router` script (hosts start servers with a minimal PATH)."""
    beside = Path(sys.executable).with_name("model-router")
    if beside.exists():
        return str(beside)
    found = shutil.which("model-router")
    return str(Path(found).resolve()) if found else str(beside)


def server_entry(config: Config, env: Mapping[str, str]) -> dict[str, Any]:
    """The `mcpServers` entry: absolute command, `serve`, and env placeholders for the keys in use."""
    entry_env: dict[str, str] = {}
    if env.get(CONFIG_ENV):
        entry_env[CONFIG_ENV] = str(Path(env[CONFIG_ENV]).expanduser().resolve())
    if env.get(HOME_ENV):
        entry_env[HOME_ENV] = str(Path(env[HOME_ENV]).expanduser().resolve())
    for name in needed_key_vars(config, env):
        entry_env[name] = placeholder(name)
    return {"command": command_path(), "args": ["serve"], "env": entry_env}


def needed_key_vars(config: Config, env: Mapping[str, str]) -> list[str]:
    """Key variables of providers with enabled models that are set here (so the user evidently uses them)."""
    used = {m.provider for m in config.models if m.enabled}
    names = {p.api_key_env for pid, p in config.providers.items() if pid in used and p.api_key_env}
    return sorted(n for n in names if n and env.get(n))


def install(path: Path, entry: Mapping[str, Any], name: str = SERVER_NAME) -> Path | None:
    """Merge `entry` under `mcpServers.<name>`; returns the backup's path (None for a new file)."""
    document: dict[str, Any] = {}
    backup: Path | None = None
    if path.exists():
        document = _parse(path)
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    servers = document.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise HostConfigError(f"{path}: 'mcpServers' is not an object; fix it by hand first")
    servers[name] = dict(entry)
    _write_atomically(path, json.dumps(document, indent=2) + "\n")
    return backup


def _parse(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise HostConfigError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); it was left untouched. "
            "Fix it, or pass --config to write elsewhere"
        ) from None
    except OSError as exc:
        raise HostConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(document, dict):
        raise HostConfigError(f"{path} does not hold a JSON object; it was left untouched")
    return document


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise HostConfigError(f"cannot write {path}: {exc.strerror}") from None
