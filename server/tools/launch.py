"""How a tool sub-server process is started: exactly the command and environment it gets.

The MCP SDK spawns each child with only HOME, LOGNAME, PATH, SHELL, TERM and USER from this process;
`child_environment` is everything else it may see, so a key reaches only the sub-server that lists it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from mcp import StdioServerParameters

from server.domain.config import HOME_ENV, ToolServerConfig
from tool_servers._priority import NICE_ENV

# Children run at this lower CPU priority (their own `TOOL_SERVER_NICE`, applied before they import the SDK):
# the host starts them while still answering its client's first requests, and on a small machine three
# processes importing the MCP SDK would otherwise slow it. A server's `env` in the config can override it.
CHILD_NICE = "10"


def child_environment(spec: ToolServerConfig, env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """Exactly what a child may see beyond the basics: its pass-through variables and fixed extras."""
    child = {name: env[name] for name in spec.pass_env if env.get(name)}
    if HOME_ENV in spec.pass_env:
        child[HOME_ENV] = str(data_dir)  # the host's resolved data dir, even when it came from the default
    child[NICE_ENV] = CHILD_NICE
    child.update(spec.env)
    return child


def launch_parameters(spec: ToolServerConfig, env: Mapping[str, str], data_dir: Path) -> StdioServerParameters:
    """What the SDK spawns for `spec` (an empty command means this Python interpreter)."""
    return StdioServerParameters(
        command=spec.command or sys.executable,
        args=list(spec.args),
        env=child_environment(spec, env, data_dir),
    )
