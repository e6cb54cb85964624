"""Helpers shared across the tests: one copy of each thing several test files need.

Each section is owned by whoever added it; add yours under its own heading.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from server.domain.config import Config, load_config
from server.domain.registry import Registry
from server.execution.runtime import Runtime, open_runtime
from server.mcp.app import build_server
from server.routing.router import Router
from server.store import open_database
from server.store.db import rows_as_dicts
from server.store.interface import AttemptRecord, Store
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
    config_path: Path,
    env: Mapping[str, str],
    *,
    toolbox: ToolBox,
    local: bool = False,
    opened: list[Runtime] | None = None,
) -> tuple[MCPServer, Config]:
    """The host MCP server over the config file at `config_path` (usually `fakes.providers.write_config`), for
    an in-process `Client(server)`: `toolbox` stands in for the tool sub-servers, `local` says whether the
    embedded model's runtime is installed; `opened` collects the runtimes it opens (to reach their store)."""
    config = load_config(config_path, env=env)
    router = Router(Registry(config, env, local_runtime=lambda: local))

    @asynccontextmanager
    async def runtime(r: Router) -> AsyncIterator[Runtime]:
        async with open_runtime(r, env, toolbox=toolbox) as rt:
            if opened is not None:
                opened.append(rt)  # the test can reach the store the server opened
            yield rt

    return build_server(router, env=env, runtime_factory=runtime), config


def attempt_rows(config: Config) -> list[dict[str, Any]]:
    """Every row of the ledger's attempts table in `config`'s data dir, oldest first."""
    db = open_database(config.data_dir)
    try:
        return db.run_sync(lambda c: rows_as_dicts(c.execute("SELECT * FROM attempts ORDER BY id")))
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------------------------
# Store: attempt records and write faults (the store contract suite, ledger, budget and report tests)
# ---------------------------------------------------------------------------------------------------------------


def attempt_record(
    task_id: str = "t", *, cost: Decimal | str | None = "0.001", when: float = 1_790_000_000.0, **fields: Any
) -> AttemptRecord:
    """An attempt of `openai/gpt-4.1-mini` that succeeded at `when`, costing `cost` USD (None: unpriced)."""
    values: dict[str, Any] = {
        "session_id": None, "attempt_no": 1, "latency_ms": 5.0, "model": "openai/gpt-4.1-mini", "provider": "openai",
        "category": "qa_retrieval", "outcome": "ok", "price_table_version": "test", "input_tokens": 100,
        "output_tokens": 10,
    }  # fmt: skip
    values.update(fields)
    return AttemptRecord(task_id=task_id, started_at=when, cost_usd=None if cost is None else Decimal(cost), **values)


def set_writable(store: Store, writable: bool) -> None:
    """Make every later write of this (SQLite) store fail as a read-only or full disk does, or undo it.

    The process runs as root in CI, where file modes do not stop writes (and a connection opened before a
    chmod keeps writing anyway); `query_only` makes SQLite refuse them with the error a read-only file gives
    ("attempt to write a readonly database"), on this connection only.
    """
    database = store.database  # type: ignore[attr-defined]  # the SQLite backend's one connection
    database.run_sync(lambda conn: conn.execute(f"PRAGMA query_only = {'OFF' if writable else 'ON'}"))


def refuse_inserts(store: Store, table: str, reason: str = "disk full") -> None:
    """Make this (SQLite) store refuse new rows of one table, as a full disk refuses a page, while others land."""
    database = store.database  # type: ignore[attr-defined]
    database.run_sync(
        lambda conn: conn.execute(
            f"CREATE TEMP TRIGGER IF NOT EXISTS refuse_{table} BEFORE INSERT ON main.{table} "
            f"BEGIN SELECT RAISE(ABORT, '{reason}'); END"
        )
    )


def allow_inserts(store: Store, table: str) -> None:
    """Undo `refuse_inserts`."""
    database = store.database  # type: ignore[attr-defined]
    database.run_sync(lambda conn: conn.execute(f"DROP TRIGGER IF EXISTS temp.refuse_{table}"))
