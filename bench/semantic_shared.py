"""Semantic-cache entries shared through Redis: how fast an entry made on one replica is servable on another, how
fast a starting replica loads the stream, and what an entry costs in Redis. In-process index inserts of the same
entries are the baseline.

    PYTHONPATH=src .venv/bin/python bench/semantic_shared.py [--entries 5000]

Two ``SemanticCache`` + ``SharedEntries`` pairs in this process stand for two replicas (each follows the stream
with its own connection, exactly as a gateway does); 384-d float32 vectors, one context. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.shared import SharedEntries
from tokenomy.cache.semantic.verifier import load_calibration


def cache() -> SemanticCache:
    return SemanticCache(load_calibration(), max_error=0.02, max_entries=1_000_000)


async def run(url: str, n: int) -> dict[str, float]:
    import redis.asyncio as redis

    key = f"tokenomy-bench-{uuid.uuid4().hex[:8]}:semantic:entries"
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    local = cache()
    began = time.perf_counter()
    for i in range(n):
        local.insert("ctx", f"question {i}", vectors[i], f"answer-{i}")
    local_s = time.perf_counter() - began
    a_cache, b_cache = cache(), cache()
    a = SharedEntries(url, key, a_cache, max_entries=n * 2, block_ms=200)
    b = SharedEntries(url, key, b_cache, max_entries=n * 2, block_ms=200)
    await a.start()
    await b.start()
    latencies = []
    for i in range(200):  # one at a time: publish on A, wait until B can find it
        a_cache.insert("ctx", f"single {i}", vectors[i], f"s-{i}")
        sent = time.perf_counter()
        await a.publish_add("ctx", f"single {i}", vectors[i], f"s-{i}")
        while len(b_cache) < i + 1:
            await asyncio.sleep(0.0002)
        latencies.append(time.perf_counter() - sent)
    began = time.perf_counter()
    for i in range(n):
        await a.publish_add("ctx", f"question {i}", vectors[i], f"answer-{i}")
    published_s = time.perf_counter() - began
    while len(b_cache) < n + 200:
        await asyncio.sleep(0.001)
    propagated_s = time.perf_counter() - began
    c_cache = cache()
    c = SharedEntries(url, key, c_cache, max_entries=n * 2)
    began = time.perf_counter()
    await c.start()
    catch_up_s = time.perf_counter() - began
    client = redis.Redis.from_url(url)
    memory = await client.memory_usage(key, samples=0)
    found = b_cache.lookup("ctx", "question 17", vectors[17])
    assert found is not None and found.entry.answer_key == "answer-17"
    await client.delete(key)
    await client.aclose()
    for shared in (a, b, c):
        await shared.aclose()
    latencies.sort()
    return {"entries": n, "local_insert_per_s": round(n / local_s), "publish_per_s": round(n / published_s),
            "visible_on_other_replica_per_s": round(n / propagated_s),
            "one_entry_to_other_replica_ms_p50": round(statistics.median(latencies) * 1000, 2),
            "one_entry_to_other_replica_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "new_replica_loads_entries_per_s": round((n + 200) / catch_up_s),
            "redis_bytes_per_entry": round((memory or 0) / (n + 200))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--entries", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.redis, args.entries)), indent=1))


if __name__ == "__main__":
    main()
