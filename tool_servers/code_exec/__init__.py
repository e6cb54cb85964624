"""Sandboxed Python execution: a fresh interpreter per run with limits, no secrets and no network."""
