"""A dead Ollama is skipped without a connection attempt per call, and `models`/`doctor` agree with routing."""

from __future__ import annotations

import os
import socket

from server.domain.config import load_config
from server.domain.registry import Registry
from server.providers.reachability import EndpointProbe
from server.routing.router import model_rows
from tests.helpers import run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_probe_answers_from_its_cache_until_the_ttl_passes() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    clock = Clock()
    probe = EndpointProbe(ttl_s=15, clock=clock)
    config = load_config(env=os.environ)
    ollama = config.providers["ollama"].model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1"})
    assert probe(ollama) is None
    listener.close()
    clock.now = 14.0
    assert probe(ollama) is None  # still cached: no connection attempt
    clock.now = 15.0
    problem = probe(ollama)
    assert problem is not None and f"nothing answers at http://127.0.0.1:{port}/v1" in problem
    assert "ollama serve" in problem


def test_a_dead_ollama_is_unavailable_in_routing_and_in_the_model_list(tmp_path) -> None:
    user = tmp_path / "router.toml"
    user.write_text('[providers.ollama]\nbase_url = "http://127.0.0.1:9/v1"\n')  # nothing listens on port 9
    registry = Registry(load_config(user, env=os.environ), {}, local_runtime=lambda: True, probe=EndpointProbe())
    qwen = registry.resolve("ollama/qwen3:1.7b")
    assert qwen is not None and not registry.is_available(qwen)
    row = next(r for r in model_rows(registry) if r["id"] == "ollama/qwen3:1.7b")
    assert row["available"] is False and "nothing answers at http://127.0.0.1:9/v1" in str(row["availability"])
    listed = run_cli("models", "--available", "--json", "--config", str(user), home=tmp_path)
    assert "ollama/qwen3:1.7b" not in listed.stdout
