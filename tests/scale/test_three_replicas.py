"""Three ``tokenomy serve`` replicas on loopback, sharing the real Redis (127.0.0.1:6379, a prefix of their own) and
PostgreSQL (127.0.0.1:5432, a fresh database), driven with mixed traffic through all three by the official openai
SDK: every upstream call is one ledger row; a response cached through one replica is a hit on the others; a budget
and a rate limit hold across replicas; one replica is killed with SIGKILL mid-load and no answered request's row is
lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import psycopg
import pytest
from tests.control.parts import MASTER, REDIS_URL, admin, redis_prefix
from tests.scale.parts import fresh_database, record

from servers import free_port
from tokenomy.testing.fault_upstream import FaultUpstream

__all__ = ["redis_prefix"]

COST_USD = Decimal("0.000012")  # the fault upstream's 6 prompt + 3 completion tokens at $1 / $2 per million


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def _config(path: Path, base: str, upstream: str) -> Path:
    path.write_text(
        "local: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\nserver: {log_level: warning}\n"
        "cache: {exact: {mode: deterministic, store: redis}}\n"
        "deployments:\n"
        f"  - {{name: priced, provider: openai_compatible, model: priced, tier: medium, upstream_model: {upstream},"
        f" base_url: '{base}', price: {{input_usd_per_mtok: '1', output_usd_per_mtok: '2'}}}}\n")
    return path


@contextlib.contextmanager
def _replicas(n: int, config: Path, homes: Path, database: str, prefix: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(n):
            port = free_port()
            env = {**os.environ, "TOKENOMY_HOME": str(homes / f"r{i}"), "TOKENOMY_MASTER_KEY": MASTER,
                   "TOKENOMY_REDIS_URL": REDIS_URL, "TOKENOMY_REDIS_PREFIX": prefix, "TOKENOMY_DATABASE_URL": database}
            proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config), "--port",
                                     str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            proc.port = port  # type: ignore[attr-defined]
            procs.append(proc)
        for proc in procs:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{proc.port}/readyz", timeout=2):  # type: ignore[attr-defined]
                        break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "replica died"
                    assert time.monotonic() < deadline, "replica not ready"
                    time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _url(proc: subprocess.Popen[bytes]) -> str:
    return f"http://127.0.0.1:{proc.port}/v1"  # type: ignore[attr-defined]


async def _fire(urls: list[str], key: str, n: int, *, text: str, concurrency: int = 200, stream_every: int = 0,
                temperature: float | None = None) -> list[tuple[int, str, str | None]]:
    """``n`` requests spread over ``urls``: (index, outcome, x-request-id) each; outcome 'ok', a code, or 'broken'."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [openai.AsyncOpenAI(base_url=u, api_key=key, max_retries=0, timeout=30,
                                  http_client=httpx.AsyncClient(limits=limits, timeout=30)) for u in urls]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[int, str, str | None]:
        client = clients[i % len(clients)]
        messages = [{"role": "user", "content": text.format(i=i)}]
        extra = {} if temperature is None else {"temperature": temperature}
        async with gate:
            try:
                if stream_every and i % stream_every == 0:
                    async with client.chat.completions.with_streaming_response.create(
                            model="priced", messages=messages, stream=True, max_tokens=16, **extra) as resp:  # type: ignore[call-overload]
                        async for _ in resp.iter_lines():
                            pass
                        return i, "ok", resp.headers.get("x-request-id")
                raw = await client.chat.completions.with_raw_response.create(
                    model="priced", messages=messages, max_tokens=16, **extra)  # type: ignore[call-overload]
                return i, "ok", raw.headers.get("x-request-id")
            except openai.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                return i, str(body.get("code") or exc.status_code), None
            except (openai.APIConnectionError, httpx.HTTPError):
                return i, "broken", None

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        for client in clients:
            await client.close()


def _ledger(database: str) -> tuple[set[str], int, Decimal]:
    with psycopg.connect(database) as conn:
        ids = {rid for (rid,) in conn.execute("SELECT id FROM requests")}
        (calls,) = conn.execute("SELECT COUNT(*) FROM calls").fetchone() or (0,)
        (pusd,) = conn.execute("SELECT COALESCE(SUM(cost_pusd), 0) FROM requests").fetchone() or (0,)
    return ids, int(calls), Decimal(pusd) / Decimal(10**12)


def _settled(database: str, expected_calls: int, timeout_s: float = 10) -> tuple[set[str], int, Decimal]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = _ledger(database)
        if found[1] >= expected_calls or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_three_replicas_on_redis_and_postgres(fault: tuple[str, FaultUpstream], tmp_path: Path, database: str,
                                              redis_prefix: str) -> None:
    base, upstream = fault
    model = f"echo-scale-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path / "c.yaml", base, model)
    with _replicas(3, config, tmp_path / "homes", database, redis_prefix) as procs:
        urls = [_url(p) for p in procs]
        calls = lambda: upstream.calls[model]  # noqa: E731

        # 1. a response cached through one replica is a hit on the other two
        cache_status = []
        for url in urls:
            client = openai.OpenAI(base_url=url, api_key=MASTER, max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="priced", temperature=0, messages=[{"role": "user", "content": "cache me across replicas"}])
            cache_status.append(raw.headers["x-tokenomy-cache"])
        assert cache_status == ["miss", "hit", "hit"] and calls() == 1

        # 2. a budget of 20 requests holds against 200 concurrent ones over three replicas
        status, budgeted = admin(urls[0], "POST", "/admin/keys", {"name": "budget", "budget_usd": str(20 * COST_USD)})
        assert status == 201, budgeted
        status, limited = admin(urls[1], "POST", "/admin/keys", {"name": "limited", "rpm": 10})
        assert status == 201, limited
        time.sleep(2.5)  # every replica re-reads keys within key_refresh_s (2 s)
        outcomes = asyncio.run(_fire(urls, budgeted["key"], 200, text="budget {i}"))
        served = sum(o == "ok" for _, o, _ in outcomes)
        assert {o for _, o, _ in outcomes} <= {"ok", "insufficient_quota"} and 20 <= served <= 21

        # 3. a rate limit of 10 requests a minute holds over three replicas
        outcomes = asyncio.run(_fire(urls, limited["key"], 30, text="limited {i}", concurrency=30))
        assert sum(o == "ok" for _, o, _ in outcomes) == 10
        assert {o for _, o, _ in outcomes if o != "ok"} == {"requests_rate_limited"}

        # so far: every upstream call is exactly one ledger row, on every replica
        ids, ledger_calls, _ = _settled(database, calls())
        assert ledger_calls == calls() == 1 + served + 10
        with psycopg.connect(database) as conn:
            (pusd,) = conn.execute("SELECT COALESCE(SUM(cost_pusd), 0) FROM requests WHERE key_id = %s",
                                   (budgeted["id"],)).fetchone() or (0,)
        assert Decimal(pusd) / Decimal(10**12) == served * COST_USD

        # 4. mixed load through all three (a tenth streamed); one replica SIGKILLed in the middle
        before_calls, before_ids = calls(), ids
        doomed = procs[2]

        async def load_and_kill() -> list[tuple[int, str, str | None]]:
            task = asyncio.create_task(_fire(urls, MASTER, 900, text="load {i}", concurrency=30, stream_every=10))
            while calls() - before_calls < 300:
                await asyncio.sleep(0.01)
            doomed.send_signal(signal.SIGKILL)
            return await task

        outcomes = asyncio.run(load_and_kill())
        doomed.wait(10)
        upstream_calls = calls() - before_calls
        answered = {rid for _, o, rid in outcomes if o == "ok"}  # streamed and not: [DONE] waits for the row too
        ids, ledger_calls, _ = _settled(database, calls())
        new_ids = ids - before_ids
        lost = answered - new_ids
        broken = sum(o == "broken" for _, o, _ in outcomes)
        record("three_replicas", requests=900, answered=sum(o == "ok" for _, o, _ in outcomes), broken=broken,
               upstream_calls=upstream_calls, ledger_call_rows=ledger_calls - before_calls,
               answered_rows_lost=len(lost),
               cache=cache_status, budget_served=served, rate_limited_served=10)
        assert not lost, f"{len(lost)} answered requests have no ledger row"
        # broken: those in flight on the killed replica, and those sent to it afterwards (refused: no load
        # balancer here takes it out of the rotation)
        assert {o for _, o, _ in outcomes} <= {"ok", "broken"} and broken > 0
        # every upstream call has its row, except those in flight on the killed replica (of the 30 in flight)
        unrecorded = upstream_calls - (ledger_calls - before_calls)
        record("three_replicas_kill", upstream_calls_without_row=unrecorded)
        assert 0 <= unrecorded <= 30
        # the survivors still agree on the shared counters and serve
        assert admin(urls[0], "GET", f"/admin/keys/{budgeted['id']}")[1]["budgets"][0]["reserved_usd"] == "0"
