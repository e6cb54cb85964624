"""Persistent state in one SQLite file in the data dir: the attempt ledger and conversation sessions."""

from server.store.db import Database, open_database
from server.store.ledger import AttemptRecord, Ledger
from server.store.sessions import SessionStore, validate_session_id

__all__ = ["AttemptRecord", "Database", "Ledger", "SessionStore", "open_database", "validate_session_id"]
