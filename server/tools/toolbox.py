"""What the tool loop needs from tools: list them, run one. The MCP sub-server hub implements this.

A tool failure is data, not an exception: `ToolOutcome(is_error=True)` goes back to the model as an
error result it can act on, and the task goes on.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from server.domain.messages import ToolSpec


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The text a tool produced, and whether it is an error the model should read as such."""

    text: str
    is_error: bool = False


class ToolBox(Protocol):
    """Tools the tool loop may offer a model."""

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        """The specs of the named tools that exist and are running (unknown names are skipped)."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one tool; never raises for a tool-side failure."""
        ...


class NoTools:
    """A toolbox with nothing in it: `complete` runs without tools."""

    async def list_tools(self, names: Collection[str]) -> list[ToolSpec]:
        return []

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(f"unknown tool {name!r}: no tools are available in this session", is_error=True)
