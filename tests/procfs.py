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


def session_members(sid: int) -> list[int]:
    """The live (non-zombie) processes in session `sid`: a sandboxed run and everything it forked."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, _pgrp, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except OSError:  # gone while we looked
            continue
        if int(session) == sid and state != "Z":
            members.append(int(stat.parent.name))
    return members
