"""Pick a sentence embedder by name (the name a router directory records)."""

from __future__ import annotations

from typing import Any

from tokenomy.errors import ConfigError

EMBEDDERS = ("all-minilm-l6-v2", "wordllama-l2-supercat")
# Fastest first, by one decision's cost on this box (docs/routing.md, "Decision latency"): WordLlama is a static
# lookup (~1-2 ms a decision), MiniLM a 6-layer transformer (~15-20 ms on a 128 + 128-character window).
SPEED_RANK = {"wordllama-l2-supercat": 0, "all-minilm-l6-v2": 1}


def load_embedder(name: str, *, threads: int = 1) -> Any:
    """An object with ``embed(texts) -> EmbeddingResult`` and ``dimensions``."""
    if name == "all-minilm-l6-v2":
        from tokenomy.embeddings.minilm import MiniLMEmbedder

        return MiniLMEmbedder.load(threads=threads)
    if name == "wordllama-l2-supercat":
        from tokenomy.embeddings.static import WordLlamaEmbedder

        return WordLlamaEmbedder.load()
    raise ConfigError(f"unknown embedder '{name}'; known: {', '.join(EMBEDDERS)}")
