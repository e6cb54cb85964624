"""A line filter in front of the MCP SDK's stdio transport: an invalid JSON-RPC request gets one error reply.

Invariants: every line that is a request with a readable id, and is invalid, gets exactly one JSON-RPC error
reply and is not passed on (-32700 parse error with id null when the line is not JSON; -32600 invalid request;
-32602 invalid params); an invalid request whose id cannot be read (an object, a float, null) gets -32600
with id null; a notification (no id) and a malformed response get none, as JSON-RPC 2.0 requires; every other
line reaches the SDK byte for byte; the SDK's replies and ours reach the wire as whole lines, never interleaved.

Why not in the SDK: mcp 2.3's stdio transport turns a line its model does not accept into an exception on
the read stream, which the dispatcher logs and drops, so the client waits for its own timeout; and a request
whose id is not a string or an integer validates as a *notification* and is silently ignored. The hook that
sees those exceptions (`JSONRPCDispatcher.on_stream_exception`) is reachable only through private attributes
of `MCPServer`, and it gets the exception, not the line. So the filter sits on the file descriptors before
the SDK claims them: fd 0 and fd 1 become pipes this module pumps, and the SDK's own stdio handling (it moves
fd 1 to stderr while serving, so stray prints miss the wire) stays as it is.

Used by the host (`model-router serve`) and every sub-server; it imports nothing of `server`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from mcp_types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, JSONRPCNotification, jsonrpc_message_adapter

_END = b"\x00model-router: end of the SDK's output\n"  # never a JSON line: tells the outbound pump to stop


class Invalid(Exception):
    """A line that is not a valid JSON-RPC message, with the reply it deserves (None: no reply)."""

    def __init__(self, code: int, message: str, request_id: int | str | None, reply: bool = True) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id, self.reply = code, message, request_id, reply


def check_line(line: bytes) -> bytes | None:
    """The error reply for an invalid request (a JSON line ending in a newline), or None: pass the line on.

    Raises nothing; a line that should be neither answered nor passed on (an invalid notification, a
    malformed response, a blank line) returns `b""`.
    """
    if not line.strip():
        return b""
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError:
        message = None  # the SDK would drop it: find out why, and whom to tell
    if message is not None and not (isinstance(message, JSONRPCNotification) and _has_id(line)):
        return None  # the fast path: one extra parse, by the SDK's own model
    try:
        _diagnose(line)
    except Invalid as invalid:
        if not invalid.reply:
            return b""
        error = {"code": invalid.code, "message": invalid.message}
        reply = {"jsonrpc": "2.0", "id": invalid.request_id, "error": error}
        return json.dumps(reply).encode() + b"\n"
    return b""  # unreachable: `_diagnose` raises for every line the SDK refused


def _has_id(line: bytes) -> bool:
    """Whether a line the SDK read as a notification has a top-level "id" (one it could not read)."""
    if b'"id"' not in line:
        return False
    data = json.loads(line.decode("utf-8", "replace"))
    return isinstance(data, dict) and "id" in data


def _diagnose(line: bytes) -> None:
    """Raise `Invalid` naming what is wrong with a line the SDK's model refused (or read as a notification)."""
    try:
        data = json.loads(line.decode("utf-8", "replace"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Invalid(PARSE_ERROR, f"Parse error: the line is not valid JSON ({exc})", None) from None
    if not isinstance(data, dict):
        kind = "a batch (array)" if isinstance(data, list) else type(data).__name__
        raise Invalid(INVALID_REQUEST, f"Invalid request: a message must be a JSON object, not {kind}", None)
    if "id" not in data:
        if "method" not in data or not isinstance(data.get("method"), str):
            raise Invalid(INVALID_REQUEST, "not a message", None, reply=False)
        raise Invalid(INVALID_REQUEST, "invalid notification", None, reply=False)  # never answered
    request_id = data["id"]
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        shown = json.dumps(request_id)[:40]
        raise Invalid(INVALID_REQUEST, f"Invalid request: id must be a string or an integer, not {shown}", None)
    _check_request(data, request_id)


def _check_request(data: dict[str, Any], request_id: int | str) -> None:
    if "method" not in data and ("result" in data or "error" in data):
        raise Invalid(INVALID_REQUEST, "malformed response", request_id, reply=False)  # never answer a response
    if data.get("jsonrpc") != "2.0":
        shown = json.dumps(data.get("jsonrpc"))[:40]
        raise Invalid(INVALID_REQUEST, f'Invalid request: "jsonrpc" must be "2.0", not {shown}', request_id)
    if "method" not in data:
        raise Invalid(INVALID_REQUEST, 'Invalid request: "method" is missing', request_id)
    if not isinstance(data["method"], str):
        shown = type(data["method"]).__name__
        raise Invalid(INVALID_REQUEST, f'Invalid request: "method" must be a string, not {shown}', request_id)
    params = data.get("params")
    if params is not None and not isinstance(params, dict):
        shown = type(params).__name__
        raise Invalid(INVALID_PARAMS, f'Invalid params: "params" must be an object, not {shown}', request_id)
    where = _lone_surrogate(data)
    if where is not None:
        code = INVALID_PARAMS if where.startswith("params") else INVALID_REQUEST
        raise Invalid(code, f"Invalid {'params' if code == INVALID_PARAMS else 'request'}: the string at "
                            f"{where} has a lone UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode",
                      request_id)  # fmt: skip
    raise Invalid(INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 request the server can read", request_id)


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, else None."""
    if isinstance(value, str):
        return path if any("\ud800" <= ch <= "\udfff" for ch in value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = _lone_surrogate(key, f"{path}.<key>") or _lone_surrogate(item, f"{path}.{key}".lstrip("."))
            if where is not None:
                return where
    if isinstance(value, list):
        for index, item in enumerate(value):
            where = _lone_surrogate(item, f"{path}[{index}]")
            if where is not None:
                return where
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Wire:
    """The real stdout: whole lines, one writer at a time; once the reader is gone, output is dropped."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._broken = False

    def send(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view and not self._broken:
                try:
                    view = view[os.write(self._fd, view) :]
                except OSError:  # the client closed its end: keep draining so the SDK never blocks
                    self._broken = True


def _pump_in(source: int, sdk: int, wire: _Wire) -> None:
    """Client → SDK: answer invalid requests, pass the rest on; EOF from the client is EOF for the SDK."""
    with os.fdopen(source, "rb", closefd=False) as lines, os.fdopen(sdk, "wb", buffering=0) as to_sdk:
        for line in lines:
            reply = check_line(line)
            if reply is None:
                try:
                    to_sdk.write(line)
                except OSError:  # the SDK stopped reading: it is shutting down
                    return
            elif reply:
                wire.send(reply)


def _pump_out(sdk: int, wire: _Wire) -> None:
    """SDK → client, a whole line at a time, until the end marker."""
    with os.fdopen(sdk, "rb") as lines:
        for line in lines:
            if line == _END:
                return
            wire.send(line)


def serve_guarded(serve: Callable[[], None]) -> None:
    """Run `serve` (which serves MCP over fd 0 and fd 1, e.g. `MCPServer.run("stdio")`) behind the filter."""
    client_in, client_out = os.dup(0), os.dup(1)
    to_sdk_read, to_sdk_write = os.pipe()
    from_sdk_read, from_sdk_write = os.pipe()
    os.dup2(to_sdk_read, 0)
    os.dup2(from_sdk_write, 1)
    os.close(to_sdk_read)
    os.close(from_sdk_write)
    wire = _Wire(client_out)
    inbound = threading.Thread(target=_pump_in, args=(client_in, to_sdk_write, wire), name="wire-in", daemon=True)
    outbound = threading.Thread(target=_pump_out, args=(from_sdk_read, wire), name="wire-out", daemon=True)
    inbound.start()
    outbound.start()
    try:
        serve()
    finally:
        # The SDK keeps a private copy of fd 1 open, so its pipe never reaches EOF: a marker ends the pump
        # once everything the SDK wrote before it has gone out (a pipe keeps order).
        os.write(1, _END)
        outbound.join(timeout=10)
