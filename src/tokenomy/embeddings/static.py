"""WordLlama static token embeddings (256-d, 16 MB, shipped inside the ``wordllama`` wheel; no network).

About 40× faster than MiniLM on this box (a routing decision in ~0.5–1 ms instead of ~15 ms) at a cost in
quality: see docs/routing.md. Loaded with the wheel's own folder as its cache and downloads disabled (the plain
``WordLlama.load()`` looks in the wrong folder and would try the network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenomy.embeddings.minilm import EmbeddingResult
from tokenomy.errors import ConfigError


class WordLlamaEmbedder:
    model_id = "wordllama-l2-supercat"
    dimensions = 256

    def __init__(self, model: Any) -> None:
        self._model = model

    @classmethod
    def load(cls) -> WordLlamaEmbedder:
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise ConfigError("the wordllama embedder needs the route extra: pip install 'tokenomy[route]'") from exc
        return cls(WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True))

    def embed(self, texts: list[str]) -> EmbeddingResult:
        import numpy as np

        if not texts:
            return EmbeddingResult(np.zeros((0, self.dimensions), dtype=np.float32), 0)
        vectors = np.asarray(self._model.embed(list(texts)), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        return EmbeddingResult(vectors, 0)
