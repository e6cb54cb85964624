"""The real embedded model, end to end: no fakes anywhere.

1. `model-router complete` with no keys answers through `local/gemma-3-270m` (llama-cpp-python in
   process) with real token counts and cost 0.
2. llama-cpp-python's own OpenAI-compatible server on loopback, serving the same GGUF, configured as an
   OpenAI-compatible provider, answers `complete` over a real stdio MCP session.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from mcp.client import Client

from tests.helpers import accepting, free_port, run_cli, wait_until
from tests.test_readme import marked_command

pytestmark = pytest.mark.slow
llama_cpp = pytest.importorskip("llama_cpp", reason="needs the [local] extra: pip install 'mcp-model-router[local]'")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from server.providers.llamacpp_local import model_file

    return model_file(tmp_path_factory.mktemp("models"))


def test_the_readme_run_command_answers_with_the_embedded_model(tmp_path: Path, gguf: Path) -> None:
    """The README's run command, past its install step, with no keys (plus --json to read the result)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / gguf.name).symlink_to(gguf)
    command = shlex.split(marked_command("run-command").split("&&")[-1])
    assert command[0] == ".venv/bin/model-router"
    done = run_cli(*command[1:], "--json", "--max-tokens", "64", home=tmp_path,
                   env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # stdout is pure JSON: llama.cpp's chatter went to stderr
    assert data["model_used"] == "local/gemma-3-270m"
    assert "Paris" in data["response"]  # the quick start's question is one the 270M model gets right
    assert data["input_tokens"] > 10 and data["output_tokens"] > 0
    assert data["cost_usd"] == 0.0


@pytest.fixture
def llama_server(gguf: Path) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
         str(port), "--n_ctx", "2048", "--model_alias", "gemma-3-270m"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(accepting(port, proc), within=300, what="llama_cpp.server accepting connections")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.anyio
async def test_llama_cpp_server_as_an_openai_compatible_provider(tmp_path: Path, llama_server: str) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        "[providers.llamaserver]\n"
        'kind = "openai"\n'
        f'base_url = "{llama_server}"\n'
        "self_hosted = true\n"
        "timeout_s = 120\n"
        "[[models]]\n"
        'id = "llamaserver/gemma-3-270m"\n'
        'api_model_id = "gemma-3-270m"\n'
        "tier = 4\n"
        "context_window = 2048\n"
        "input_price = 0.0\n"
        "output_price = 0.0\n"
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "serve"],
        env={"MODEL_ROUTER_HOME": str(tmp_path), "MODEL_ROUTER_CONFIG": str(config)},
    )
    async with Client(params, mode="legacy") as client:
        result = await client.call_tool(
            "complete",
            {"task": "What is the capital of France?", "force_model": "llamaserver/gemma-3-270m",
             "max_tokens": 24, "enable_tools": False},
            read_timeout_seconds=240,
        )  # fmt: skip
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["model_used"] == "llamaserver/gemma-3-270m"
    assert data["input_tokens"] > 0 and data["output_tokens"] > 0 and data["cost_usd"] == 0.0


def test_the_real_model_ends_a_generation_when_asked_to_stop(gguf: Path) -> None:
    """llama-cpp-python calls the stop check `chat` relies on for cancellation after every token."""
    from server.domain.messages import ChatRequest, Message
    from server.providers.llamacpp_local import LlamaCppModel

    model = LlamaCppModel(provider_id="local", data_dir=gguf.parent.parent)
    request = ChatRequest("gemma-3-270m", (Message.user("Write a short poem about the sea."),), max_tokens=48)
    free = model.generate(request)
    stop = threading.Event()
    stop.set()
    stopped = model.generate(request, stop)
    assert free["usage"]["completion_tokens"] > 1
    assert stopped["usage"]["completion_tokens"] <= 1 and stopped["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "task",
    ["Remember that my favourite colour is teal", "Write a Python function that reverses a string and run it."],
)
def test_with_no_keys_and_no_ollama_a_tool_task_runs_on_the_embedded_model_without_tools(
    tmp_path: Path, gguf: Path, task: str
) -> None:
    """The first run a newcomer meets: no key, Ollama not running; the task wants tools nobody here offers."""
    from server.routing.selector import TOOLS_DROPPED

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / gguf.name).symlink_to(gguf)
    config = tmp_path / "router.toml"
    config.write_text('[providers.ollama]\nbase_url = "http://127.0.0.1:9/v1"\n')  # nothing listens on port 9
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MODEL_ROUTER_CONFIG": str(config)}
    done = run_cli("complete", task, "--json", "--max-tokens", "48", home=tmp_path, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model_used"] == "local/gemma-3-270m" and data["response"].strip()
    assert [a["model"] for a in data["attempts"]] == ["local/gemma-3-270m"]  # the dead Ollama was never tried
    assert any(r.startswith(TOOLS_DROPPED) for r in data["route"]["reasons"])
    assert f"note: {TOOLS_DROPPED}" in done.stderr
