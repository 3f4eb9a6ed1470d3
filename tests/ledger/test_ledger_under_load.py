"""Cost truth under load: 2,000 concurrent requests (streamed and not), 20 % of clients hanging up at random points.
The ledger must hold one row per upstream call the fault upstream counted, its token totals must equal the
upstream's, its cost must equal the upstream's totals at the configured price, and ``tokenomy spend --json`` must
say the same."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import DeploymentConfig, LedgerConfig, LocalConfig, PriceOverride, RetryConfig, Settings

REQUESTS = 2000
CONCURRENCY = 200
INPUT_PRICE, OUTPUT_PRICE = Decimal("2.5"), Decimal("10")  # USD per million tokens


async def _one(session: aiohttp.ClientSession, url: str, rng: random.Random, i: int) -> str:
    stream = i % 2 == 0
    hang_up = rng.random() < 0.2
    model = "slow" if stream and i % 10 == 0 else "echo"
    words = " ".join(f"w{j}" for j in range(rng.randint(1, 30)))
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": words}], "stream": stream}
    if hang_up and not stream:
        try:
            async with asyncio.timeout(rng.uniform(0.0, 0.02)):
                async with session.post(url, json=body) as resp:
                    await resp.read()
        except TimeoutError:
            return "hung-up-early"  # may have hung up before the request reached the gateway
        return "done"
    async with session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        if not stream:
            await resp.read()
            return "done"
        stop_after = rng.randint(0, 8) if hang_up else None
        seen = 0
        async for _line in resp.content:
            seen += 1
            if stop_after is not None and seen > stop_after:
                resp.close()  # the client goes away mid-stream
                return "hung-up"
    return "done"


async def _burst(url: str) -> list[str]:
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def guarded(i: int) -> str:
            async with sem:
                return await _one(session, url, rng, i)

        return await asyncio.gather(*(guarded(i) for i in range(REQUESTS)))


def _ledger_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        req = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        calls, prompt, output, cost = conn.execute(
            "SELECT COUNT(*), SUM(input_tokens + cached_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens),"
            " SUM(output_tokens), SUM(cost_pusd) FROM calls").fetchone()
    return {"requests": req, "calls": calls, "prompt": prompt or 0, "output": output or 0, "cost_pusd": cost or 0}


def test_ledger_matches_upstream_under_load_with_disconnects(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    price = PriceOverride(input_usd_per_mtok=INPUT_PRICE, output_usd_per_mtok=OUTPUT_PRICE)
    with run_fault_upstream() as (base, upstream):
        settings = Settings(
            local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path),
            ledger=LedgerConfig(database_url=str(db), drain_on_disconnect_s=10),
            retry=RetryConfig(max_retries=0),
            deployments=[
                DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base, price=price),
                DeploymentConfig(name="slow", provider="openai_compatible", model="slow", upstream_model="slow-stream",
                                 base_url=base, price=price),
            ])
        with run_gateway(settings) as url:
            outcomes = asyncio.run(_burst(url + "/chat/completions"))
            deadline = time.monotonic() + 30  # disconnected streams are drained, then accounted
            while _ledger_counts(db)["calls"] < sum(upstream.calls.values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)
            counts = _ledger_counts(db)
            upstream_calls = sum(upstream.calls.values())
            stats = (upstream.prompt_tokens, upstream.completion_tokens)

    early, mid_stream = outcomes.count("hung-up-early"), outcomes.count("hung-up")
    assert 300 < early + mid_stream < 500 and mid_stream > 100  # about 20 % of 2,000
    # A client that hangs up before its request is read was never served; every other request was.
    assert REQUESTS - early <= counts["requests"] <= REQUESTS
    assert counts["calls"] == upstream_calls == counts["requests"]
    assert (counts["prompt"], counts["output"]) == stats
    expected = (stats[0] * INPUT_PRICE + stats[1] * OUTPUT_PRICE) / Decimal(1_000_000)
    assert Decimal(counts["cost_pusd"]) / Decimal(10**12) == expected

    env = {**os.environ, "TOKENOMY_DATABASE_URL": str(db)}
    result = subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--json", "--since", "1h"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(result.stdout)
    assert report["requests"] == counts["requests"] and report["upstream_calls"] == upstream_calls
    assert report["tokens"]["input"] + report["tokens"]["cached_read"] == stats[0]
    assert report["tokens"]["output"] == stats[1]
    assert Decimal(report["cost_usd"]) == expected
