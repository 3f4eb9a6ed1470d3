"""Pick a sentence embedder by name (the name a router directory records)."""

from __future__ import annotations

from typing import Any

from tokenomy.errors import ConfigError

EMBEDDERS = ("all-minilm-l6-v2", "wordllama-l2-supercat")


def load_embedder(name: str, *, threads: int = 1) -> Any:
    """An object with ``embed(texts) -> EmbeddingResult`` and ``dimensions``."""
    if name == "all-minilm-l6-v2":
        from tokenomy.embeddings.minilm import MiniLMEmbedder

        return MiniLMEmbedder.load(threads=threads)
    if name == "wordllama-l2-supercat":
        from tokenomy.embeddings.static import WordLlamaEmbedder

        return WordLlamaEmbedder.load()
    raise ConfigError(f"unknown embedder '{name}'; known: {', '.join(EMBEDDERS)}")
