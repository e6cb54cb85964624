"""The memory store: items keyed by a label, with full-text search ranked by BM25.

Invariants: one SQLite file in WAL mode; the FTS index is written in the same transaction as the item,
so they never disagree; any user text is a valid query (it is tokenised here and each word quoted, so
FTS5 operators, quotes and parentheses in it are just words); each thread has its own connection, so
threads and processes can write at once (SQLite serialises them with a busy timeout).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_KEY_CHARS = 200
MAX_CONTENT_BYTES = 1_000_000
MAX_METADATA_BYTES = 20_000
BUSY_TIMEOUT_S = 10
_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS items (
        key TEXT PRIMARY KEY, content TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
        key, content, tokenize = 'porter unicode61')""",
]


class MemoryInputError(ValueError):
    """Input the store refuses; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Hit:
    key: str
    content: str
    metadata: dict[str, Any]
    score: float
    updated_at: float


def default_path(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """`$MEMORY_DB`, else `$MODEL_ROUTER_HOME/memory.sqlite3`, else the platform's user data dir."""
    env = os.environ if env is None else env
    if env.get("MEMORY_DB"):
        return Path(env["MEMORY_DB"]).expanduser()
    if env.get("MODEL_ROUTER_HOME"):
        return Path(env["MODEL_ROUTER_HOME"]).expanduser() / "memory.sqlite3"
    import platformdirs

    return Path(platformdirs.user_data_dir("model-router", appauthor=False)) / "memory.sqlite3"


def fts_query(text: str, operator: str = "OR") -> str:
    """User text → an FTS5 query over its words (each quoted: never a syntax error), joined by AND or OR."""
    words = list(dict.fromkeys(_WORD.findall(text)))[:64]
    return f" {operator} ".join('"' + w.replace('"', '""') + '"' for w in words)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out other processes opening the same new file (two hosts start at once).

    SQLite can answer "database is locked" here at once, without its busy handler, where waiting could
    deadlock. `server.store.db` does the same; this package never imports the router.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


class MemoryStore:
    def __init__(self, path: Path, *, common_docs: int = 5_000) -> None:
        self.path = path
        self.common_docs = common_docs
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._connect()
        for statement in _SCHEMA:
            conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (worker threads are reused; opening one per call cost more than a search)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            _enable_wal(conn)
            self._local.conn = conn
        return conn

    def store(self, key: str, content: str, metadata: dict[str, Any]) -> bool:
        """Insert or replace; True when the key was new."""
        meta = _validate(key, content, metadata)
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT rowid, created_at FROM items WHERE key = ?", (key,)).fetchone()
            if row:
                conn.execute("DELETE FROM items_fts WHERE rowid = ?", (row[0],))
                conn.execute("UPDATE items SET content = ?, metadata = ?, updated_at = ? WHERE key = ?",
                             (content, meta, now, key))  # fmt: skip
                rowid = row[0]
            else:
                cur = conn.execute("INSERT INTO items (key, content, metadata, created_at, updated_at) "
                                   "VALUES (?, ?, ?, ?, ?)", (key, content, meta, now, now))  # fmt: skip
                rowid = cur.lastrowid
            conn.execute("INSERT INTO items_fts (rowid, key, content) VALUES (?, ?, ?)", (rowid, key, content))
            conn.execute("COMMIT")
            return row is None
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def search(self, query: str, top_k: int) -> list[Hit]:
        """Items with all the query's words first (cheap: a small intersection), then any of its distinctive
        words, then any of its words at all."""
        if not fts_query(query):
            raise MemoryInputError("the query has no words to search for; pass some text")
        conn = self._connect()
        rows = self._ranked(conn, fts_query(query, "AND"), top_k)
        words = fts_query(query).split(" OR ")
        distinctive = [w for w in words if not self._common(conn, w)]
        for relaxed in (distinctive, words):
            if len(rows) >= top_k or not relaxed:
                continue
            seen = {r[0] for r in rows}
            rows += [r for r in self._ranked(conn, " OR ".join(relaxed), top_k) if r[0] not in seen]
        return [Hit(k, c, json.loads(m), round(-r, 4), u) for k, c, m, r, u in rows[:top_k]]

    def _common(self, conn: sqlite3.Connection, word: str) -> bool:
        """Whether a quoted word is in more than `common_docs` items: ranking every item that has a word that
        common costs far more than it tells (its BM25 weight is near zero), so it is left for last."""
        count = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ? LIMIT ?)",
            (word, self.common_docs + 1),
        ).fetchone()[0]
        return bool(count > self.common_docs)

    @staticmethod
    def _ranked(conn: sqlite3.Connection, match: str, limit: int) -> list[tuple]:
        # Rank inside FTS5 first (its own top-k over `rank`), then fetch only the winners' rows.
        return conn.execute(
            "SELECT i.key, i.content, i.metadata, top.rank, i.updated_at FROM "
            "(SELECT rowid, rank FROM items_fts WHERE items_fts MATCH ? ORDER BY rank LIMIT ?) AS top "
            "JOIN items i ON i.rowid = top.rowid ORDER BY top.rank",
            (match, limit),
        ).fetchall()

    def delete(self, key: str) -> bool:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT rowid FROM items WHERE key = ?", (key,)).fetchone()
            if row:
                conn.execute("DELETE FROM items_fts WHERE rowid = ?", (row[0],))
                conn.execute("DELETE FROM items WHERE rowid = ?", (row[0],))
            conn.execute("COMMIT")
            return row is not None
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def list(self, limit: int) -> tuple[list[Hit], int]:
        conn = self._connect()
        total = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        rows = conn.execute("SELECT key, content, metadata, updated_at FROM items ORDER BY updated_at DESC "
                            "LIMIT ?", (limit,)).fetchall()  # fmt: skip
        return [Hit(k, c, json.loads(m), 0.0, u) for k, c, m, u in rows], total


def _validate(key: str, content: str, metadata: dict[str, Any]) -> str:
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise MemoryInputError(f"key must be 1-{MAX_KEY_CHARS} characters")
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise MemoryInputError(
            f"content is {size:,} bytes; the limit is {MAX_CONTENT_BYTES:,}. Store a summary or split it"
        )
    if not isinstance(metadata, dict):
        raise MemoryInputError("metadata must be a JSON object")
    text = json.dumps(metadata, ensure_ascii=False)
    size = len(text.encode("utf-8", "surrogatepass"))  # bytes, as the limit says: "é" is 2, "😀" is 4
    if size > MAX_METADATA_BYTES:
        raise MemoryInputError(
            f"metadata is {size:,} bytes of UTF-8 JSON; the limit is {MAX_METADATA_BYTES:,} bytes. Keep it small"
        )
    return text
