"""The shared PostgreSQL store from the command line, as an operator meets it: `db check` / `db upgrade`,
`doctor`'s database check, a password that never shows, a schema newer than the release refused, and an
existing SQLite ledger moved in with `db import`."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from server.store import open_store
from server.store.interface import LoggedRoute, ReportWindow
from server.store.postgres.schema import MIGRATIONS
from server.store.usage import DIMENSIONS
from tests.helpers import attempt_record, free_port, run_cli
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.slow


def _env(url: str) -> dict[str, str]:
    return {"MODEL_ROUTER_DATABASE_URL": url}


def test_db_check_then_upgrade_then_doctor(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    behind = run_cli("db", "check", home=tmp_path, env=_env(url))
    assert behind.returncode == 1 and "db upgrade" in behind.stderr
    assert "schema version 0" in behind.stdout

    upgraded = run_cli("db", "upgrade", home=tmp_path, env=_env(url))
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"schema version {len(MIGRATIONS)} (upgraded from version 0)" in upgraded.stdout
    again = run_cli("db", "upgrade", home=tmp_path, env=_env(url))
    assert "already current" in again.stdout

    checked = run_cli("db", "check", "--json", home=tmp_path, env=_env(url))
    assert checked.returncode == 0, checked.stderr
    status = json.loads(checked.stdout)
    assert (status["backend"], status["version"], status["known"]) == ("postgresql", len(MIGRATIONS), len(MIGRATIONS))
    assert status["latency_ms"] >= 0

    doctor = run_cli("doctor", "--json", "--no-generate", home=tmp_path, env=_env(url), timeout=300)
    [database] = [c for c in json.loads(doctor.stdout) if c["name"] == "database"]
    assert database["status"] == "ok" and "postgresql://postgres@127.0.0.1" in database["detail"]
    assert "round trip" in database["detail"]


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://router:s3cret-pw-991@127.0.0.1:1/ledger"  # nothing listens on port 1
    checked = run_cli("db", "check", home=tmp_path, env=_env(url))
    assert checked.returncode == 1
    assert "cannot open the database postgresql://router@127.0.0.1:1/ledger" in checked.stderr
    doctor = run_cli("doctor", "--json", "--no-generate", home=tmp_path, env=_env(url), timeout=300)
    [database] = [c for c in json.loads(doctor.stdout) if c["name"] == "database"]
    assert database["status"] == "error" and "MODEL_ROUTER_DATABASE_URL" in database["fix"]
    assert "s3cret-pw-991" not in checked.stdout + checked.stderr + doctor.stdout + doctor.stderr


def test_a_password_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('[store]\nurl = "postgresql://router:hunter2@db.internal/ledger"\n')
    done = run_cli("db", "check", home=tmp_path, env={"MODEL_ROUTER_CONFIG": str(config)})
    assert done.returncode == 1
    assert "store.url holds a password" in done.stderr and "PGPASSWORD" in done.stderr
    assert "hunter2" not in done.stderr


def test_a_replica_refuses_a_schema_newer_than_it_knows(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    assert run_cli("db", "upgrade", home=tmp_path, env=_env(url)).returncode == 0
    postgres_server.admin(f"INSERT INTO schema_migrations (version, name) VALUES ({len(MIGRATIONS) + 1}, 'next')",
                          url.rsplit("/", 1)[1])  # fmt: skip
    serve = ["serve", "--transport", "streamable-http", "--port", str(free_port())]
    for command in (["db", "upgrade"], ["decisions"], serve):
        done = run_cli(*command, home=tmp_path, env=_env(url))
        assert done.returncode == 1
        assert "newer than this model-router understands" in done.stderr, done.stderr


def test_sqlite_needs_no_database_server(tmp_path: Path) -> None:
    done = run_cli("db", "upgrade", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(tmp_path / "router.sqlite3")) and "upgraded from version 0" in done.stdout
    assert run_cli("db", "check", home=tmp_path).returncode == 0


def test_db_import_moves_a_sqlite_ledger_and_its_reports_agree(postgres_server: PostgresServer, tmp_path: Path) -> None:
    day = 86_400.0
    records = [
        attempt_record(f"t{i % 7}", cost=None if i % 6 == 5 else f"0.00{i % 9 + 1}", when=1_790_000_000 + i * 5_000,
                       session_id=("s1", "s2", None)[i % 3], attempt_no=i, model=("openai/gpt-4.1", "openai/o3")[i % 2])
        for i in range(40)
    ]  # fmt: skip
    route = LoggedRoute("qa_retrieval", 2, 0.25, "openai/gpt-4.1-mini", ("openai/gpt-4.1",), 0.0012, ("cheap",))

    async def fill() -> None:
        store = await open_store(tmp_path)
        for record in records:
            await store.ledger.record(record)
        await store.sessions.append("s1", [("user", "hello"), ("assistant", "hi")])
        await store.decisions(analyzer_version="a", config_fingerprint="c", price_table_version="p").record(
            "route", "What is 2+2?", {}, route
        )
        await store.aclose()

    anyio.run(fill)
    url = postgres_server.create_database()
    done = run_cli("db", "import", home=tmp_path, env=_env(url))
    assert done.returncode == 0, done.stderr
    assert "40 attempts, 1 sessions, 2 messages, 1 decisions" in done.stdout

    async def reports() -> list[object]:
        found = []
        for source in (await open_store(tmp_path), await open_store(tmp_path, url)):
            window = ReportWindow(since=1_790_000_000 + 0.5 * day, until=1_790_000_000 + 2.2 * day)
            rows = await source.reports.report_rows(window, DIMENSIONS, accuracy_samples=5)
            found.append((rows.sums, await source.sessions.history("s1"), len(await source.ledger.attempts())))
            await source.aclose()
        return found

    lite, pg = anyio.run(reports)
    assert lite == pg
    again = run_cli("db", "import", home=tmp_path, env=_env(url))
    assert again.returncode == 1 and "already holds 40 attempts" in again.stderr
