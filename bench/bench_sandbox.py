"""execute_python's cost per isolation: the chosen sandbox against the one it replaced, in one run.

Prints only. Times `run_python` (what execute_python calls, minus the MCP hop) for `print(1)` and for a
loop that burns 1 s of CPU, p50/p99, interleaving:
- this checkout's sandbox as `probe_sandbox` picks it here (namespaces where the kernel allows them);
- the sandbox of commit bbfb6d4 (process group, plus root-only namespaces), loaded from git.

    python bench/bench_sandbox.py [--runs 40] [--cpu-runs 6]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tool_servers.code_exec import sandbox as current  # noqa: E402

BASELINE_COMMIT = "bbfb6d4"
CPU_SECOND = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1:\n    pass\nprint('done')"


def _baseline() -> ModuleType:
    """The old sandbox module, read from git (it is self-contained: standard library only)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:tool_servers/code_exec/sandbox.py"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp(prefix="bench-sandbox-")) / "baseline_sandbox.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_sandbox", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolves annotations through it
    spec.loader.exec_module(module)
    shutil.rmtree(path.parent)  # loaded; the copy is no longer needed
    return module


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(run: Callable[[str], Any], code: str, expect: str) -> float:
    started = time.perf_counter()
    result = run(code)
    elapsed = (time.perf_counter() - started) * 1000
    assert result.stdout == expect, result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cpu-runs", type=int, default=6)
    args = parser.parse_args()
    old = _baseline()
    new_box, old_box = current.probe_sandbox(), old.probe_sandbox()
    runners: dict[str, Callable[[str], Any]] = {
        f"chosen: {new_box.mechanism} ({', '.join(new_box.protections)})":
            lambda code: current.run_python(code, 10.0, new_box),
        f"bbfb6d4: process group ({', '.join(old_box.protections)})":
            lambda code: old.run_python(code, 10.0, old_box),
    }  # fmt: skip
    samples: dict[tuple[str, str], list[float]] = {}
    for workload, code, expect, runs in (("print(1)", "print(1)", "1\n", args.runs),
                                         ("1 s CPU loop", CPU_SECOND, "done\n", args.cpu_runs)):  # fmt: skip
        for _ in range(runs):
            for label, run in runners.items():  # interleaved, so machine load hits both alike
                samples.setdefault((workload, label), []).append(_time(run, code, expect))
    for (workload, label), values in samples.items():
        print(f"execute_python {workload:<13} p50 {_pct(values, 0.5):8.1f} ms  p99 {_pct(values, 0.99):8.1f} ms  "
              f"n={len(values):<3} {label}")  # fmt: skip


if __name__ == "__main__":
    main()
