"""Sentence embeddings for the head student, with an on-disk cache so a killed training run does not embed twice.

The cache maps SHA-1 of a text to its MiniLM vector; it is saved to ``<out>/checkpoint/embeddings.npz`` after every
batch of new texts, so a rerun of ``distill train`` with the same ``--out`` picks up where the last one stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

BATCH = 256
SAVE_EVERY_S = 15.0
Tick = Callable[[int], None]  # texts embedded since the last call


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """``embed(texts)`` → float32 (n, 384), unit rows; new texts are embedded in batches and cached."""

    def __init__(self, model: Any, path: Path | None = None, tick: Tick | None = None) -> None:
        self._model = model
        self._path = path
        self._tick = tick
        self._vectors: dict[str, np.ndarray] = {}
        self.loaded = 0
        self._saved_at = time.monotonic()
        if path is not None and path.is_file():
            import numpy as np

            with np.load(path) as data:
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            self.loaded = len(self._vectors)

    @classmethod
    def minilm(cls, path: Path | None = None, tick: Tick | None = None) -> CachedEmbedder:
        from tokenomy.embeddings.minilm import MiniLMEmbedder

        return cls(MiniLMEmbedder.load(), path, tick)

    def missing(self, texts: list[str]) -> int:
        return len({_key(t) for t in texts} - self._vectors.keys())

    def __call__(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        keys = [_key(t) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        by_key = dict(zip(keys, texts, strict=True))
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            vectors = self._model.embed([by_key[k] for k in batch]).vectors
            self._vectors.update(zip(batch, vectors, strict=True))
            if time.monotonic() - self._saved_at >= SAVE_EVERY_S or start + BATCH >= len(todo):
                self._save()
            if self._tick is not None:
                self._tick(len(batch))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        if self._path is None or not self._vectors:
            return
        import numpy as np

        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(self._vectors)), vectors=np.stack(list(self._vectors.values())))
        tmp.replace(self._path)
