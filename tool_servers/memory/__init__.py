"""Long-term memory: SQLite with FTS5/BM25 ranking, persistent across restarts, safe for concurrent writers."""
