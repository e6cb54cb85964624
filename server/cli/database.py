"""`model-router db upgrade` and `db check`: the store's schema, on SQLite or the shared PostgreSQL.

`upgrade` applies the migrations this release knows (replicas also do it when they start, one at a time);
`check` changes nothing and exits 1 when the store cannot be reached or its schema is not this release's,
so a deploy can run it before starting replicas. Connection strings are shown without their password.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from server.cli.common import EXIT_FAILURE


def add_parsers(sub: Any) -> None:
    db = sub.add_parser(
        "db",
        help="check or upgrade the store's schema",
        description="The store is SQLite in the data dir, or the PostgreSQL database of [store] url / "
        "MODEL_ROUTER_DATABASE_URL.",
    )
    commands = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    upgrade = commands.add_parser("upgrade", help="apply missing schema migrations")
    upgrade.set_defaults(run=run_upgrade)
    check = commands.add_parser("check", help="reach the store and compare its schema with this release's")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(run=run_check)
    move = commands.add_parser(
        "import", help="copy a SQLite ledger into the (empty) PostgreSQL store",
        description="Copies attempts, sessions and decisions, in one transaction, from the SQLite ledger into "
        "the PostgreSQL database of [store] url / MODEL_ROUTER_DATABASE_URL.",
    )  # fmt: skip
    move.add_argument("--from", dest="source", type=Path, metavar="PATH",
                      help="the SQLite file (default: router.sqlite3 in the data dir)")  # fmt: skip
    move.set_defaults(run=run_import)


def run_upgrade(args: argparse.Namespace) -> int:
    import anyio

    from server.domain.config import load_config
    from server.store import upgrade_store

    config = load_config(args.config)
    location, before, after = anyio.run(upgrade_store, config.data_dir, config.store.url or None)
    state = "already current" if before == after else f"upgraded from version {before}"
    print(f"{location}: schema version {after} ({state})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    import anyio

    from server.domain.config import load_config
    from server.errors import ConfigError
    from server.store import import_sqlite_ledger
    from server.store.db import DB_FILENAME

    config = load_config(args.config)
    if not config.store.url:
        raise ConfigError("db import needs the PostgreSQL store: set [store] url or MODEL_ROUTER_DATABASE_URL")
    source = args.source or config.data_dir / DB_FILENAME
    if not source.is_file():
        raise ConfigError(f"no SQLite ledger at {source}: name it with --from, or set MODEL_ROUTER_HOME")
    counts = anyio.run(import_sqlite_ledger, source, config.store.url)
    print(f"imported from {source}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def run_check(args: argparse.Namespace) -> int:
    import anyio

    from server.domain.config import load_config
    from server.store import check_store

    config = load_config(args.config)
    status = anyio.run(check_store, config.data_dir, config.store.url or None)
    if args.json:
        print(json.dumps({"backend": status.backend, "location": status.location, "version": status.version,
                          "known": status.known, "latency_ms": round(status.latency_ms, 3)}))  # fmt: skip
    else:
        print(f"{status.backend} {status.location}: schema version {status.version} (this release: "
              f"{status.known}); round trip {status.latency_ms:.1f} ms")  # fmt: skip
    if status.version > status.known:
        print("model-router: the schema is newer than this release: upgrade model-router", file=sys.stderr)
        return EXIT_FAILURE
    if status.version < status.known:
        print("model-router: the schema is behind: run `model-router db upgrade`", file=sys.stderr)
        return EXIT_FAILURE
    return 0
