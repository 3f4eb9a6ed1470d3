"""Semantic-cache entries kept in SQLite (``SQLiteEntries``, the embedded default): how long a start takes to load
the table into the index (``start_s``: until the gateway serves; ``load_s``: until every entry is in, a table larger
than ``LOAD_BEFORE_SERVING`` loading in the background, with the lookups made meanwhile timed), what a request
pays to queue an entry, how long the writer takes, and the file's size.

    PYTHONPATH=src .venv/bin/python bench/semantic_persist.py [--entries 100000] [--contexts 1] [--adds 200]

The table is filled directly (``--entries`` rows over ``--contexts`` contexts, 384-d unit float32 vectors), then a
fresh ``SemanticCache`` + ``SQLiteEntries`` start on it, ``--adds`` entries are published and the writer is closed.
One context is the slow case (one usearch graph holds everything); many small contexts load as numpy matrices.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.persisted import SCHEMA, SQLiteEntries
from tokenomy.cache.semantic.verifier import load_calibration


def fill(path: Path, entries: int, contexts: int) -> None:
    vectors = np.random.default_rng(0).normal(size=(entries, 384)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with sqlite3.connect(path) as db:
        for statement in SCHEMA:
            db.execute(statement)
        db.executemany("INSERT INTO semantic_entries VALUES (?, ?, ?, ?, ?)",
                       ((f"context {i % contexts}", f"question {i}", f"key {i}", vectors[i].tobytes(), float(i))
                        for i in range(entries)))


async def measure(path: Path, entries: int, adds: int) -> dict[str, float]:
    cache = SemanticCache(load_calibration(), max_error=0.1, max_entries=entries)
    saved = SQLiteEntries(path, cache, max_entries=entries)
    began = time.perf_counter()
    await saved.start()
    start_s = time.perf_counter() - began  # until the gateway would serve
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    lookups_ms: list[float] = []
    while saved.loading is not None and not saved.loading.done():  # lookups while a large table loads
        tick = time.perf_counter()
        cache.lookup("context 0", "a question", vector)
        lookups_ms.append((time.perf_counter() - tick) * 1000)
        await asyncio.sleep(0.005)
    if saved.loading is not None:
        await saved.loading
    loaded_s = time.perf_counter() - began
    began = time.perf_counter()
    for i in range(adds):
        await saved.publish_add("context 0", f"new question {i}", vector, "key")
    queued_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    await saved.aclose()
    during = sorted(lookups_ms) or [0.0]
    return {"loaded": saved.loaded, "start_s": round(start_s, 2), "load_s": round(loaded_s, 2),
            "lookups_during_load": len(lookups_ms), "lookup_during_load_p50_ms": round(during[len(during) // 2], 2),
            "lookup_during_load_p99_ms": round(during[int(len(during) * 0.99)], 2),
            "adds_queued_ms": round(queued_ms, 2),
            "adds_written_ms": round((time.perf_counter() - began) * 1000, 1), "written": saved.written}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--contexts", type=int, default=1)
    parser.add_argument("--adds", type=int, default=200)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="semantic-persist-")) / "cache.db"
    fill(path, args.entries, args.contexts)
    report = {"entries": args.entries, "contexts": args.contexts, "file_mb": round(path.stat().st_size / 1e6, 1),
              **asyncio.run(measure(path, args.entries, args.adds))}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
