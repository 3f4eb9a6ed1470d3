"""Which approximate-nearest-neighbour index backs the semantic cache: usearch, hnswlib or faiss (HNSW).

Measures, in one run on the same vectors: build throughput, single-query lookup latency p50/p99 (top-5, the shape
the semantic cache uses), recall@1 against exact search, and resident memory growth. Vectors are 384-d unit
vectors (MiniLM's shape) drawn as a mixture of clusters, which is closer to real sentence embeddings than uniform
noise (uniform noise is the worst case for HNSW).

    python bench/ann_choice.py --n 100000            # all three libraries
    python bench/ann_choice.py --n 1000000 --libs usearch

Needs `pip install usearch hnswlib faiss-cpu` (only usearch is a tokenomy dependency).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

DIM = 384
K = 5
USEARCH_DTYPE = "i8"


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 500, 16), DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        pick = rng.integers(0, len(centres), hi - lo)
        out[lo:hi] = centres[pick] + 0.8 * rng.standard_normal((hi - lo, DIM)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def build_usearch(data: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from usearch.index import Index

    index = Index(ndim=DIM, metric="cos", dtype=USEARCH_DTYPE, connectivity=16, expansion_add=128, expansion_search=64)
    index.add(np.arange(len(data)), data, threads=2)

    def query(q: np.ndarray) -> np.ndarray:
        return np.asarray(index.search(q, K, threads=1).keys)

    return query


def build_hnswlib(data: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(data), ef_construction=128, M=16)
    index.set_num_threads(2)
    index.add_items(data, np.arange(len(data)))
    index.set_ef(64)
    index.set_num_threads(1)

    def query(q: np.ndarray) -> np.ndarray:
        labels, _ = index.knn_query(q, k=K)
        return np.asarray(labels[0])

    return query


def build_faiss(data: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    index.add(data)
    index.hnsw.efSearch = 64
    faiss.omp_set_num_threads(1)

    def query(q: np.ndarray) -> np.ndarray:
        _, labels = index.search(q.reshape(1, -1), K)
        return np.asarray(labels[0])

    return query


BUILDERS = {"usearch": build_usearch, "hnswlib": build_hnswlib, "faiss": build_faiss}


def measure(name: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    query = BUILDERS[name](data)
    build_s = time.perf_counter() - started
    for q in queries[:50]:
        query(q)
    lat: list[float] = []
    hits = 0
    for q, t in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        got = query(q)
        lat.append((time.perf_counter() - t0) * 1000)
        hits += int(got[0] == t)
    arr = np.array(lat)
    return {
        "library": name,
        "n": len(data),
        "build_per_s": round(len(data) / build_s),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "recall_at_1": round(hits / len(queries), 4),
        "rss_growth_mb": round(rss_mb() - before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--libs", default="usearch,hnswlib,faiss")
    args = parser.parse_args()
    data = vectors(args.n, seed=1)
    # queries are perturbed copies of stored vectors (paraphrase-like lookups)
    rng = np.random.default_rng(2)
    idx = rng.integers(0, args.n, args.queries)
    queries = data[idx] + 0.03 * rng.standard_normal((args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.empty(args.queries, dtype=np.int64)
    for lo in range(0, args.queries, 200):
        truth[lo : lo + 200] = np.argmax(queries[lo : lo + 200] @ data.T, axis=1)
    for name in args.libs.split(","):
        print(json.dumps(measure(name, data, queries, truth)), flush=True)


if __name__ == "__main__":
    main()
