"""A module-level server object for `mcp dev server/mcp/entry.py` and `mcp run server/mcp/entry.py`.

Those tools import a file and look for a global named `mcp`, `server` or `app`, so this one module loads
the configuration at import (from `MODEL_ROUTER_CONFIG` and the environment, like `model-router serve`).
Everything else in the package keeps import free of side effects.
"""

from __future__ import annotations

import os

from server.domain.config import load_config
from server.domain.registry import Registry
from server.mcp.app import build_server
from server.providers.reachability import EndpointProbe
from server.routing.router import Router

server = build_server(Router(Registry(load_config(), os.environ, probe=EndpointProbe())))
