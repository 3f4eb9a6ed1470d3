"""Ledger rows per second into PostgreSQL while the gateway serves (issue 11's target: at least 5,000).

One gateway (uvicorn, in this process) on a fresh PostgreSQL database, its upstream the fault upstream's ``echo``.
Three phases in one run:

1. ``serve``: bench/loadgen.py (its own process) drives chat completions at 32 in flight; every request is one
   request row and one call row, acknowledged durably (``ledger.ack`` auto: on PostgreSQL a response waits for its
   rows' group commit) — the rows/s real traffic produces;
2. ``writer``: 200,000 synthetic entries (400,000 rows) submitted to the same writer with no traffic — its drain
   rate alone, the baseline;
3. ``writer + serve``: the same while loadgen drives traffic again — the rows/s the ledger takes while serving.

    PYTHONPATH=src .venv/bin/python bench/ledger_pg_throughput.py [--url postgresql://127.0.0.1:5432/test]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from servers import free_port, run_fault_upstream  # noqa: E402
from tokenomy.config.settings import (  # noqa: E402
    CacheConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LedgerConfig,
    LocalConfig,
    Settings,
)
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow  # noqa: E402
from tokenomy.pricing.cost import TokenUsage  # noqa: E402


def synthetic(tag: str, n: int) -> list[LedgerEntry]:
    now = time.time_ns() // 1000
    out = []
    for i in range(n):
        tokens = TokenUsage(input_tokens=100 + i % 50, output_tokens=30 + i % 20)
        rid = f"req_{tag}_{i}"
        call = CallRow(id=f"call_{tag}_{i}", request_id=rid, attempt=1, started_us=now - i, ended_us=now,
                       deployment="d", provider="openai", model="m", tier="medium", outcome="ok", tokens=tokens,
                       usage_source="upstream", cost_usd=Decimal("0.00001"))
        out.append(LedgerEntry(RequestRow(id=rid, started_us=now - i, ended_us=now, endpoint="chat.completions",
                                          requested_model="m", stream=False, status=200, cache_status="miss",
                                          attempts=1, tokens=tokens, usage_source="upstream",
                                          cost_usd=Decimal("0.00001"), counterfactual_usd=Decimal("0.0001"),
                                          served_model="m", tier="medium", key_id=f"key_{i % 20}"), [call]))
    return out


def loadgen(url: str, seconds: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url, "--concurrency", "32",
                          "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def feed(writer: Any, loop: asyncio.AbstractEventLoop, entries: list[LedgerEntry]) -> float:
    """Submit entries in slices from this thread (on the writer's loop); returns seconds until all are written."""
    start_written = writer.written
    began = time.perf_counter()
    async def submit(part: list[LedgerEntry]) -> None:
        for entry in part:
            writer.submit(entry)

    for at in range(0, len(entries), 2000):
        asyncio.run_coroutine_threadsafe(submit(entries[at:at + 2000]), loop).result()
        while writer.queued > 20_000:  # keep a backlog (below the writer's max_queue, past which it spills)
            time.sleep(0.005)
    last, stalled_since = writer.written, time.monotonic()
    while writer.written - start_written < len(entries):
        time.sleep(0.005)
        if writer.written != last:
            last, stalled_since = writer.written, time.monotonic()
        elif time.monotonic() - stalled_since > 30:
            raise RuntimeError(f"the writer stopped: {writer.stats()}")
    return time.perf_counter() - began


def main() -> None:
    import psycopg
    import uvicorn

    from tokenomy.api.app import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    name = f"tokenomy_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    database = args.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with run_fault_upstream() as (base, _):
            settings = Settings(
                deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base)],
                local=LocalConfig(enabled=False), env_providers=False, home=f"/tmp/{name}",
                ledger=LedgerConfig(database_url=database), cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
            app = create_app(settings, env={})
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                   access_log=False, loop="uvloop", http="httptools"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.02)
            writer = app.state.gateway.ledger
            loop = writer._task.get_loop()
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            alone = loadgen(url, args.seconds)
            served_rows = 2 * alone["ok"] / args.seconds
            writer_s = feed(writer, loop, synthetic("a", args.entries))
            result: dict[str, Any] = {}
            load = threading.Thread(target=lambda: result.update(loadgen(url, args.seconds * 2)))
            load.start()
            time.sleep(1.0)
            both_s = feed(writer, loop, synthetic("b", args.entries))
            load.join()
            server.should_exit = True
            thread.join(10)
        rows = 2 * args.entries
        with psycopg.connect(database) as conn:
            (stored,) = conn.execute("SELECT COUNT(*) FROM requests").fetchone()  # type: ignore[misc]
        print(json.dumps({
            "serve_alone": {"requests_per_s": round(alone["ok"] / args.seconds),
                            "ledger_rows_per_s": round(served_rows), "errors": alone.get("errors")},
            "writer_alone_rows_per_s": round(rows / writer_s),
            "writer_while_serving_rows_per_s": round(rows / both_s),
            "ratio_while_serving_to_alone": round(writer_s / both_s, 2),
            "serving_during_writer_requests_per_s": round(result.get("ok", 0) / (args.seconds * 2)),
            "request_rows_stored": stored, "expected": alone["ok"] + result.get("ok", 0) + 2 * args.entries,
        }, indent=1))
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
