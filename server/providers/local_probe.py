"""A short real generation with the embedded model, run by `doctor` in its own process.

A llama.cpp build that does not suit the CPU dies on its first generation with SIGSEGV or SIGILL, which
no Python handler can catch: run here, the crash costs only this process, and `doctor` reads the signal.

    python -m server.providers.local_probe DATA_DIR      prints {"tokens", "seconds", "model_file"} as JSON
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from server.domain.messages import ChatRequest, Message
from server.providers.llamacpp_local import LlamaCppModel, model_file

PROBE_TASK = "Say hello."


def probe(data_dir: Path) -> dict[str, object]:
    """Load the model (assembling the GGUF if needed) and generate a few tokens; raises what loading raises."""
    started = time.perf_counter()
    path = model_file(data_dir)
    model = LlamaCppModel(provider_id="local", data_dir=data_dir, threads=None)
    result = model.generate(ChatRequest("gemma-3-270m", (Message.user(PROBE_TASK),), max_tokens=4))
    return {
        "tokens": result["usage"]["completion_tokens"],
        "seconds": round(time.perf_counter() - started, 2),
        "model_file": str(path),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(probe(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
