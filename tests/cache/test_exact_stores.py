"""The exact cache's key rules and its three stores (memory, SQLite, a real Redis)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from servers import need, redis_up
from tokenomy.cache.key import decide, request_key
from tokenomy.cache.stores import MemoryStore, RedisStore, ResponseStore, SQLiteStore
from tokenomy.wire.stream import StreamAssembler, replay_chunks

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_key_ignores_order_stream_and_bookkeeping_but_not_parameters() -> None:
    base = request_key(BODY, "t1")
    reordered = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key(reordered, "t1") == base
    assert request_key({**BODY, "stream": True, "stream_options": {"include_usage": True}, "user": "u"}, "t1") == base
    assert request_key({**BODY, "max_tokens": 5}, "t1") != base
    assert request_key(BODY, "t2") != base  # tenants never share answers


def test_only_deterministic_requests_unless_opted_in() -> None:
    assert decide(BODY, {}, namespace="n", mode="deterministic") is not None
    assert decide({**BODY, "temperature": 0.7, "seed": 3}, {}, namespace="n", mode="deterministic") is not None
    assert decide({**BODY, "temperature": 0.7}, {}, namespace="n", mode="deterministic") is None
    assert decide({**BODY, "temperature": 0.7}, {"x-tokenomy-cache": "on"}, namespace="n", mode="deterministic")
    assert decide(BODY, {"cache-control": "no-store"}, namespace="n", mode="all") is None
    fresh = decide(BODY, {"cache-control": "no-cache"}, namespace="n", mode="deterministic")
    assert fresh is not None and not fresh.read and fresh.write
    assert decide(BODY, {}, namespace="n", mode="off") is None


async def _exercise(store: ResponseStore) -> None:
    await store.put("a", b"x" * 10, ttl_s=60)
    assert await store.get("a") == b"x" * 10
    await store.put("gone", b"y", ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await store.get("gone") is None
    assert await store.get("never") is None


async def test_memory_store_evicts_least_recently_used_by_bytes() -> None:
    store = MemoryStore(max_bytes=30)
    await _exercise(store)
    await store.put("b", b"b" * 10, ttl_s=60)
    await store.get("a")  # a is now more recent than b
    await store.put("c", b"c" * 15, ttl_s=60)
    assert await store.get("b") is None and await store.get("a") is not None and await store.get("c") is not None


async def test_sqlite_store_persists_and_evicts(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "cache.db", max_bytes=30)
    await _exercise(store)
    await store.put("b", b"b" * 10, ttl_s=60)
    await store.get("a")
    await store.put("c", b"c" * 15, ttl_s=60)
    assert await store.get("b") is None
    reopened = SQLiteStore(tmp_path / "cache.db", max_bytes=30)
    assert await reopened.get("a") == b"x" * 10 and await reopened.get("c") == b"c" * 15


async def test_redis_store_shared_between_clients() -> None:
    need(redis_up(), "no Redis server on 127.0.0.1:6379")
    url = os.environ.get("TOKENOMY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    prefix = f"tokenomy-test:{uuid.uuid4().hex}:"
    one, two = RedisStore(url, prefix=prefix), RedisStore(url, prefix=prefix)
    try:
        await _exercise(one)
        await one.put("shared", b"answer", ttl_s=60)
        assert await two.get("shared") == b"answer"  # another replica sees it
    finally:
        await one.aclose()
        await two.aclose()


def test_stream_assembly_and_replay_round_trip() -> None:
    completion = {"id": "c1", "created": 1, "model": "m", "object": "chat.completion", "usage": {"prompt_tokens": 3},
                  "choices": [
                      {"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                       "finish_reason": "stop", "logprobs": None},
                      {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
                          {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
                       "finish_reason": "tool_calls", "logprobs": None}]}
    assembler = StreamAssembler()
    for chunk in replay_chunks(completion, include_usage=True):
        assembler.feed(chunk)
    rebuilt = assembler.completion()
    assert rebuilt["choices"] == completion["choices"] and rebuilt["usage"] == completion["usage"]
    assert all("usage" not in c for c in replay_chunks(completion, include_usage=False))
