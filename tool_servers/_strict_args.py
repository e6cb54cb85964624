"""Tool arguments checked strictly against the input schema each tool publishes, before the SDK sees them.

Invariants: a `tools/call` whose arguments the tool's published `inputSchema` does not accept exactly is
answered with a tool error (`isError`) naming every wrong argument and what it expects, and the tool does not
run: no string for an integer or a boolean (`"100"`, `"yes"`), no boolean for an integer (`true`), no number
for a boolean (`1`), no argument the tool does not declare (named in the error). What a client reads in
`tools/list` is what is enforced.

Why a middleware and not the SDK's own validation: `MCPServer` builds each tool's arguments model with
pydantic's lax mode and ignores unknown keys, and the model's config is not public; the server middleware
chain (`MCPServer.middleware`) is. JSON Schema's types are strict where lax pydantic is not (`true` is not an
integer, `"1"` is not a number), so checking the published schema closes the gap without touching each
parameter. Shared by the host and every sub-server; it imports nothing of `server`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

_TYPE_NAMES = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string",
               "object": "a JSON object", "array": "a JSON array", "null": "null"}  # fmt: skip


class StrictArguments:
    """Server middleware: refuse a tool call whose arguments do not match the tool's input schema exactly."""

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._validators: dict[str, Draft202012Validator] | None = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        name, arguments = ctx.params.get("name"), ctx.params.get("arguments")
        validators = await self._schemas()
        if not isinstance(name, str) or name not in validators or not isinstance(arguments, Mapping | None):
            return await call_next(ctx)  # an unknown tool or a malformed call: the SDK's own error
        problems = wrong_arguments(validators[name], dict(arguments or {}))
        if not problems:
            return await call_next(ctx)
        text = f"{name} was not run: " + "; ".join(problems) + ". Fix the arguments and call it again."
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    async def _schemas(self) -> dict[str, Draft202012Validator]:
        if self._validators is None:  # tools are registered before serving starts and never change after
            tools = await self._server.list_tools()
            self._validators = {tool.name: Draft202012Validator(_closed(tool.input_schema)) for tool in tools}
        return self._validators


def _closed(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with unknown top-level arguments refused (the SDK publishes it open)."""
    return {**schema, "additionalProperties": False}


def wrong_arguments(validator: Draft202012Validator, arguments: dict[str, Any]) -> list[str]:
    """One readable line per argument of the wrong type, unknown or missing; empty when there is none.

    Value constraints (lengths, bounds, enums) are left to the SDK's own validation, which already enforces
    them with messages that name the limit.
    """
    errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(error, validator.schema) for error in errors if _is_about_kind(error, validator)]


def _is_about_kind(error: ValidationError, validator: Draft202012Validator) -> bool:
    """Whether an error is about an argument's JSON type or presence, not about its value."""
    if error.validator in ("type", "additionalProperties", "required"):
        return True
    if error.validator in ("anyOf", "oneOf") and isinstance(error.validator_value, list):  # `T | None`
        kinds = [option.get("type") for option in error.validator_value if isinstance(option, dict)]
        return bool(kinds) and all(
            isinstance(kind, str) and not validator.is_type(error.instance, kind) for kind in kinds
        )
    return False


def _describe(error: ValidationError, schema: Mapping[str, Any]) -> str:
    if error.validator == "additionalProperties":
        declared = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(declared)) if isinstance(error.instance, dict) else []
        return f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (accepted: " \
               f"{', '.join(declared) or 'none'})"  # fmt: skip
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    got = json.dumps(error.instance)[:60]
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_NAMES.get(str(kind), str(kind)) for kind in kinds)
        return f"{where} must be {expected}, not {got}"
    if error.validator in ("anyOf", "oneOf"):
        return f"{where} must be {_expected(error.validator_value)}, not {got}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return f"{where}: {error.message}"


def _expected(options: Any) -> str:
    kinds = [option.get("type") for option in options if isinstance(option, dict)] if isinstance(options, list) else []
    return " or ".join(_TYPE_NAMES.get(str(kind), str(kind)) for kind in kinds if kind) or "of the declared type"


def strict_arguments(server: MCPServer) -> MCPServer:
    """Install `StrictArguments` on a server (innermost, after the SDK's own middleware) and return it."""
    server.middleware.append(StrictArguments(server))
    return server
