"""Online micro-batching, measured: /v1/embeddings with and without batching, at rising concurrency, in one run.

    .venv/bin/python bench/microbatch.py [--target local|upstream] [--levels 1,4,16,32,64] [--seconds 4]
                                         [--rounds 2] [--upstream-ms 10] [--out FILE.json]

``--target local`` (default): the local MiniLM (int8 ONNX), ``embeddings.batching`` null vs the default.
``--target upstream``: an embeddings deployment on the fault upstream's ``serial-<ms>`` model (one call at a time,
``--upstream-ms`` each whatever its size: a stand-in for a GPU embedding server, where one batch costs about one
forward pass; scripted, not a real model), without and with ``batching: {max_batch: 64, max_wait_ms: 5}`` —
concurrent requests coalesced into one upstream call.
``--target llamacpp``: the same, on a real upstream: llama-cpp-python's OpenAI server with ``--embedding true`` on the
bundled SmolLM2 (it serves one request at a time and embeds an ``input`` list in one pass).

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

MODEL_LOCAL, MODEL_UPSTREAM = "all-minilm-l6-v2", "remote-embedder"
TOPICS = ["the weather", "a football match", "stock prices", "a new phone", "the local library", "a cooking recipe",
          "train delays", "a museum visit", "the election", "a garden party", "quantum computers", "a long hike"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(batching: bool, upstream: str | None, sent_model: str) -> str:
    base = "local: {enabled: false}\nenv_providers: false\nserver: {log_level: warning}\n"
    if upstream is None:
        return base + "deployments: []\n" + ("" if batching else "embeddings: {batching: null}\n")
    coalesce = ", batching: {max_batch: 64, max_wait_ms: 5}" if batching else ""
    return (base + "embeddings: {enabled: false}\ndeployments:\n"
            f"  - {{name: emb, provider: openai_compatible, kind: embeddings, model: {MODEL_UPSTREAM}, "
            f"upstream_model: {sent_model}, base_url: '{upstream}'{coalesce}}}\n")


def _upstream(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    if kind == "llamacpp":
        from tokenomy.providers.local_llama import bundled_model_path

        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()), "--port",
                   str(port), "--embedding", "true", "--n_ctx", "2048", "--model_alias", "smollm2"]
    else:
        command = [sys.executable, "-m", "tokenomy.testing.fault_upstream", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("fault upstream did not start") from None
            time.sleep(0.1)


def _start(config: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    cfg = home / "config.yaml"
    cfg.write_text(config)
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


async def _load(url: str, concurrency: int, seconds: float, offset: int, model: str) -> dict[str, Any]:
    latencies: list[float] = []
    counter = offset
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal counter
        while time.perf_counter() < stop_at:
            counter += 1
            text = f"Sentence {counter} is about {TOPICS[counter % len(TOPICS)]} and what happened next."
            began = time.perf_counter()
            async with session.post(f"{url}/v1/embeddings", json={"model": model, "input": text}) as r:
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
    parser.add_argument("--target", choices=["local", "upstream", "llamacpp"], default="local")
    parser.add_argument("--levels", default="1,4,16,32,64")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upstream-ms", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    upstream, upstream_url = _upstream(args.target) if args.target != "local" else (None, None)
    sent = "smollm2" if args.target == "llamacpp" else f"serial-{args.upstream_ms}"
    model = MODEL_UPSTREAM if upstream_url else MODEL_LOCAL
    with tempfile.TemporaryDirectory() as tmp_a, tempfile.TemporaryDirectory() as tmp_b:
        plain, plain_url = _start(_config(False, upstream_url, sent), Path(tmp_a))
        batched, batched_url = _start(_config(True, upstream_url, sent), Path(tmp_b))
        try:
            for url in (plain_url, batched_url):  # warm both: model load, first-call costs
                asyncio.run(_load(url, 4, 1.0, 0, model))
            results: dict[int, dict[str, Any]] = {}
            for level in levels:
                runs: dict[str, list[dict[str, Any]]] = {"unbatched": [], "batched": []}
                for r in range(args.rounds):
                    order = [("unbatched", plain_url), ("batched", batched_url)]
                    for name, url in order if r % 2 == 0 else order[::-1]:
                        runs[name].append(asyncio.run(_load(url, level, args.seconds, level * 100_000 + r * 10_000,
                                                            model)))
                results[level] = {name: _merge(found) for name, found in runs.items()}
                print(json.dumps({"concurrency": level, **results[level]}), flush=True)
        finally:
            for proc in (plain, batched, upstream):
                if proc is not None:
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
    what = {"local": "/v1/embeddings, local MiniLM int8, one sentence per request",
            "upstream": f"/v1/embeddings to a scripted upstream serving one call at a time, {args.upstream_ms} ms each",
            "llamacpp": "/v1/embeddings to llama_cpp.server --embedding (SmolLM2-135M, CPU)"}[args.target]
    report = {"what": what, "levels": table,
              "seconds_per_run": args.seconds, "rounds": args.rounds,
              "load_average": os.getloadavg()}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
