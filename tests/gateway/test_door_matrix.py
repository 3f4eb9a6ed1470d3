"""The door × rule matrix: every way in is held to every rule of the one request path.

Doors: chat, chat stream, Anthropic's Messages API, OpenAI's Responses API, embeddings (an upstream ``kind:
embeddings`` deployment), a batch run by our workers (``via: gateway``) and a batch handed to a provider (``via:
provider``, the stand-in batch API). Rules: no key → 401;
a revoked key → 401; a model the key may not use → 403, no upstream call; a spent budget → 429 ``insufficient_quota``
before any upstream call; RPM → 429 (a batch run by our workers waits its rate limit out instead: no line passes
it); one ledger row per request, under the key; the key's spend counter = the sum of its rows.

One gateway (master key, keys made through the admin API) serves the whole module; each cell makes its own keys.
Clients are the official ``openai`` SDK (``anthropic`` for the Messages door). A batch cell asks with a one-line
batch and reads the line's outcome.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.control.parts import MASTER, admin, priced

from servers import run_aiohttp, run_fault_upstream, run_gateway
from tokenomy.config.settings import (
    BatchConfig,
    CacheConfig,
    ControlConfig,
    DeploymentConfig,
    EmbeddingsConfig,
    ExactCacheConfig,
    LocalConfig,
    PriceOverride,
    Settings,
)
from tokenomy.testing.batch_upstream import BatchUpstream
from tokenomy.testing.fault_upstream import FaultUpstream


@dataclass
class World:
    url: str
    home: Path
    fault: FaultUpstream
    provider: BatchUpstream


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("matrix")
    provider = BatchUpstream(polls=1)
    with run_fault_upstream() as (base, fault), run_aiohttp(provider.app()) as provider_base:
        settings = Settings(
            deployments=[
                priced("echo", base, "echo", input_usd="1000", output_usd="1000"),
                DeploymentConfig(name="emb", provider="openai_compatible", model="emb", upstream_model="emb",
                                 base_url=base, kind="embeddings",
                                 price=PriceOverride(input_usd_per_mtok=Decimal("1000"),
                                                     output_usd_per_mtok=Decimal("0"))),
                DeploymentConfig(name="oai", provider="openai", model="gpt-4o-mini", base_url=f"{provider_base}/v1",
                                 api_key_env="OPENAI_API_KEY"),
            ],
            local=LocalConfig(enabled=False), env_providers=False, home=str(home),
            embeddings=EmbeddingsConfig(enabled=False), control=ControlConfig(master_key=MASTER),
            cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
            batch=BatchConfig(max_concurrency=2, poll_interval_s=0.05))
        with run_gateway(settings, env={"OPENAI_API_KEY": "sk-test"}) as url:
            yield World(url, home, fault, provider)


# --- the doors: one request each, its outcome as (status, error code) -------------------------------------------

Outcome = tuple[int, str | None]


def _client(world: World, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=world.url, api_key=key or "unused", max_retries=0, timeout=30)


def _no_key(key: str | None) -> dict[str, Any]:
    """Options that make the SDK send no ``Authorization`` header at all when there is no key."""
    return {} if key else {"extra_headers": {"Authorization": openai.Omit()}}


def _failure(exc: openai.APIStatusError) -> Outcome:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return exc.status_code, error.get("code") if isinstance(error, dict) else None


def chat(world: World, key: str | None) -> Outcome:
    try:
        _client(world, key).chat.completions.create(model="echo", max_tokens=8, **_no_key(key),
                                                    messages=[{"role": "user", "content": "matrix chat"}])
    except openai.APIStatusError as exc:
        return _failure(exc)
    return 200, None


def stream(world: World, key: str | None) -> Outcome:
    try:
        for _ in _client(world, key).chat.completions.create(
                model="echo", max_tokens=8, stream=True, messages=[{"role": "user", "content": "matrix stream"}],
                **_no_key(key)):
            pass
    except openai.APIStatusError as exc:
        return _failure(exc)
    return 200, None


def messages(world: World, key: str | None) -> Outcome:
    """Anthropic's Messages API through the official ``anthropic`` SDK (``x-api-key``); the error code of our tree
    comes in the ``x-tokenomy-error-code`` header, beside Anthropic's error body."""
    client = anthropic.Anthropic(base_url=world.url.removesuffix("/v1"), api_key=key or "unused", max_retries=0,
                                 timeout=30)
    try:
        client.messages.create(model="echo", max_tokens=8, messages=[{"role": "user", "content": "matrix messages"}],
                               **({} if key else {"extra_headers": {"X-Api-Key": anthropic.Omit()}}))
    except anthropic.APIStatusError as exc:
        assert isinstance(exc.body, dict) and exc.body["type"] == "error", exc.body  # Anthropic's error shape
        return exc.status_code, exc.response.headers.get("x-tokenomy-error-code")
    return 200, None


def messages_stream(world: World, key: str | None) -> Outcome:
    """The Messages door streamed (its events rendered by the door from the core's chunks)."""
    client = anthropic.Anthropic(base_url=world.url.removesuffix("/v1"), api_key=key or "unused", max_retries=0,
                                 timeout=30)
    try:
        for _ in client.messages.create(model="echo", max_tokens=8, stream=True,
                                        messages=[{"role": "user", "content": "matrix messages stream"}],
                                        **({} if key else {"extra_headers": {"X-Api-Key": anthropic.Omit()}})):
            pass
    except anthropic.APIStatusError as exc:
        assert isinstance(exc.body, dict) and exc.body["type"] == "error", exc.body
        return exc.status_code, exc.response.headers.get("x-tokenomy-error-code")
    return 200, None


def responses_stream(world: World, key: str | None) -> Outcome:
    try:
        for _ in _client(world, key).responses.create(model="echo", input="matrix responses stream",
                                                      max_output_tokens=8, stream=True, **_no_key(key)):
            pass
    except openai.APIStatusError as exc:
        return _failure(exc)
    return 200, None


def responses(world: World, key: str | None) -> Outcome:
    try:
        _client(world, key).responses.create(model="echo", input="matrix responses", max_output_tokens=8,
                                             **_no_key(key))
    except openai.APIStatusError as exc:
        return _failure(exc)
    return 200, None


def embeddings(world: World, key: str | None) -> Outcome:
    try:
        _client(world, key).embeddings.create(model="emb", input=["matrix embeddings"], **_no_key(key))
    except openai.APIStatusError as exc:
        return _failure(exc)
    return 200, None


def _batch(world: World, key: str | None, model: str, via: str, *, wait_s: float = 90) -> Outcome:
    """A one-line batch: the line's (status, code), or the HTTP failure of the upload or create; (0, 'pending')
    while its line has not run after ``wait_s``."""
    client = _client(world, key)
    line = {"custom_id": "only", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": f"matrix {via}"}]}}
    try:
        source = client.files.create(file=("m.jsonl", io.BytesIO(json.dumps(line).encode() + b"\n")),
                                     purpose="batch", **_no_key(key))
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h", metadata={"tokenomy_via": via})
    except openai.APIStatusError as exc:
        return _failure(exc)
    deadline = time.monotonic() + wait_s
    while (found := client.batches.retrieve(batch.id)).status not in ("completed", "failed", "expired"):
        if time.monotonic() > deadline:
            client.batches.cancel(batch.id)
            return 0, "pending"
        time.sleep(0.05)
    assert found.status == "completed", found
    file_id = found.output_file_id or found.error_file_id
    row = json.loads(client.files.content(str(file_id)).text.splitlines()[0])
    response = row["response"]
    return response["status_code"], (response["body"].get("error") or {}).get("code")


def batch_gateway(world: World, key: str | None) -> Outcome:
    return _batch(world, key, "echo", "gateway")


def batch_provider(world: World, key: str | None) -> Outcome:
    return _batch(world, key, "gpt-4o-mini", "provider")


@dataclass(frozen=True)
class Door:
    name: str
    ask: Callable[[World, str | None], Outcome]
    calls: Callable[[World], int]  # upstream calls this door has made so far
    model: str  # the model name a key must be allowed

    def __str__(self) -> str:
        return self.name


DOORS = [
    Door("chat", chat, lambda w: w.fault.calls["echo"], "echo"),
    Door("chat-stream", stream, lambda w: w.fault.calls["echo"], "echo"),
    Door("messages", messages, lambda w: w.fault.calls["echo"], "echo"),
    Door("responses", responses, lambda w: w.fault.calls["echo"], "echo"),
    Door("messages-stream", messages_stream, lambda w: w.fault.calls["echo"], "echo"),
    Door("responses-stream", responses_stream, lambda w: w.fault.calls["echo"], "echo"),
    Door("embeddings", embeddings, lambda w: w.fault.embedding_calls["emb"], "emb"),
    Door("batch-gateway", batch_gateway, lambda w: w.fault.calls["echo"], "echo"),
    Door("batch-provider", batch_provider,
         lambda w: sum(len(job.requests) for job in w.provider.openai.values()), "gpt-4o-mini"),
]


def _key(world: World, **fields: Any) -> dict[str, Any]:
    status, made = admin(world.url, "POST", "/admin/keys", {"name": f"k{time.monotonic_ns()}", **fields})
    assert status == 201, made
    return made


def _rows(world: World, key_id: str, expected: int) -> list[tuple[Any, ...]]:
    """The key's ledger rows (status, cost_pusd, key_id), once there are ``expected`` of them."""
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(world.home / "ledger.db") as db:
            rows = db.execute("SELECT status, cost_pusd, key_id FROM requests WHERE key_id = ?", (key_id,)).fetchall()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# --- the rules ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_no_key_is_refused(world: World, door: Door) -> None:
    before = door.calls(world)
    assert door.ask(world, None)[0] == 401
    assert door.calls(world) == before


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_revoked_key_is_refused(world: World, door: Door) -> None:
    key = _key(world)
    status, _ = admin(world.url, "POST", f"/admin/keys/{key['id']}/revoke")
    assert status == 200
    before = door.calls(world)
    assert door.ask(world, key["key"]) == (401, "invalid_api_key")
    assert door.calls(world) == before


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_model_not_allowed_is_refused(world: World, door: Door) -> None:
    key = _key(world, models=["some-other-model"])
    before = door.calls(world)
    status, code = door.ask(world, key["key"])
    assert (status, code) == (403, "model_not_allowed"), door
    assert door.calls(world) == before
    assert [r[0] for r in _rows(world, key["id"], 1)] == [403]  # the refusal is in the ledger, at no cost


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_spent_budget_is_refused_before_any_upstream_call(world: World, door: Door) -> None:
    key = _key(world, budget_usd="0.000000001")
    assert door.ask(world, key["key"]) == (200, None)  # nothing else in flight: the first may overshoot
    before = door.calls(world)
    assert door.ask(world, key["key"]) == (429, "insufficient_quota")
    assert door.calls(world) == before


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_rpm(world: World, door: Door) -> None:
    key = _key(world, rpm=1)
    assert door.ask(world, key["key"]) == (200, None)
    before = door.calls(world)
    if door.name == "batch-gateway":  # our workers wait a line's rate limit out: it stays pending, never passes
        assert _batch(world, key["key"], "echo", "gateway", wait_s=3) == (0, "pending")
    else:
        assert door.ask(world, key["key"]) == (429, "requests_rate_limited")
    assert door.calls(world) == before


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_one_row_per_request_and_the_spend_is_their_sum(world: World, door: Door) -> None:
    key = _key(world, budget_usd="100")
    for _ in range(3):
        assert door.ask(world, key["key"]) == (200, None)
    rows = _rows(world, key["id"], 3)
    assert len(rows) == 3 and {r[2] for r in rows} == {key["id"]} and {r[0] for r in rows} == {200}
    total = sum(int(r[1]) for r in rows)
    assert total > 0
    deadline = time.monotonic() + 10
    while True:
        _, shown = admin(world.url, "GET", f"/admin/keys/{key['id']}")
        budget = shown["budgets"][0]
        if Decimal(budget["reserved_usd"]) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert Decimal(budget["spent_usd"]) * 10**12 == total
    assert Decimal(budget["reserved_usd"]) == 0
