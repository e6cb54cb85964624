"""The code sandbox against hostile code, in-process and over stdio."""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tests.helpers import wait_until
from tests.procfs import processes_with
from tool_servers.code_exec.sandbox import probe_sandbox
from tool_servers.code_exec.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SANDBOX = probe_sandbox()


async def run(code: str, timeout_s: int = 5) -> dict:
    async with Client(build_server(SANDBOX)) as client:
        result = await client.call_tool("execute_python", {"code": code, "timeout_s": timeout_s})
    assert not result.is_error, result.content
    return result.structured_content


async def test_ordinary_code_runs_and_reports_protections() -> None:
    out = await run("print(sum(range(10)))")
    assert out["exit_code"] == 0 and out["stdout"] == "45\n"
    assert {"empty_env", "rlimits", "temp_dir"} <= set(out["protections"])
    assert ("pid_namespace" in out["protections"]) != ("process_group_kill" in out["protections"])


def marked(body: str) -> tuple[str, str]:
    """Code that re-executes itself as `python -c BODY MARKER`, and the marker: every process of the run (forks
    included) then carries the marker in a command line the host can read, with or without a PID namespace."""
    marker = f"code-exec-run-{uuid.uuid4().hex}"
    return f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {body!r}, {marker!r}])\n", marker


async def test_infinite_loop_is_killed_at_the_timeout() -> None:
    code, marker = marked("while True:\n    pass")
    out = await run(code, timeout_s=2)
    assert out["timed_out"] and out["killed_signal"] == "SIGKILL"
    assert processes_with(marker) == []  # nothing left spinning


async def test_fork_bomb_is_contained() -> None:
    code, marker = marked("import os\nwhile True:\n    os.fork()")
    out = await run(code, timeout_s=3)
    assert out["exit_code"] != 0 or out["timed_out"]
    # SIGKILL reaches the forked copies when each is next scheduled: wait for that, then none may remain.
    wait_until(lambda: not processes_with(marker), within=30, what="every process of the fork bomb gone")


async def test_huge_allocation_fails_inside_the_sandbox() -> None:
    out = await run("b = bytearray(4 * 1024**3)\nprint('allocated')")
    assert out["exit_code"] != 0 and "allocated" not in out["stdout"]
    assert "MemoryError" in out["stderr"] or out["killed_signal"]


async def test_fifty_megabytes_of_output_is_truncated_and_the_run_completes() -> None:
    out = await run("import sys\nsys.stdout.write('x' * 50_000_000)\nprint('done', file=sys.stderr)", timeout_s=60)
    assert out["stdout_truncated"] and len(out["stdout"]) <= 64 * 1024
    assert out["exit_code"] == 0 and not out["timed_out"] and out["stderr"] == "done\n"  # read to the end, not killed


async def test_the_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-be-seen-123")
    out = await run("import os\nprint(dict(os.environ))")
    assert "sk-should-never-be-seen-123" not in out["stdout"] and "OPENAI_API_KEY" not in out["stdout"]


async def test_no_network_to_loopback() -> None:
    out = await run("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=2)\nprint('connected')")
    assert "connected" not in out["stdout"]
    if "network_namespace" in out["protections"]:
        assert "Network is unreachable" in out["stderr"]


async def test_writes_outside_the_run_directory_do_not_land() -> None:
    target = f"/tmp/escape-{uuid.uuid4().hex}"
    here = Path.cwd() / f"escape-{uuid.uuid4().hex}"
    out = await run(f"for p in ({target!r}, {str(here)!r}):\n    try:\n        open(p, 'w').write('x')\n"
                    "    except OSError as e:\n        print('refused', e)")  # fmt: skip
    if "mount_namespace" in out["protections"] or {"private_tmp", "unprivileged_user"} <= set(out["protections"]):
        assert not any(map(os.path.lexists, (target, str(here))))
    else:
        pytest.skip(f"this machine cannot confine writes: protections {out['protections']}")


async def test_syntax_validation() -> None:
    async with Client(build_server(SANDBOX)) as client:
        good = await client.call_tool("validate_python_syntax", {"code": "def f(x):\n    return x\n"})
        bad = await client.call_tool("validate_python_syntax", {"code": "def f(:\n"})
    assert good.structured_content["valid"] is True
    assert bad.structured_content["valid"] is False and bad.structured_content["line"] == 1


async def test_bad_arguments_are_clear_errors() -> None:
    async with Client(build_server(SANDBOX)) as client:
        result = await client.call_tool("execute_python", {"code": "print(1)", "timeout_s": 3600})
    assert result.is_error and "timeout_s" in result.content[0].text


async def test_over_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "tool_servers.code_exec"], env={})
    async with Client(params, mode="legacy") as client:
        result = await client.call_tool("execute_python", {"code": "print(6 * 7)"})
    assert result.structured_content["stdout"] == "42\n"


async def test_the_tool_description_says_what_holds_here() -> None:
    async with Client(build_server(SANDBOX)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    description = tools["execute_python"].description or ""
    for promise in SANDBOX.kept():
        assert promise in description
    for promise in SANDBOX.not_kept():
        assert "NOT guaranteed" in description and promise in description


async def test_the_basic_sandbox_admits_what_it_cannot_promise() -> None:
    basic = probe_sandbox({"CODE_EXEC_SANDBOX": "basic"})
    async with Client(build_server(basic)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        ran = await client.call_tool("execute_python", {"code": "print(2)"})
    assert "NOT guaranteed" in (tools["execute_python"].description or "")
    assert "every process the code starts ends with the call" in (tools["execute_python"].description or "")
    assert ran.structured_content["stdout"] == "2\n" and "pid_namespace" not in ran.structured_content["protections"]


async def test_strict_mode_refuses_code_it_cannot_fully_isolate() -> None:
    strict = probe_sandbox({"CODE_EXEC_SANDBOX": "basic", "CODE_EXEC_STRICT": "1"})
    async with Client(build_server(strict)) as client:
        result = await client.call_tool("execute_python", {"code": "print('code-was-run')"})
    assert result.is_error
    text = result.content[0].text
    assert "strict mode" in text and "every process the code starts ends with the call" in text
    assert "code-was-run" not in text


async def test_strict_mode_runs_code_where_every_promise_holds() -> None:
    strict = probe_sandbox({"CODE_EXEC_STRICT": "1"})
    if strict.not_kept():
        pytest.skip(f"this machine cannot keep every promise: {strict.not_kept()}")
    async with Client(build_server(strict)) as client:
        result = await client.call_tool("execute_python", {"code": "print('ran')"})
    assert result.structured_content["stdout"] == "ran\n"


async def test_a_sandbox_that_cannot_be_built_is_a_clear_error() -> None:
    if SANDBOX.mechanism != "namespaces":
        pytest.skip("needs the namespace sandbox")
    broken = dataclasses.replace(SANDBOX, read_only=())  # no /usr inside: the interpreter cannot start
    async with Client(build_server(broken)) as client:
        result = await client.call_tool("execute_python", {"code": "print('ran')"})
    assert result.is_error
    text = result.content[0].text
    assert "the code was not run" in text and "could not start the interpreter" in text


async def test_a_run_cannot_fill_the_disk() -> None:
    if SANDBOX.mechanism != "namespaces":
        pytest.skip("the basic sandbox limits each file, not the total")
    code = """import os
written = 0
try:
    for i in range(100):
        with open(f'chunk-{i}', 'wb') as fh:
            fh.write(b'x' * 1024 * 1024)
        written += 1
except OSError as exc:
    print(written, exc.strerror)
"""
    out = await run(code)
    written, reason = out["stdout"].split(" ", 1)
    assert 0 < int(written) <= 64 and reason.strip() == "No space left on device"
