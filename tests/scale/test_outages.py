"""Stores that fail, under load: a throwaway redis-server and a throwaway PostgreSQL cluster of our own (never the
shared ones) are taken down and brought back while requests flow.

- Redis down: requests keep being served (the shared exact cache fails open: misses); requests under a budget are
  refused with 503 by default (fail closed) or served unchecked with ``on_redis_down: open``; one log line per
  outage, not one per request; /readyz says 503 while Redis is down.
- PostgreSQL down: requests keep being served; their ledger rows spill to the local file and are replayed exactly
  once when it is back: every answered request has exactly one row, none lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import psycopg
import pytest
from tests.control.parts import MASTER, admin, priced
from tests.scale.parts import PostgresCluster, RedisServer, record

from servers import run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LedgerConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url.removesuffix("/v1") + "/readyz", timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


async def _drive(url: str, key: str, seconds: float, *, label: str, temperature: float | None = None,
                 concurrency: int = 8) -> list[tuple[float, str, str | None]]:
    """Requests for ``seconds`` at ``concurrency`` in flight: (time, outcome, x-request-id) each."""
    client = openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=30,
                                http_client=httpx.AsyncClient(timeout=30))
    results: list[tuple[float, str, str | None]] = []
    stop = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.monotonic() < stop:
            i = next(counter)
            extra = {} if temperature is None else {"temperature": temperature}
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="priced", max_tokens=16, **extra,
                    messages=[{"role": "user", "content": f"{label} {i % 50 if temperature == 0 else i}"}])  # type: ignore[call-overload]
                results.append((time.monotonic(), "ok:" + raw.headers.get("x-tokenomy-cache", ""),
                                raw.headers.get("x-request-id")))
            except openai.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                results.append((time.monotonic(), str(body.get("code") or exc.status_code), None))
            await asyncio.sleep(0.005)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    return results


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_redis_down_mid_load(redis_server: RedisServer, fault: tuple[str, FaultUpstream], tmp_path: Path,
                             policy: str, caplog: pytest.LogCaptureFixture) -> None:
    base, _ = fault
    settings = Settings(deployments=[priced("priced", base, "echo")], local=LocalConfig(enabled=False),
                        env_providers=False, home=str(tmp_path), redis_url=redis_server.url,
                        control=ControlConfig(master_key=MASTER, on_redis_down=policy),  # type: ignore[arg-type]
                        cache=CacheConfig(exact=ExactCacheConfig(store="redis")))
    caplog.set_level(logging.WARNING)
    with run_gateway(settings) as url:
        status, budgeted = admin(url, "POST", "/admin/keys", {"name": "budgeted", "budget_usd": "100"})
        assert status == 201
        status, free = admin(url, "POST", "/admin/keys", {"name": "free"})
        assert status == 201
        time.sleep(2.5)  # the gateway re-reads keys every 2 s

        async def scenario() -> tuple[list[Any], list[Any], dict[str, float], tuple[int, int]]:
            times: dict[str, float] = {}

            async def outage() -> tuple[int, int]:
                await asyncio.sleep(1.5)
                times["down"] = time.monotonic()
                redis_server.stop()
                await asyncio.sleep(0.5)
                down = (await asyncio.to_thread(_ready, url))[0]
                await asyncio.sleep(1.5)
                redis_server.start()
                times["up"] = time.monotonic()
                await asyncio.sleep(1.0)
                up = (await asyncio.to_thread(_ready, url))[0]
                return down, up

            cached, budget, ready = await asyncio.gather(
                _drive(url, free["key"], 6.0, label="cached", temperature=0, concurrency=4),
                _drive(url, budgeted["key"], 6.0, label="budget", concurrency=4), outage())
            return cached, budget, times, ready

        cached, budget, times, (ready_down, ready_up) = asyncio.run(scenario())

    def during(rows: list[Any]) -> list[str]:
        return [o for at, o, _ in rows if times["down"] + 0.3 < at < times["up"]]

    def outside(rows: list[Any]) -> list[str]:
        return [o for at, o, _ in rows if at < times["down"] or at > times["up"] + 0.5]

    lines = [r for r in caplog.records if "unavailable" in r.getMessage()]
    record(f"redis_outage_{policy}", cache_key_requests=len(cached),
           cache_key_served=sum(o.startswith("ok") for _, o, _ in cached),
           served_during=sum(o.startswith("ok") for o in during(cached + budget)),
           budget_during=sorted(set(during(budget))), log_lines=len(lines))
    # the unlimited key is served all along; its cache hits stop while Redis is down and come back after
    assert all(o.startswith("ok") for _, o, _ in cached)
    assert "ok:miss" in during(cached) and "ok:hit" not in during(cached) and "ok:hit" in outside(cached)
    if policy == "closed":
        assert set(during(budget)) == {"budget_store_unavailable"}
    else:
        assert during(budget) and all(o.startswith("ok") for o in during(budget))
    assert all(o.startswith("ok") for o in outside(budget))
    assert ready_down == 503 and ready_up == 200
    requests_during = len(during(cached + budget))
    assert requests_during > 20 and len(lines) <= 4, [r.getMessage() for r in lines]


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    pg = PostgresCluster()
    pg.start()
    try:
        yield pg
    finally:
        pg.remove()


def test_postgres_down_mid_load_spills_and_replays_exactly_once(cluster: PostgresCluster,
                                                                fault: tuple[str, FaultUpstream],
                                                                tmp_path: Path) -> None:
    base, _ = fault
    settings = Settings(deployments=[priced("priced", base, "echo")], local=LocalConfig(enabled=False),
                        env_providers=False, home=str(tmp_path), ledger=LedgerConfig(database_url=cluster.url),
                        cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
    with run_gateway(settings) as url:

        async def scenario() -> tuple[list[Any], int, dict[str, Any]]:
            async def outage() -> tuple[int, dict[str, Any]]:
                await asyncio.sleep(1.5)
                await asyncio.to_thread(cluster.stop)
                await asyncio.sleep(1.0)
                down, during = await asyncio.to_thread(_ready, url)
                await asyncio.sleep(2.5)
                await asyncio.to_thread(cluster.start)
                return down, during

            rows, (down, during) = await asyncio.gather(_drive(url, "unused", 7.0, label="pg"), outage())
            return rows, down, during

        rows, ready_down, during = asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while True:  # the writer retries every 5 s and replays the spill file first
            status, ready = _ready(url)
            if status == 200 and ready["ledger"]["replayed"] >= ready["ledger"]["spilled"] > 0 \
                    and ready["ledger"]["queued"] == 0:
                break
            assert time.monotonic() < deadline, ready
            time.sleep(0.2)
    answered = [rid for _, o, rid in rows if o.startswith("ok")]
    with psycopg.connect(cluster.url) as conn:
        stored = [rid for (rid,) in conn.execute("SELECT id FROM requests")]
        (rolled,) = conn.execute("SELECT COALESCE(SUM(requests), 0) FROM spend_rollup").fetchone() or (0,)
    lost = set(answered) - set(stored)
    record("postgres_outage", requests=len(rows), served=len(answered), spilled=ready["ledger"]["spilled"],
           replayed=ready["ledger"]["replayed"], written=ready["ledger"]["written"], rows=len(stored),
           rows_lost=len(lost), readyz_during=ready_down)
    assert len(answered) == len(rows)  # every request was served through the outage
    assert not lost and len(stored) == len(set(stored)) == len(answered)
    assert int(rolled) == len(stored)  # the replay counted nothing twice in the rollup either
    assert ready["ledger"]["spilled"] > 0 and during["ledger"]["store"] == "down" and ready_down == 503
    assert not (tmp_path / "ledger-spill.jsonl").exists()
