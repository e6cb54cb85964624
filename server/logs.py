"""Logging to stderr only (stdout is the MCP wire), one line per event, secrets redacted.

Redaction replaces the value of every environment variable that looks like a secret (`*_API_KEY`,
`*_TOKEN`, `*_SECRET`) wherever it appears in a log line, plus bearer-token and `sk-...`-style strings.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping

_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_SECRET_SHAPES = re.compile(r"(Bearer\s+)\S+|\b(sk|pk|gsk|xai)-[A-Za-z0-9_-]{8,}")


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of env vars whose names mark them as secrets (longest first, so overlaps redact fully)."""
    values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "[REDACTED]")
    return _SECRET_SHAPES.sub(lambda m: (m.group(1) or "") + "[REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets removed."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self._secrets)
        record.args = None
        return True


def configure_logging(level: str = "WARNING", env: Mapping[str, str] | None = None) -> None:
    """Send the root logger to stderr with redaction; idempotent."""
    env = os.environ if env is None else env
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secret_values(env)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
