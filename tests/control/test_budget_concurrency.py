"""The budget target: 200 concurrent requests (official openai SDK) against a key whose budget covers exactly 20
of them → 20 or 21 served (overshoot at most one request), on one gateway process and on 3 ``tokenomy serve``
replicas sharing Redis. Each request's reservation (its worst case: counted prompt + max_tokens) is over three times
its real cost, so the admission rule, the waiting and the settlement are all exercised."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from tests.control.parts import MASTER, admin, priced, replicas, serve_config

from servers import run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream

QUESTION = [{"role": "user", "content": "hello there"}]
# The fault upstream bills this as 6 prompt + 3 completion tokens; at $1/$2 per million that is $0.000012.
COST_USD = Decimal("0.000012")
RESULTS = Path(os.environ.get("TOKENOMY_BUDGET_RESULTS", "/tmp/tokenomy-budget-results.jsonl"))


async def _fire(urls: list[str], key: str, model: str, n: int = 200) -> tuple[int, list[str]]:
    """``n`` requests at once, spread over ``urls``; returns (served, codes of the refused)."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    clients = [openai.AsyncOpenAI(base_url=u, api_key=key, max_retries=0, timeout=60,
                                  http_client=httpx.AsyncClient(limits=limits, timeout=60)) for u in urls]

    async def one(i: int) -> str:
        try:
            await clients[i % len(clients)].chat.completions.create(model=model, messages=QUESTION,  # type: ignore[arg-type]
                                                                    max_tokens=16)
            return "served"
        except openai.APIStatusError as exc:
            return str((exc.body or {}).get("code") if isinstance(exc.body, dict) else exc.status_code)

    outcomes = await asyncio.gather(*(one(i) for i in range(n)))
    for client in clients:
        await client.close()
    return outcomes.count("served"), [o for o in outcomes if o != "served"]


def _ledger_spend(home: Path, key_id: str) -> tuple[Decimal, int]:
    with sqlite3.connect(home / "ledger.db") as db:
        pusd, served = db.execute("SELECT COALESCE(SUM(cost_pusd), 0), SUM(CASE WHEN status = 200 THEN 1 ELSE 0 END)"
                                  " FROM requests WHERE key_id = ?", (key_id,)).fetchone()
    return Decimal(pusd) / Decimal(10**12), int(served or 0)


def _check(served: int, refused: list[str], spent: Decimal, upstream_calls: int, mode: str) -> None:
    with RESULTS.open("a") as out:
        out.write(json.dumps({"mode": mode, "served": served, "refused": len(refused), "spent_usd": str(spent),
                              "budget_usd": str(20 * COST_USD), "at": time.time()}) + "\n")
    assert set(refused) == {"insufficient_quota"}, refused
    assert served + len(refused) == 200
    assert 20 <= served <= 21, f"{mode}: {served} served"
    assert upstream_calls == served  # refused requests never reached the upstream
    assert spent == served * COST_USD and spent <= 20 * COST_USD + COST_USD


@pytest.fixture(scope="module")
def one_process(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, Path, str]]:
    base, _ = fault
    home = tmp_path_factory.mktemp("budget-one")
    upstream = f"echo-budget-{uuid.uuid4().hex[:6]}"
    settings = Settings(deployments=[priced("priced", base, upstream)], local=LocalConfig(enabled=False),
                        env_providers=False, home=str(home), control=ControlConfig(master_key=MASTER),
                        cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
    with run_gateway(settings) as url:
        yield url, home, upstream


@pytest.mark.parametrize("run", range(3))
def test_200_concurrent_requests_on_one_process_serve_20_or_21(one_process: tuple[str, Path, str],
                                                                fault: tuple[str, FaultUpstream], run: int) -> None:
    url, home, upstream = one_process
    status, created = admin(url, "POST", "/admin/keys", {"name": f"budget-{run}", "budget_usd": str(20 * COST_USD)})
    assert status == 201, created
    before = fault[1].calls[upstream]
    served, refused = asyncio.run(_fire([url], created["key"], "priced"))
    time.sleep(0.3)  # the ledger writer flushes every 50 ms
    spent, ledger_served = _ledger_spend(home, created["id"])
    assert ledger_served == served
    _check(served, refused, spent, fault[1].calls[upstream] - before, "one process")
    status, shown = admin(url, "GET", f"/admin/keys/{created['id']}")
    assert shown["budgets"][0]["spent_usd"] == format(spent.normalize(), "f")
    assert shown["budgets"][0]["reserved_usd"] == "0"  # every reservation settled


def test_200_concurrent_requests_on_3_replicas_sharing_redis_serve_20_or_21(
        fault: tuple[str, FaultUpstream], tmp_path: Path, redis_prefix: str) -> None:
    base, upstream_counts = fault
    upstream = f"echo-replicas-{uuid.uuid4().hex[:6]}"
    config = serve_config(tmp_path / "c.yaml", [priced("priced", base, upstream)])
    home = tmp_path / "home"
    with replicas(3, config, home, redis_prefix) as urls:
        for run in range(2):
            status, created = admin(urls[0], "POST", "/admin/keys",
                                    {"name": f"replicas-{run}", "budget_usd": str(20 * COST_USD)})
            assert status == 201, created
            _wait_until_known(urls, created["key"])
            before = upstream_counts.calls[upstream]
            served, refused = asyncio.run(_fire(urls, created["key"], "priced"))
            time.sleep(0.5)
            spent, ledger_served = _ledger_spend(home, created["id"])
            assert ledger_served == served
            _check(served, refused, spent, upstream_counts.calls[upstream] - before, "3 replicas + redis")
            for url in urls:  # every replica reads the same shared counter
                assert admin(url, "GET", f"/admin/keys/{created['id']}")[1]["budgets"][0]["reserved_usd"] == "0"


def _wait_until_known(urls: list[str], key: str) -> None:
    deadline = time.monotonic() + 10
    for url in urls:
        while admin(url, "GET", "/v1/key", key=key)[0] != 200:
            assert time.monotonic() < deadline, "a replica never learned the new key"
            time.sleep(0.1)
