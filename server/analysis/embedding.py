"""Sentence vectors for the learned analysers.

The encoder is WordLlama's `l2_supercat` static embeddings (MIT, 256 dimensions): token vectors distilled
from a large LLM's embedding table, averaged. Its weights and tokenizer ship inside the PyPI wheel, so it
works offline, loads in ~0.2 s and embeds a prompt in well under a millisecond on one core — cheap enough
to run on every call. (The embedded Gemma GGUF in llama.cpp's embedding mode was measured at ~180 ms p50
per short prompt on 2 cores: too slow to sit in front of every request.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.errors import LearnedModelError

if TYPE_CHECKING:  # numpy comes with the [learned] extra; this module must import without it
    import numpy as np

DIMENSIONS = 256
INSTALL_HINT = "pip install 'mcp-model-router[learned]'"
# Only the head and tail of a long text are encoded: a category shows in how a task opens and what it
# asks at the end, and this bounds the work for a 1 MB document.
_HEAD = 6_000
_TAIL = 2_000

_lock = threading.Lock()
_encoder: Any = None


def available() -> bool:
    """Whether the encoder's package is installed (it is part of the `[learned]` extra)."""
    try:
        import wordllama  # noqa: F401
    except ImportError:
        return False
    return True


def _load() -> Any:
    global _encoder
    with _lock:
        if _encoder is None:
            try:
                import wordllama
            except ImportError as exc:
                raise LearnedModelError(f"the sentence encoder is not installed: {INSTALL_HINT}") from exc
            # The wheel carries `weights/` and `tokenizers/`; pointing the cache there (downloads off)
            # makes WordLlama read them instead of trying Hugging Face.
            package = Path(wordllama.__file__).parent
            _encoder = wordllama.WordLlama.load(cache_dir=package, disable_download=True)
        return _encoder


def clip(text: str) -> str:
    """The part of `text` that is encoded."""
    return text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + "\n" + text[-_TAIL:]


def embed(texts: Sequence[str]) -> np.ndarray:
    """One L2-normalised float32 row of `DIMENSIONS` per text."""
    import numpy as np

    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = np.asarray(_load().embed([clip(t) for t in texts]), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
