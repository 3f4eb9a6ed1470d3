"""Semantic cache lookup latency at scale: the real ``SemanticCache`` (usearch index, features, verifier) filled with
N entries, timed on single lookups. Entry texts are short synthetic questions; vectors are MiniLM-shaped unit vectors
from a cluster mixture (embedding a million real sentences would take ~20 minutes here), so this measures the index
and the decision rule, not the embedding (reported separately by ``tokenomy cache eval``: ~3-7 ms).

    python bench/semantic_scale.py --n 1000000
    python bench/semantic_scale.py --n 1000000 --verified   # the verified policy's lookup (evidence + draw)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evidence import Evidence, Label
from tokenomy.cache.semantic.features import pair_features
from tokenomy.cache.semantic.verifier import load_calibration

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--verified", action="store_true", help="the verified policy, with evidence for every cut")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((max(args.n // 500, 16), DIM)).astype(np.float32)
    evidence = None
    if args.verified:
        evidence = Evidence(0.05)
        for cut in evidence.cuts:  # clean labels in every band: every would-be hit is servable (or explored)
            for _ in range(500):
                evidence.observe(Label(cut, wrong=False))
    cache = SemanticCache(load_calibration(), max_error=0.05, max_entries=args.n, evidence=evidence)
    started = time.perf_counter()
    step = 50_000
    for lo in range(0, args.n, step):
        hi = min(lo + step, args.n)
        block = centres[rng.integers(0, len(centres), hi - lo)]
        block = block + 0.8 * rng.standard_normal(block.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        texts = [f"synthetic question number {lo + i}" for i in range(hi - lo)]
        cache.insert_many("ctx", texts, block, [str(lo + i) for i in range(hi - lo)])
        print(f"inserted {hi:,} ({hi / (time.perf_counter() - started):,.0f}/s)", flush=True)
    # lookups drawn from the same mixture: near stored entries, like paraphrases of cached questions
    queries = centres[rng.integers(0, len(centres), args.lookups)]
    queries = queries + 0.8 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    latencies, rule = [], []
    calibration = load_calibration()
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        match = cache.lookup("ctx", f"synthetic question number {i}?", q)
        latencies.append((time.perf_counter() - t0) * 1000)
        if match is not None:  # the decision rule alone (features + verifier), same lookup, same run
            t0 = time.perf_counter()
            calibration.score(pair_features(f"synthetic question number {i}?", match.entry.text, match.cosine, 0.5))
            rule.append((time.perf_counter() - t0) * 1000)
    arr, part = np.array(latencies), np.array(rule)
    print(json.dumps({"entries": len(cache), "lookups": args.lookups, "verified": args.verified,
                      "p50_ms": round(float(np.percentile(arr, 50)), 3),
                      "p99_ms": round(float(np.percentile(arr, 99)), 3),
                      "decision_rule_p50_ms": round(float(np.percentile(part, 50)), 3),
                      "decision_rule_p99_ms": round(float(np.percentile(part, 99)), 3)}))


if __name__ == "__main__":
    main()
