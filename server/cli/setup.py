"""`model-router doctor` and `claude-config`: check an installation, and enter it into Claude Desktop.

The checks live in `server/cli/doctor.py` and the config-file editing in `server/cli/host_config.py`;
both load only when their command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def add_parsers(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check the installation and say how to fix what is broken",
        description="Check the config, data dir, each provider (key present, never its value; local endpoints "
        "reachable), the embedded model (installed, and a 4-token test generation in a separate process, which "
        "finds a llama.cpp build that crashes on this CPU), the configured analyser, and each tool sub-server. "
        "Exit code 1 when something the config needs is broken.",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument(
        "--no-generate", action="store_true", help="skip the embedded model's test generation (a few seconds)"
    )
    doctor.set_defaults(run=run_doctor)

    claude = sub.add_parser(
        "claude-config",
        help="print or install the Claude Desktop entry",
        description="Print a ready mcpServers entry for Claude Desktop (absolute command path, env placeholders "
        "for the keys in use), or merge it into claude_desktop_config.json with --install (keeps every other "
        "entry, writes a backup first, refuses a file it cannot parse).",
    )
    claude.add_argument("--install", action="store_true", help="merge the entry into the config file")
    claude.add_argument("--config-file", type=Path, help="Claude Desktop config file (default: the platform's)")
    claude.set_defaults(run=run_claude_config)


def run_doctor(args: argparse.Namespace) -> int:
    from server.cli.doctor import checks_json, describe, exit_code
    from server.cli.doctor import run_doctor as run_checks

    checks = run_checks(args.config, generate=not args.no_generate)
    if args.json:
        print(json.dumps(checks_json(checks), indent=2))
    else:
        for check in checks:
            print(describe(check))
    return exit_code(checks)


def run_claude_config(args: argparse.Namespace) -> int:
    from server.cli.host_config import default_claude_config_path, install, server_entry
    from server.domain.config import load_config

    entry = server_entry(load_config(args.config), os.environ)
    if not args.install:
        print(json.dumps({"mcpServers": {"model-router": entry}}, indent=2))
        return 0
    path = args.config_file or default_claude_config_path()
    backup = install(path, entry)
    print(f"model-router: added 'model-router' to {path}" + (f" (backup: {backup})" if backup else ""), file=sys.stderr)
    missing = [k for k, v in entry["env"].items() if v.startswith("<")]
    if missing:
        print(f"model-router: replace the placeholders for {', '.join(missing)} with your keys", file=sys.stderr)
    return 0
