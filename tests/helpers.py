"""Helpers shared across the tests: one copy of each thing several test files need.

Each section is owned by whoever added it; add yours under its own heading.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from server.domain.config import Config, load_config
from server.domain.registry import Registry
from server.execution.runtime import open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from server.store import open_database
from server.store.db import rows_as_dicts
from server.tools.toolbox import ToolBox

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------------------
# Subprocesses, the Inspector, servers under test and waiting (test hygiene)
#
# A command runs with a clean environment: PATH, the session's temporary HOME (tests/conftest.py) and the data
# dir it is given; nothing else of the developer's shell leaks in, and nothing it writes lands in the real home.
# Waiting is on a condition with a bound that then fails naming what never happened; never a fixed sleep.
# ---------------------------------------------------------------------------------------------------------------


def cli_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment `run_cli` gives a command: minimal PATH, the session's HOME, `home` as the data dir."""
    data_dir = str(home) if home is not None else os.environ["MODEL_ROUTER_HOME"]
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], "MODEL_ROUTER_HOME": data_dir, **extra}


def run_cli(
    *args: str,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path = ROOT,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`model-router ARGS` (as `python -m server`) in a subprocess, as a user runs it; `env` adds to `cli_env`."""
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True, text=True, input=stdin, cwd=cwd, timeout=timeout, env={**cli_env(home), **(env or {})},
    )  # fmt: skip


def console_script() -> str:
    """The installed `model-router` console script next to this interpreter."""
    script = Path(sys.executable).with_name("model-router")
    if not script.exists():
        pytest.fail(f"console script {script} missing: install the package (pip install -e '.[dev]')")
    return str(script)


def inspector(*args: str, server_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The MCP Inspector CLI (`npx --no-install mcp-inspector --cli ARGS`), installed in ./node_modules by `npm ci`.

    A stdio server the Inspector starts sees only HOME, PATH, USER and the like, never the parent's other
    variables: everything it needs (MODEL_ROUTER_HOME above all) goes in `server_env`, passed as `-e KEY=VALUE`.
    """
    if not (ROOT / "node_modules" / ".bin" / "mcp-inspector").exists():
        if os.environ.get("CI"):
            pytest.fail("MCP Inspector CLI not installed: .ci/run must run `npm ci` first")
        pytest.skip("MCP Inspector CLI not installed (run `npm ci` in the project root)")
    flags = [part for key, value in (server_env or {}).items() for part in ("-e", f"{key}={value}")]
    command = ["npx", "--no-install", "mcp-inspector", "--cli", *flags, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], *, within: float, what: str) -> None:
    """Check `condition` until it holds; fail saying `what` did not happen if it still does not after `within` s.

    The bound only keeps a broken run from hanging; nothing is asserted about how long it took.
    """
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.02)


async def wait_until_async(condition: Callable[[], Any], *, within: float, what: str) -> None:
    """`wait_until` for async tests: the event loop keeps running the tasks the condition is waiting on."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        await anyio.sleep(0.02)


def accepting(port: int, process: subprocess.Popen[Any] | None = None) -> Callable[[], bool]:
    """A condition for `wait_until`: 127.0.0.1:`port` accepts a connection (fails at once if `process` exited)."""

    def check() -> bool:
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"the server exited ({process.returncode}) before listening: {stderr!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    return check


def host_server(
    config_path: Path, env: Mapping[str, str], *, toolbox: ToolBox, local: bool = False
) -> tuple[MCPServer, Config]:
    """The host MCP server over the config file at `config_path` (usually `fakes.providers.write_config`), for
    an in-process `Client(server)`: `toolbox` stands in for the tool sub-servers, `local` says whether the
    embedded model's runtime is installed."""
    config = load_config(config_path, env=env)
    router = Router(Registry(config, env, local_runtime=lambda: local))
    server = build_server(router, env=env, runtime_factory=lambda r: open_runtime(r, env, toolbox=toolbox))
    return server, config


def attempt_rows(config: Config) -> list[dict[str, Any]]:
    """Every row of the ledger's attempts table in `config`'s data dir, oldest first."""
    db = open_database(config.data_dir)
    try:
        return db.run_sync(lambda c: rows_as_dicts(c.execute("SELECT * FROM attempts ORDER BY id")))
    finally:
        db.close()
