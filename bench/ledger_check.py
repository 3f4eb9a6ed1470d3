"""End-to-end cost truth check: a burst of requests through a real `tokenomy serve` to the counting fault upstream,
with some clients hanging up mid-stream, then `tokenomy spend --json` beside the upstream's own counters.

    .venv/bin/python bench/ledger_check.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.request
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from overhead import BIN, free_port, started, wait_ready


async def burst(url: str, n: int) -> int:
    rng = random.Random(1)
    hung = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        sem = asyncio.Semaphore(100)

        async def one(i: int) -> None:
            nonlocal hung
            stream = i % 2 == 0
            body = {"model": "echo", "stream": stream,
                    "messages": [{"role": "user", "content": " ".join(["word"] * rng.randint(1, 40))}]}
            async with sem, session.post(url, json=body) as resp:
                if stream and rng.random() < 0.2:
                    await resp.content.readline()
                    resp.close()
                    hung += 1
                else:
                    await resp.read()

        await asyncio.gather(*(one(i) for i in range(n)))
    return hung


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tokenomy-ledger-check-"))
    env = {**os.environ, "HOME": str(tmp), "TOKENOMY_HOME": str(tmp / "home"),
           "TOKENOMY_DATABASE_URL": str(tmp / "ledger.db")}
    up_port, gw_port = free_port(), free_port()
    cfg = tmp / "tokenomy.yaml"
    cfg.write_text("server: {log_level: warning}\nlocal: {enabled: false}\nenv_providers: false\n"
                   f"deployments:\n  - {{name: echo, provider: openai_compatible, model: echo, base_url: "
                   f"'http://127.0.0.1:{up_port}/v1', price: {{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}}}}\n")
    with started([str(BIN / "python"), "-m", "tokenomy.testing.fault_upstream", "--port", str(up_port)], env,
                 tmp / "upstream.log") as up:
        wait_ready(f"http://127.0.0.1:{up_port}/v1/models", up, "upstream")
        with started([str(BIN / "tokenomy"), "serve", "--config", str(cfg), "--port", str(gw_port)], env,
                     tmp / "gateway.log") as gw:
            wait_ready(f"http://127.0.0.1:{gw_port}/healthz", gw, "tokenomy")
            hung = asyncio.run(burst(f"http://127.0.0.1:{gw_port}/v1/chat/completions", args.requests))
        # the gateway has exited: its ledger is flushed
        with urllib.request.urlopen(f"http://127.0.0.1:{up_port}/_stats") as resp:
            stats = json.loads(resp.read())
    spend = json.loads(subprocess.run([str(BIN / "tokenomy"), "spend", "--json", "--since", "1h"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    calls = sum(stats["calls"].values())
    expected = (Decimal(stats["prompt_tokens"]) * Decimal("2.5") + Decimal(stats["completion_tokens"]) * 10) / 10**6
    rows = [
        ("upstream calls", calls, spend["upstream_calls"]),
        ("prompt tokens", stats["prompt_tokens"], spend["tokens"]["input"] + spend["tokens"]["cached_read"]),
        ("completion tokens", stats["completion_tokens"], spend["tokens"]["output"]),
        ("cost USD (upstream totals x price)", str(expected.normalize()), spend["cost_usd"]),
    ]
    print(f"{args.requests} requests, {hung} clients hung up mid-stream")
    print(f"{'':38} {'upstream':>14} {'tokenomy spend':>16}")
    for label, theirs, ours in rows:
        mark = "ok" if str(theirs) == str(ours) else "MISMATCH"
        print(f"{label:38} {theirs!s:>14} {ours!s:>16}  {mark}")
    print(json.dumps(spend))


if __name__ == "__main__":
    main()
