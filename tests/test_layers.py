"""The rooms of `server/` import only downward, as the README's Architecture section draws them, and
`tool_servers/` never imports `server`.

Imports inside functions and under `if TYPE_CHECKING:` count too: a type that points upward is the same
tangle as a call that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"errors", "logs", "__version__"}  # every room may use these

# What each room may import besides itself and BASE: the README's table, closed under "below".
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "logs": set(),
    "domain": set(),
    "analysis": {"domain"},
    "routing": {"analysis", "domain"},
    "store": {"domain"},
    "accounting": {"store", "domain"},
    "providers": {"domain"},
    "tools": {"domain"},
    "execution": {"accounting", "providers", "tools", "store", "routing", "analysis", "domain"},
}
MAY_IMPORT["mcp"] = {"execution", *MAY_IMPORT["execution"]}
MAY_IMPORT["cli"] = {"mcp", *MAY_IMPORT["mcp"]}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "server" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "server":  # `from server import x` names a room
                found.extend((node.lineno, f"server.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_room_of_server_is_on_the_map() -> None:
    rooms = {p.name for p in (ROOT / "server").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "server").glob("*.py")} - {"__init__", "__main__"}
    missing = (rooms | modules) - set(MAY_IMPORT)
    assert not missing, f"add {sorted(missing)} to MAY_IMPORT and to the README's Architecture section"


@pytest.mark.parametrize("path", _modules("server"), ids=lambda p: str(p.relative_to(ROOT)))
def test_server_imports_point_downward(path: Path) -> None:
    relative = path.relative_to(ROOT / "server").with_suffix("").parts
    here = relative[0]
    if here in ("__init__", "__main__"):
        return  # the package's front door: `python -m server` runs the CLI
    allowed = {here, *BASE, *MAY_IMPORT[here]}
    upward = [f"line {line}: {module}" for line, module in _imports(path) if (_room(module) or here) not in allowed]
    assert not upward, f"server/{'/'.join(relative)}.py imports above its room ({here}):\n" + "\n".join(upward)


@pytest.mark.parametrize("path", _modules("tool_servers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tool_servers_never_import_the_router(path: Path) -> None:
    bad = [f"line {line}: {module}" for line, module in _imports(path) if module.split(".")[0] == "server"]
    assert not bad, "\n".join(bad)
