"""Ledger identity belongs to the server: a client's request id is recorded and echoed, never a key; and the smaller
defects of the one-path issue: a key made by the CLI works on the very next request on every replica,
TOKENOMY_REDIS_URL alone shares the exact cache between replicas, and /v1/files answers in OpenAI's field order."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.control.parts import MASTER, REDIS_URL, admin, priced, redis_prefix  # noqa: F401 (a fixture)

from servers import run_gateway
from tokenomy.config.settings import (
    BatchConfig,
    CacheConfig,
    ControlConfig,
    ExactCacheConfig,
    LocalConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream


def _settings(base: str, home: Path, **extra: Any) -> Settings:
    return Settings(deployments=[priced("echo", base, "echo", input_usd="1000", output_usd="1000")],
                    local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    control=ControlConfig(master_key=MASTER, **extra.pop("control", {})), **extra)


@pytest.fixture
def gateway(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> Iterator[tuple[str, Path]]:
    settings = _settings(fault[0], tmp_path, cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
    with run_gateway(settings) as url:
        yield url, tmp_path


def _ledger(home: Path, where: str, args: tuple[Any, ...], expected: int) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(home / "ledger.db") as db:
            rows = db.execute(f"SELECT id, client_request_id, key_id, cost_pusd FROM requests WHERE {where}",
                              args).fetchall()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_a_repeated_client_request_id_never_merges_rows(gateway: tuple[str, Path]) -> None:
    url, home = gateway
    _, alice = admin(url, "POST", "/admin/keys", {"name": "alice", "budget_usd": "10"})
    client = openai.OpenAI(base_url=url, api_key=alice["key"], max_retries=0)
    seen = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "same id"}], extra_headers={"x-request-id": "mine-1"})
        assert raw.headers["x-client-request-id"] == "mine-1"  # echoed back
        assert raw.headers["x-request-id"] != "mine-1"  # the ledger's id is the server's
        seen.append(raw.headers["x-request-id"])
    assert len(set(seen)) == 3
    rows = _ledger(home, "client_request_id = ?", ("mine-1",), 3)
    assert sorted(r[0] for r in rows) == sorted(seen)  # three requests, three rows
    _, shown = admin(url, "GET", f"/admin/keys/{alice['id']}")
    assert float(shown["budgets"][0]["spent_usd"]) * 1e12 == pytest.approx(sum(r[3] for r in rows))


def test_another_keys_request_id_does_not_reach_its_spend(gateway: tuple[str, Path]) -> None:
    url, home = gateway
    _, alice = admin(url, "POST", "/admin/keys", {"name": "alice"})
    _, bob = admin(url, "POST", "/admin/keys", {"name": "bob"})
    as_bob = openai.OpenAI(base_url=url, api_key=bob["key"], max_retries=0)
    as_alice = openai.OpenAI(base_url=url, api_key=alice["key"], max_retries=0)
    first = as_bob.chat.completions.with_raw_response.create(model="echo", messages=[{"role": "user", "content": "b"}])
    bobs_id = first.headers["x-request-id"]
    as_alice.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a"}],
                                     extra_headers={"x-request-id": bobs_id})  # alice reuses bob's id
    _ledger(home, "key_id = ?", (alice["id"],), 1)
    spend = httpx.get(f"{url}/spend", headers={"authorization": f"Bearer {bob['key']}"}).json()
    assert spend["requests"] == 1 and spend["upstream_calls"] == 1  # only bob's own request
    rows = _ledger(home, "client_request_id = ?", (bobs_id,), 1)
    assert [r[2] for r in rows] == [alice["id"]]


def test_a_key_made_by_the_cli_works_on_the_very_next_request_on_every_replica(
        tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    settings = _settings(fault[0], tmp_path, control={"key_refresh_s": 3600.0})
    with run_gateway(settings) as first, run_gateway(settings) as second:
        env = {**os.environ, "TOKENOMY_HOME": str(tmp_path)}
        made = subprocess.run([sys.executable, "-m", "tokenomy", "keys", "create", "--name", "fresh", "--json"],
                              env=env, capture_output=True, text=True, check=True)
        key = json.loads(made.stdout)["key"]
        for url in (first, second):
            client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
            assert client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}]).choices
        with pytest.raises(openai.AuthenticationError):  # a made-up key is still refused (and asked once)
            openai.OpenAI(base_url=first, api_key=key[:-4] + "zzzz", max_retries=0).chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "hi"}])


def _cache_status(url: str) -> str:
    client = openai.OpenAI(base_url=url, api_key=MASTER, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "user", "content": "shared between replicas?"}])
    return raw.headers["x-tokenomy-cache"]


def test_redis_url_alone_shares_the_exact_cache_between_replicas(
        tmp_path: Path, fault: tuple[str, FaultUpstream], redis_prefix: str) -> None:  # noqa: F811
    homes = [tmp_path / name for name in ("a", "b", "c")]  # replicas on three machines: nothing shared on disk
    a, b, c = (_settings(fault[0], home, redis_url=REDIS_URL, control={"redis_prefix": redis_prefix})
               for home in homes)
    with run_gateway(a) as first, run_gateway(b) as second, run_gateway(c) as third:
        assert [_cache_status(u) for u in (first, second, third, first)] == ["miss", "hit", "hit", "hit"]


def test_an_explicit_cache_store_still_wins_over_redis(
        tmp_path: Path, fault: tuple[str, FaultUpstream], redis_prefix: str) -> None:  # noqa: F811
    local = CacheConfig(exact=ExactCacheConfig(store="memory"))
    a, b = (_settings(fault[0], tmp_path / name, redis_url=REDIS_URL, control={"redis_prefix": redis_prefix},
                      cache=local) for name in ("a", "b"))
    with run_gateway(a) as first, run_gateway(b) as second:
        assert [_cache_status(u) for u in (first, second, first)] == ["miss", "miss", "hit"]


def test_files_answer_in_openais_shape(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    settings = _settings(fault[0], tmp_path, batch=BatchConfig())
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key=MASTER, max_retries=0)
        line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "echo", "messages": [{"role": "user", "content": "x"}]}}
        made = client.files.create(file=("a.jsonl", io.BytesIO(json.dumps(line).encode())), purpose="batch")
        for shown in (made, client.files.retrieve(made.id), next(iter(client.files.list()))):
            assert shown.status == "processed"
            assert shown.expires_at is None or isinstance(shown.expires_at, int)
            assert shown.filename == "a.jsonl" and shown.purpose == "batch"


class _CountingStore:
    """A key store that knows no key and counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def list_keys(self) -> list[Any]:
        return []

    def teams(self) -> list[Any]:
        return []

    def by_hash(self, key_hash: str) -> tuple[None, list[Any]]:
        self.asked += 1
        return None, []


async def test_a_flood_of_made_up_keys_costs_the_store_little() -> None:
    from tokenomy.control.auth import ASKS, KeyCache
    from tokenomy.errors import AuthenticationError

    store = _CountingStore()
    keys = KeyCache(store, "master", refresh_s=3600)  # type: ignore[arg-type]
    await keys.reload()
    made_up = [f"tk-{i:043d}" for i in range(ASKS + 500)]
    for key in [*made_up, *made_up[:10]]:  # each unknown digest is asked once, and at most ASKS per refresh
        with pytest.raises(AuthenticationError):
            await keys.authenticate({"authorization": f"Bearer {key}"})
    assert store.asked == ASKS
