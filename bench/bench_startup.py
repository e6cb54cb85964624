"""Start-up of `model-router serve` (stdio), this checkout beside an earlier commit, interleaved in one run.

From spawning `python -m server --log-level INFO serve` (default configuration, a fresh temporary HOME and
MODEL_ROUTER_HOME per version, no API keys, nothing else from this environment but PATH) it prints the
time to:
- the `initialize` answer (sent at once, as a host does);
- the `tools/list` answer (sent, with `notifications/initialized`, as soon as `initialize` is answered);
- all three sub-servers ready: each version's tool hub logs "tool server NAME ready: TOOLS" on stderr once
  its session to that child is up and has listed the child's tools (the same line in both versions'
  hub code), so the bench waits for the three lines.

The earlier commit (default cd103aa, the last before issue 14) is checked out into a temporary detached
worktree and run with its own directory as cwd and PYTHONPATH, with this interpreter; each version's
sub-servers are spawned with that cwd, so `python -m tool_servers.X` imports that version's code (the
bench checks where `server` and `tool_servers` come from before it starts). One unmeasured start per
version first (it compiles the fresh checkout's bytecode and creates the database), then `--rounds`
rounds, each starting every version once, in alternating order. Prints median (min-max) in ms; no
assertions.

    python bench/bench_startup.py [--rounds 7] [--before cd103aa] [--tree LABEL=PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.streams.text import TextReceiveStream

ROOT = Path(__file__).resolve().parents[1]
SUB_SERVERS = ("web_search", "code_exec", "memory")
READY = re.compile(r"tool server (\w+) ready: ")
STAGES = ("initialize", "tools/list", "sub-servers ready")
TIMEOUT_S = 90.0
HELLO = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
         "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}  # fmt: skip


@dataclass
class Version:
    label: str
    tree: Path
    home: Path
    samples: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "MODEL_ROUTER_HOME": str(self.home), "PYTHONPATH": str(self.tree)}  # fmt: skip


async def _reply(stream: TextReceiveStream, buffer: list[str], message_id: int) -> None:
    """Read stdout lines until the JSON-RPC reply with `message_id` (earlier lines are notifications)."""
    while True:
        while "\n" not in buffer[0]:
            buffer[0] += await stream.receive()
        line, buffer[0] = buffer[0].split("\n", 1)
        reply = json.loads(line)
        if reply.get("id") == message_id:
            if "error" in reply:
                raise RuntimeError(f"request {message_id} failed: {reply['error']}")
            return


async def start_once(version: Version) -> dict[str, float]:
    """Ms from spawn to each stage, for one start of `serve`."""
    marks: dict[str, float] = {}
    ready: set[str] = set()
    all_ready = anyio.Event()
    log: list[str] = []
    started = time.perf_counter()
    process = await anyio.open_process(
        [sys.executable, "-m", "server", "--log-level", "INFO", "serve"], cwd=version.tree, env=version.env
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    replies = TextReceiveStream(process.stdout)

    async def watch_stderr() -> None:
        assert process.stderr is not None
        pending = ""
        async for chunk in TextReceiveStream(process.stderr):
            pending += chunk
            *lines, pending = pending.split("\n")
            log.extend(lines)
            ready.update(m.group(1) for m in map(READY.search, lines) if m and m.group(1) in SUB_SERVERS)
            if len(ready) == len(SUB_SERVERS) and not all_ready.is_set():
                marks["sub-servers ready"] = (time.perf_counter() - started) * 1000
                all_ready.set()

    try:
        with anyio.fail_after(TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_stderr)
                buffer = [""]
                await process.stdin.send((json.dumps(HELLO) + "\n").encode())
                await _reply(replies, buffer, 1)
                marks["initialize"] = (time.perf_counter() - started) * 1000
                await process.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n'
                                         b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}\n')  # fmt: skip
                await _reply(replies, buffer, 2)
                marks["tools/list"] = (time.perf_counter() - started) * 1000
                await all_ready.wait()
                await process.stdin.aclose()  # the host hangs up; serve stops its sub-servers and exits
    except TimeoutError:
        tail = "\n".join(log[-20:])
        raise SystemExit(f"{version.label}: no full start-up within {TIMEOUT_S:.0f} s:\n{tail}") from None
    finally:
        with anyio.move_on_after(30):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
    return marks


def _check_imports(version: Version) -> None:
    """Both packages must come from the version's own tree (not from the editable install of this one)."""
    code = "import server, tool_servers; print(server.__file__); print(tool_servers.__file__)"
    found = subprocess.run([sys.executable, "-c", code], cwd=version.tree, env=version.env,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    wrong = [path for path in found if not Path(path).resolve().is_relative_to(version.tree.resolve())]
    if wrong:
        raise SystemExit(f"{version.label}: imports {wrong} from outside {version.tree}")


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} ({min(values):.0f}-{max(values):.0f})"


async def run(versions: list[Version], rounds: int) -> None:
    for version in versions:
        _check_imports(version)
        await start_once(version)  # unmeasured: bytecode compiled, database created, files cached
    for number in range(rounds):
        order = versions if number % 2 == 0 else versions[::-1]
        for version in order:
            for stage, value in (await start_once(version)).items():
                version.samples[stage].append(value)
    width = max(len(v.label) for v in versions)
    print(f"spawn `serve` -> answer or ready, ms: median (min-max) over {rounds} interleaved rounds")
    print(f"{'':{width}}  " + "  ".join(f"{stage:>20}" for stage in STAGES))
    for version in versions:
        print(f"{version.label:{width}}  " + "  ".join(f"{_summary(version.samples[s]):>20}" for s in STAGES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured starts of each version (default 7)")
    parser.add_argument("--before", default="cd103aa", help="the commit to compare with (default cd103aa)")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="another checkout to measure beside them (repeatable)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        before = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--quiet", "--detach", str(before), args.before],
                       check=True)  # fmt: skip
        try:
            trees = [("this checkout", ROOT), (args.before, before)]
            trees += [(label, Path(path)) for label, path in (item.split("=", 1) for item in args.tree)]
            versions = []
            for number, (label, tree) in enumerate(trees):
                home = Path(scratch) / f"home-{number}"
                home.mkdir()
                versions.append(Version(label, tree, home))
            anyio.run(run, versions, args.rounds)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)


if __name__ == "__main__":
    main()
