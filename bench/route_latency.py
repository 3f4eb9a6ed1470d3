"""Decision latency of a trained router: ``Router.decide`` per prompt, embedding included.

    .venv/bin/python bench/route_latency.py --router DIR --data FILE.jsonl [--n 1000] [--threads 1] [--against DIR]

Loads the router once, warms up on 50 prompts, then times ``decide`` on up to ``--n`` prompts of the file's test
split (every row when none has a split), one at a time, as the gateway calls it. Prints one JSON object: p50, p90,
p99 and max in ms, for the whole decision and for the embedding alone, plus the prompt-length quantiles.

``--against DIR`` compares two routers fairly on a shared, noisy box: decisions alternate between them prompt by
prompt (order flipped every prompt), so both see the same load; prints both routers' decide quantiles.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tokenomy.routing.outcomes import read_outcomes
from tokenomy.routing.router import Router


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(pick(0.50), 3), "p90_ms": round(pick(0.90), 3), "p99_ms": round(pick(0.99), 3),
            "max_ms": round(ordered[-1], 3), "mean_ms": round(statistics.fmean(ordered), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for the embedding")
    parser.add_argument("--against", type=Path, help="a second router directory, timed interleaved with --router")
    args = parser.parse_args()

    router = Router.load(args.router, threads=args.threads)
    rows = read_outcomes([args.data]).evaluation_rows()[: args.n]
    prompts = [(row.prompt, row.group) for row in rows]
    if args.against is not None:
        _interleaved(router, Router.load(args.against, threads=args.threads), prompts, args)
        return
    for prompt, group in prompts[:50]:
        router.decide(prompt, group=group)
    decide_ms, embed_ms = [], []
    for prompt, group in prompts:
        started = time.perf_counter()
        router.decide(prompt, group=group)
        decide_ms.append((time.perf_counter() - started) * 1000)
        window = router.state.features.window(prompt)
        started = time.perf_counter()
        router.embed([window])
        embed_ms.append((time.perf_counter() - started) * 1000)
    chars = sorted(len(router.state.features.window(p)) for p, _ in prompts)
    print(json.dumps({"router": str(args.router), "data": str(args.data), "decisions": len(prompts),
                      "threads": args.threads, "decide": _quantiles(decide_ms), "embedding_only": _quantiles(embed_ms),
                      "embedded_chars_p50": chars[len(chars) // 2], "embedded_chars_max": chars[-1]}))


def _interleaved(first: Router, second: Router, prompts: list[tuple[str, str | None]],
                 args: argparse.Namespace) -> None:
    for prompt, group in prompts[:50]:
        first.decide(prompt, group=group)
        second.decide(prompt, group=group)
    timings: dict[int, list[float]] = {0: [], 1: []}
    for i, (prompt, group) in enumerate(prompts):
        for which in ((0, 1) if i % 2 else (1, 0)):
            router = (first, second)[which]
            started = time.perf_counter()
            router.decide(prompt, group=group)
            timings[which].append((time.perf_counter() - started) * 1000)
    print(json.dumps({"data": str(args.data), "decisions": len(prompts), "threads": args.threads,
                      str(args.router): _quantiles(timings[0]), str(args.against): _quantiles(timings[1])}))


if __name__ == "__main__":
    main()
