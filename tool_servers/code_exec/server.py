"""MCP tools: execute_python (sandboxed, see `sandbox`) and validate_python_syntax.

The execute_python description is written from the probed sandbox, so it never promises isolation this
machine does not give; in strict mode (`CODE_EXEC_STRICT=1`) a run that the sandbox cannot fully
isolate is refused instead.
"""

from __future__ import annotations

import ast
from typing import Annotated

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from tool_servers._common import reason, run_stdio
from tool_servers._strict_args import strict_arguments
from tool_servers.code_exec.sandbox import MAX_OUTPUT_BYTES, Sandbox, SandboxError, probe_sandbox, run_python

MAX_CODE_CHARS = 200_000
MAX_PARALLEL_RUNS = 2


class Execution(BaseModel):
    exit_code: int | None = Field(description="0 on success; negative: killed by that signal number")
    timed_out: bool
    killed_signal: str | None
    duration_ms: float
    stdout: str
    stderr: str
    stdout_truncated: bool = Field(description=f"More than {MAX_OUTPUT_BYTES} bytes were printed; the rest dropped")
    stderr_truncated: bool
    protections: list[str] = Field(description="Isolation actually in force for this run")


class SyntaxCheck(BaseModel):
    valid: bool
    message: str
    line: int | None = None
    column: int | None = None


def build_server(sandbox: Sandbox) -> MCPServer:
    mcp = MCPServer(
        name="code_exec",
        instructions=f"Run Python in a sandbox with CPU/memory/process limits. {sandbox.describe()}",
    )
    slots = anyio.Semaphore(MAX_PARALLEL_RUNS)

    @mcp.tool(description=f"Execute Python code in a sandbox and return exit code, output and timing; standard "
                          f"library only, a fresh directory per run. {sandbox.describe()}",
              annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                          open_world_hint=False))  # fmt: skip
    async def execute_python(
        code: Annotated[
            str,
            Field(
                description="Python 3 source to run; print what you want to see",
                min_length=1,
                max_length=MAX_CODE_CHARS,
            ),
        ],
        timeout_s: Annotated[int, Field(description="Wall-clock limit in seconds", ge=1, le=60)] = 10,
    ) -> Execution:
        refusal = sandbox.refusal()
        if refusal:
            raise ToolError(refusal)
        async with slots:
            try:
                result = await anyio.to_thread.run_sync(run_python, code, float(timeout_s), sandbox)
            except (SandboxError, OSError) as exc:
                raise ToolError(f"the code was not run: the sandbox could not be set up ({reason(exc)})") from exc
        return Execution(**result.__dict__)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False))
    def validate_python_syntax(
        code: Annotated[str, Field(description="Python 3 source to check", max_length=MAX_CODE_CHARS)],
    ) -> SyntaxCheck:
        """Check Python code for syntax errors without running it."""
        try:
            ast.parse(code)
        except SyntaxError as exc:
            return SyntaxCheck(valid=False, message=f"{exc.msg} (line {exc.lineno}, column {exc.offset})",
                               line=exc.lineno, column=exc.offset)  # fmt: skip
        except (ValueError, RecursionError) as exc:  # null bytes, absurd nesting
            raise ToolError(f"cannot parse this code: {reason(exc)}") from exc
        return SyntaxCheck(valid=True, message="valid Python syntax")

    return strict_arguments(mcp)  # no coercion, no unknown arguments: see tool_servers/_strict_args.py


def main() -> None:
    run_stdio(build_server(probe_sandbox()))
