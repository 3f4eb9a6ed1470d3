"""The approximate-nearest-neighbour seam. One index per context (see ``cache.py``), keyed by entry id.

usearch (HNSW, int8 vectors) was chosen by ``bench/ann_choice.py``: at 1M 384-d entries it answers a top-5 query
in 0.49 ms p50 / 1.1 ms p99 with 611 MB resident, against hnswlib's 0.35 / 0.73 ms with 1,696 MB and faiss HNSW,
which cannot remove entries. Memory decides: a cache that holds 2.8x the entries per GiB saves more.
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
