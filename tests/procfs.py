"""What /proc says about a process, for tests that check process trees (Linux only)."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """Running or sleeping: not gone and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) pids whose command line carries `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:  # gone while we looked
            continue
    return found
