"""Sandboxed Python execution: a fresh interpreter per run, in its own Linux namespaces where the kernel allows."""
