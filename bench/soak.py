"""The soak and abuse run (issue 20): ``tokenomy serve`` under a steady mixed load for ``--minutes``, with clients
that leave mid-answer, 1 % hostile requests, upstream faults (scripted 429s, 500s, resets, stalled streams) and store
faults (its own Redis and PostgreSQL stopped and started mid-run). Not part of the tests.

    .venv/bin/python bench/soak.py --minutes 60 [--rate 20] [--out bench/results/soak-NAME]

It prints and writes (``soak.md``, ``soak.json``) what mature proxies publish: requests served, errors by cause,
p50/p99 over time, the gateway's RSS at start (after warm-up), middle and end, ledger rows against upstream calls,
rows lost, and how long each fault took to clear. Everything runs on loopback; every server is the run's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import soak_hostile
import soak_traffic
from soak_report import Run, markdown, summary
from soak_stack import MASTER, Stack, running_stack

BENCH = Path(__file__).resolve().parent


async def _make_key(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(base + "/admin/keys", json={"name": "soak"},
                            headers={"authorization": f"Bearer {MASTER}"}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["key"])


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


async def _sample(stack: Stack, run: Run, stop: asyncio.Event) -> None:
    while not stop.is_set():
        run.samples.append({"t": time.monotonic() - run.began, "rss_mb": stack.rss_mb(),
                            "ready": await asyncio.to_thread(_ready, stack.gateway)})
        await asyncio.sleep(5)


async def _fault(name: str, stack: Stack, run: Run, session: aiohttp.ClientSession, key: str, down_s: float) -> None:
    """Stop a store for ``down_s``, start it, and time until the gateway is ready and serves again."""
    server = stack.redis if name == "redis" else stack.pg
    began = time.monotonic()
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(server.start)
    up = time.monotonic()
    while True:
        probe = await soak_traffic.plain(session, stack.gateway, key, random.Random())
        if probe.status == 200 and await asyncio.to_thread(_ready, stack.gateway):
            break
        if time.monotonic() - up > 300:
            break
        await asyncio.sleep(0.5)
    run.faults.append({"fault": f"{name} restart", "at_s": round(began - run.began, 1), "down_s": round(up - began, 1),
                       "clear_s": round(time.monotonic() - up, 2)})


async def _faults(stack: Stack, run: Run, session: aiohttp.ClientSession, key: str, seconds: float) -> None:
    down_s = min(20.0, max(5.0, 0.03 * seconds))
    for share, name in ((0.3, "redis"), (0.6, "postgresql")):
        await asyncio.sleep(max(0.0, run.began + share * seconds - time.monotonic()))
        await _fault(name, stack, run, session, key, down_s)


async def _drive(stack: Stack, run: Run, seconds: float, rate: float, seed: int) -> None:
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256)) as session:
        key = await _make_key(session, stack.gateway)
        stop = asyncio.Event()
        background = [asyncio.create_task(_sample(stack, run, stop)),
                      asyncio.create_task(_faults(stack, run, session, key, seconds))]
        pending: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            at = time.monotonic() - run.began
            if rng.random() < 0.01:
                verdict = await soak_hostile.pick(rng)(stack.gateway, key)
                run.hostile.append({"name": verdict.name, "ok": verdict.as_expected, "detail": verdict.detail,
                                    "at_s": round(at, 1)})
                return
            outcome = await soak_traffic.pick(rng)(session, stack.gateway, key, rng)
            outcome.at = at
            run.outcomes.append(outcome)

        i = 0
        while (now := time.monotonic()) - run.began < seconds:
            task = asyncio.create_task(one(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            await asyncio.sleep(max(0.0, run.began + i / rate - now))
        await asyncio.gather(*pending, return_exceptions=True)
        await background[1]
        await _batches_done(session, stack.gateway)
        stop.set()
        await background[0]


async def _batches_done(session: aiohttp.ClientSession, base: str, wait_s: float = 180) -> None:
    """Wait for the batches to finish: a line in flight when the gateway stops would run (and call) again."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with session.get(base + "/v1/batches?limit=100", headers={"authorization": f"Bearer {MASTER}"}) as resp:
            batches = (await resp.json()).get("data", [])
        if not any(b["status"] in ("validating", "in_progress", "finalizing") for b in batches):
            return
        await asyncio.sleep(2)


def _ledger(stack: Stack, seen_ids: set[str]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(stack.pg.url) as db:
        requests = db.execute("SELECT count(*) FROM requests").fetchone()[0]  # type: ignore[index]
        calls = db.execute("SELECT count(*) FROM calls c JOIN requests r ON r.id = c.request_id "  # type: ignore[index]
                           "WHERE r.endpoint NOT LIKE '%embeddings'").fetchone()[0]
        disconnected = db.execute("SELECT count(*) FROM requests WHERE client_disconnected = 1").fetchone()[0]  # type: ignore[index]
        held = {r[0] for r in db.execute("SELECT id FROM requests").fetchall()}
        by_model = dict(db.execute("SELECT c.model, count(*) FROM calls c JOIN requests r ON r.id = c.request_id "
                                   "WHERE r.endpoint NOT LIKE '%embeddings' GROUP BY c.model").fetchall())
    return {"requests_rows": requests, "chat_call_rows": calls, "client_disconnected_rows": disconnected,
            "rows_lost": len(seen_ids - held), "chat_call_rows_by_model": by_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (open loop)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out: Path = args.out or BENCH / "results" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    with running_stack() as stack:
        run = Run(began=time.monotonic(), seconds=seconds, rate=args.rate)
        asyncio.run(_drive(stack, run, seconds, args.rate, args.seed))
        stack.stop_gateway()  # SIGTERM: the ledger writer flushes; no upstream call after this
        upstream = stack.upstream_stats()
        seen = {o.request_id for o in run.outcomes if o.request_id}
        ledger = _ledger(stack, seen)
        ledger["upstream_chat_calls"] = sum(Counter(upstream["calls"]).values())
        ledger["upstream_chat_calls_by_model"] = upstream["calls"]
    result = summary(run, ledger)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (out / "soak.md").write_text(text)
    print(text)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
