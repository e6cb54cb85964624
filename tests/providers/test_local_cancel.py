"""A cancelled call to the embedded model stops its generation instead of waiting for it to finish.

The llama.cpp object is replaced by one that generates a token every 10 ms (the pace of a real model; 1000
tokens take 10 s) and asks its stopping criteria after each, as llama-cpp-python does; the real model's
handling of the criteria is in tests/e2e. Each test cancels once the generation is running, never after a guess.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from server.domain.messages import ChatRequest, Message
from server.providers.llamacpp_local import LlamaCppModel

pytestmark = pytest.mark.anyio


class SlowLlama:
    def __init__(self) -> None:
        self.generated: list[int] = []
        self.running = threading.Event()  # a generation is in progress now
        self.started = threading.Event()  # a generation has begun (stays set)

    def create_completion(self, *, max_tokens: int, stopping_criteria: Any = None, **_: Any) -> dict[str, Any]:
        self.running.set()
        self.started.set()
        try:
            tokens = 0
            while tokens < max_tokens:
                time.sleep(0.01)  # one token's generation time: the behaviour being faked
                tokens += 1
                if stopping_criteria is not None and stopping_criteria([], None):
                    break
            self.generated.append(tokens)
            finish = "length" if tokens == max_tokens else "stop"
            return {"id": "cmpl-1", "choices": [{"text": "x" * tokens, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": tokens}}  # fmt: skip
        finally:
            self.running.clear()


def _model(tmp_path: Path) -> tuple[LlamaCppModel, SlowLlama]:
    model = LlamaCppModel(provider_id="local", data_dir=tmp_path)
    fake = SlowLlama()
    model._llama = fake  # the seam: loading is what the e2e tests cover
    return model, fake


REQUEST = ChatRequest("gemma-3-270m", (Message.user("write a long story"),), max_tokens=1000)


async def _cancel_once_generating(model: LlamaCppModel, fake: SlowLlama) -> None:
    """Start a long generation, and cancel its caller as soon as the model is generating."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(model.chat, REQUEST)
        await anyio.to_thread.run_sync(fake.started.wait)
        tasks.cancel_scope.cancel()


async def test_cancelling_a_local_call_stops_the_generation_before_returning(tmp_path: Path) -> None:
    model, fake = _model(tmp_path)
    await _cancel_once_generating(model, fake)
    assert not fake.running.is_set()  # nothing left generating behind the caller
    assert len(fake.generated) == 1 and fake.generated[0] < REQUEST.max_tokens


async def test_a_call_after_a_cancelled_one_runs_alone_and_answers(tmp_path: Path) -> None:
    model, fake = _model(tmp_path)
    await _cancel_once_generating(model, fake)
    response = await model.chat(ChatRequest("gemma-3-270m", (Message.user("hi"),), max_tokens=3))
    assert response.usage.output_tokens == 3 and response.finish_reason.value == "length"
    assert fake.generated[1] == 3 and fake.generated[0] < REQUEST.max_tokens  # the first had stopped


@pytest.mark.parametrize("max_tokens", [1, 5])
async def test_an_uncancelled_call_is_not_stopped(tmp_path: Path, max_tokens: int) -> None:
    model, fake = _model(tmp_path)
    response = await model.chat(ChatRequest("gemma-3-270m", (Message.user("hi"),), max_tokens=max_tokens))
    assert fake.generated == [max_tokens] and response.usage.output_tokens == max_tokens
