"""The approximate-nearest-neighbour seam. One index per context (see ``cache.py``), keyed by entry id.

usearch (HNSW, int8 vectors) was chosen by ``bench/ann_choice.py``: at 1M 384-d entries it answers a top-5 query
in 0.49 ms p50 / 1.1 ms p99 with 611 MB resident, against hnswlib's 0.35 / 0.73 ms with 1,696 MB and faiss HNSW,
which cannot remove entries. Memory decides: a cache that holds 2.8x the entries per GiB saves more.

A usearch index costs ~50 KB even with one entry, and multi-turn traffic makes many small contexts (each earlier
conversation is its own context), so a context starts in a :class:`SmallIndex` (exact search over a numpy matrix,
~1.6 KB per entry, ~20 µs per query at its limit) and moves to usearch when it outgrows ``SMALL_LIMIT`` entries.
"""

from __future__ import annotations

from typing import Any, Protocol


class VectorIndex(Protocol):
    def add(self, key: int, vector: Any) -> None: ...

    def add_many(self, keys: list[int], vectors: Any) -> None: ...

    def search(self, vector: Any, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (key, cosine similarity) pairs, most similar first."""
        ...

    def remove(self, key: int) -> None: ...

    def __len__(self) -> int: ...


SMALL_LIMIT = 256


class SmallIndex:
    """Exact cosine search for a context with few entries (vectors are unit length)."""

    def __init__(self, dimensions: int) -> None:
        import numpy as np

        self._np = np
        self._keys: list[int] = []
        self._vectors = np.empty((0, dimensions), dtype=np.float32)

    def add(self, key: int, vector: Any) -> None:
        self.add_many([key], self._np.asarray(vector, dtype=self._np.float32).reshape(1, -1))

    def add_many(self, keys: list[int], vectors: Any) -> None:
        self._keys.extend(keys)
        self._vectors = self._np.vstack([self._vectors, self._np.asarray(vectors, dtype=self._np.float32)])

    def search(self, vector: Any, k: int) -> list[tuple[int, float]]:
        if not self._keys:
            return []
        sims = self._vectors @ self._np.asarray(vector, dtype=self._np.float32)
        top = self._np.argsort(-sims)[:k]
        return [(self._keys[i], float(sims[i])) for i in top]

    def remove(self, key: int) -> None:
        at = self._keys.index(key)
        del self._keys[at]
        self._vectors = self._np.delete(self._vectors, at, axis=0)

    def items(self) -> tuple[list[int], Any]:
        return list(self._keys), self._vectors

    def __len__(self) -> int:
        return len(self._keys)


class USearchIndex:
    def __init__(self, dimensions: int, *, expansion_search: int = 64) -> None:
        from usearch.index import Index

        self._index = Index(ndim=dimensions, metric="cos", dtype="i8", connectivity=16, expansion_add=128,
                            expansion_search=expansion_search)

    def add(self, key: int, vector: Any) -> None:
        self._index.add(key, vector)

    def add_many(self, keys: list[int], vectors: Any) -> None:
        import numpy as np

        self._index.add(np.asarray(keys, dtype=np.uint64), vectors, threads=2)

    def search(self, vector: Any, k: int) -> list[tuple[int, float]]:
        if len(self._index) == 0:
            return []
        found = self._index.search(vector, k)
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(found.keys, found.distances, strict=True)]

    def remove(self, key: int) -> None:
        self._index.remove(key)

    def __len__(self) -> int:
        return len(self._index)
