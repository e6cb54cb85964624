"""How a tool sub-server process is started: exactly the environment it gets, and whether it can be forked.

Import-light (no MCP SDK): `serve` uses it to ask the fork server for the sub-servers before it has
loaded anything else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from server.domain.config import HOME_ENV, ToolServerConfig
from server.tools.forked_children import ForkServer
from tool_servers._priority import NICE_ENV

# Children run at this lower CPU priority (their own `TOOL_SERVER_NICE`, applied before they import the SDK):
# the host starts them while still answering its client's first requests, and on a small machine three
# processes importing the MCP SDK would otherwise slow it. A server's `env` in the config can override it.
CHILD_NICE = "10"
# What the MCP SDK passes every server it spawns (its POSIX default), so forked and spawned children match.
_INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")


def child_environment(spec: ToolServerConfig, env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """Exactly what a child may see beyond the basics: its pass-through variables and fixed extras."""
    child = {name: env[name] for name in spec.pass_env if env.get(name)}
    if HOME_ENV in spec.pass_env:
        child[HOME_ENV] = str(data_dir)  # the host's resolved data dir, even when it came from the default
    child[NICE_ENV] = CHILD_NICE
    child.update(spec.env)
    return child


def full_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a child: the SDK's inherited basics (from this process), then `extra`."""
    basics = {name: os.environ[name] for name in _INHERITED if os.environ.get(name)}
    basics = {name: value for name, value in basics.items() if not value.startswith("()")}  # no shell functions
    return basics | dict(extra)


def forkable_entry(spec: ToolServerConfig) -> str:
    """The module a `python -m MODULE` server runs with this interpreter, else "" (it must be spawned)."""
    if spec.command not in ("", sys.executable) or len(spec.args) != 2 or spec.args[0] != "-m":
        return ""
    return spec.args[1]


def prelaunch(
    forkserver: ForkServer, specs: Mapping[str, ToolServerConfig], env: Mapping[str, str], data_dir: Path
) -> None:
    """Ask the fork server now for every enabled sub-server it can run, as the tool hub will ask for it.

    The children start while the host is still importing; the hub takes them when it launches the servers.
    """
    for spec in specs.values():
        entry = forkable_entry(spec)
        if spec.enabled and forkserver.can_run(entry):
            forkserver.prelaunch(entry, full_environment(child_environment(spec, env, data_dir)))
