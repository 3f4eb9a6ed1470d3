"""Async embedding for the gateway: straight to a worker thread, or micro-batched so that concurrent callers
(``/v1/embeddings`` requests, semantic-cache lookups) share one model call.

A CPU embedder pays a fixed cost per call (thread hop, session run, padding to the batch's longest text); one call
for 32 short texts costs far less than 32 calls. ``BatchedEmbedder`` gathers texts with a ``MicroBatcher``, embeds
each distinct text of a batch once, and hands every caller its own rows back.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from tokenomy.embeddings.minilm import EmbeddingResult
from tokenomy.microbatch import MicroBatcher


class AsyncEmbedder(Protocol):
    dimensions: int

    async def embed(self, texts: list[str]) -> EmbeddingResult: ...


class DirectEmbedder:
    """One worker-thread call per caller."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.dimensions: int = embedder.dimensions

    async def embed(self, texts: list[str]) -> EmbeddingResult:
        result: EmbeddingResult = await asyncio.to_thread(self.embedder.embed, texts)
        return result


class BatchedEmbedder:
    """Concurrent callers' texts embedded together (at most ``max_batch`` per model call)."""

    def __init__(self, embedder: Any, *, max_batch: int, max_wait_ms: float, max_inflight: int = 1) -> None:
        self.embedder = embedder
        self.dimensions: int = embedder.dimensions
        self.batcher: MicroBatcher[str, tuple[Any, int]] = MicroBatcher(self._run, max_batch=max_batch,
                                                                         max_wait_ms=max_wait_ms,
                                                                         max_inflight=max_inflight)

    async def embed(self, texts: list[str]) -> EmbeddingResult:
        import numpy as np

        rows = await self.batcher.submit_many(texts)
        vectors = np.stack([v for v, _ in rows]) if rows else np.zeros((0, self.dimensions), dtype=np.float32)
        counts = tuple(n for _, n in rows)
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(counts), token_counts=counts)

    async def _run(self, texts: list[str]) -> list[tuple[Any, int]]:
        distinct = list(dict.fromkeys(texts))
        result: EmbeddingResult = await asyncio.to_thread(self.embedder.embed, distinct)
        counts = result.token_counts or (0,) * len(distinct)
        found = {text: (result.vectors[i], counts[i]) for i, text in enumerate(distinct)}
        return [found[text] for text in texts]


class LazyEmbedder:
    """The local embedding model, loaded on first use (``/v1/embeddings``, the semantic cache) in a worker thread and
    then shared; micro-batched across callers unless ``batching`` is None."""

    def __init__(self, batching: Any) -> None:
        self._batching = batching
        self._lock = asyncio.Lock()
        self._embedder: AsyncEmbedder | None = None

    async def __call__(self) -> AsyncEmbedder:
        async with self._lock:
            if self._embedder is None:
                from tokenomy.embeddings.minilm import MiniLMEmbedder

                model = await asyncio.to_thread(MiniLMEmbedder.load)
                batching = self._batching
                self._embedder = DirectEmbedder(model) if batching is None else BatchedEmbedder(
                    model, max_batch=batching.max_batch, max_wait_ms=batching.max_wait_ms,
                    max_inflight=batching.max_inflight)
        return self._embedder
