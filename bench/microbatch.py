"""Online micro-batching, measured: /v1/embeddings on the local MiniLM with and without ``embeddings.batching``,
at rising concurrency, in one run.

    .venv/bin/python bench/microbatch.py [--levels 1,4,16,32,64] [--seconds 4] [--rounds 2] [--out FILE.json]

Two real gateways (``tokenomy serve`` subprocesses, same code, one with ``embeddings.batching: null``) run side by
side; for each concurrency level the load generator (aiohttp, closed loop: each of C workers sends its next request
when the last one answered) drives one, then the other, alternating for ``--rounds`` rounds so both see the same
box. Each request embeds one distinct sentence (no two requests share a text, so in-batch de-duplication gives
batching no help). Reports per level and target: requests/s, p50/p99 latency, the throughput ratio and the p99
latency batching adds (batched p99 − unbatched p99 at the same level, and batched p99 − the unbatched p50 at
concurrency 1, i.e. against an idle request). Ratios, not absolute times, are the result: the box is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

TOPICS = ["the weather", "a football match", "stock prices", "a new phone", "the local library", "a cooking recipe",
          "train delays", "a museum visit", "the election", "a garden party", "quantum computers", "a long hike"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(batching: bool, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    cfg = home / "config.yaml"
    cfg.write_text("local: {enabled: false}\nenv_providers: false\nserver: {log_level: warning}\n"
                   "deployments: []\n" + ("" if batching else "embeddings: {batching: null}\n"))
    port = _port()
    env = {**os.environ, "TOKENOMY_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(cfg), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gateway did not start") from None
            time.sleep(0.2)


async def _load(url: str, concurrency: int, seconds: float, offset: int) -> dict[str, Any]:
    latencies: list[float] = []
    counter = offset
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal counter
        while time.perf_counter() < stop_at:
            counter += 1
            text = f"Sentence {counter} is about {TOPICS[counter % len(TOPICS)]} and what happened next."
            began = time.perf_counter()
            async with session.post(f"{url}/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": text}) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
            latencies.append((time.perf_counter() - began) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"requests": len(ordered), "rps": round(len(ordered) / elapsed, 1), "p50_ms": pick(0.5),
            "p99_ms": pick(0.99)}


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one target at one level: summed requests over summed time, worst p99, median p50."""
    return {"rps": round(sum(r["rps"] for r in runs) / len(runs), 1),
            "p50_ms": sorted(r["p50_ms"] for r in runs)[len(runs) // 2], "p99_ms": max(r["p99_ms"] for r in runs),
            "requests": sum(r["requests"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16,32,64")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp_a, tempfile.TemporaryDirectory() as tmp_b:
        plain, plain_url = _start(False, Path(tmp_a))
        batched, batched_url = _start(True, Path(tmp_b))
        try:
            for url in (plain_url, batched_url):  # warm both: model load, first-call costs
                asyncio.run(_load(url, 4, 1.0, 0))
            results: dict[int, dict[str, Any]] = {}
            for level in levels:
                runs: dict[str, list[dict[str, Any]]] = {"unbatched": [], "batched": []}
                for r in range(args.rounds):
                    order = [("unbatched", plain_url), ("batched", batched_url)]
                    for name, url in order if r % 2 == 0 else order[::-1]:
                        runs[name].append(asyncio.run(_load(url, level, args.seconds, level * 100_000 + r * 10_000)))
                results[level] = {name: _merge(found) for name, found in runs.items()}
                print(json.dumps({"concurrency": level, **results[level]}), flush=True)
        finally:
            for proc in (plain, batched):
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
    idle_p50 = results[min(levels)]["unbatched"]["p50_ms"]
    table = []
    for level, pair in results.items():
        plain_r, batch_r = pair["unbatched"], pair["batched"]
        table.append({"concurrency": level, "unbatched": plain_r, "batched": batch_r,
                      "throughput_ratio": round(batch_r["rps"] / plain_r["rps"], 2),
                      "p99_added_ms_vs_unbatched": round(batch_r["p99_ms"] - plain_r["p99_ms"], 2),
                      "p99_added_ms_vs_idle_request": round(batch_r["p99_ms"] - idle_p50, 2)})
    report = {"what": "/v1/embeddings, local MiniLM int8, one sentence per request", "levels": table,
              "seconds_per_run": args.seconds, "rounds": args.rounds,
              "load_average": os.getloadavg()}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
