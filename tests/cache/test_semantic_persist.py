"""Semantic-cache entries survive a restart of the embedded gateway: they are kept in the exact cache's SQLite file
(``semantic_entries`` in cache.db) beside the answers they point at, removals by feedback included, bounded by
``max_entries``; with the semantic store ``memory`` nothing is kept."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from servers import run_fault_upstream, run_gateway
from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.persisted import SQLiteEntries
from tokenomy.cache.semantic.verifier import Calibration, load_calibration
from tokenomy.cache.setup import build_exact_cache, build_semantic_layer
from tokenomy.cache.stores import SQLiteStore
from tokenomy.config.settings import (
    CacheConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LedgerConfig,
    LocalConfig,
    PriceOverride,
    SemanticCacheConfig,
    Settings,
)
from tokenomy.errors import ConfigError
from tokenomy.testing.fault_upstream import FaultUpstream

Q, PARAPHRASE = "What is the capital of France?", "what's the capital city of France?"  # a hit in test_semantic_gateway


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as pair:
        yield pair


def _settings(home: Path, base: str, **semantic: object) -> Settings:
    calibration = home / "calibration.json"  # the shipped verifier, serving from score 0.8 at any max_error
    calibration.write_bytes(Calibration(load_calibration().verifier, ((0.001, 0.8),), "test").to_json())
    price = PriceOverride(input_usd_per_mtok=Decimal("2.5"), output_usd_per_mtok=Decimal("10"))
    exact = ExactCacheConfig(store=semantic.pop("exact_store", "sqlite"))  # type: ignore[arg-type]
    return Settings(
        local=LocalConfig(enabled=False), env_providers=False, home=str(home),
        ledger=LedgerConfig(database_url=str(home / "ledger.db")),
        cache=CacheConfig(exact=exact, semantic=SemanticCacheConfig(enabled=True, calibration=str(calibration),
                                                                    policy="calibrated", **semantic)),  # type: ignore[arg-type]
        deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base,
                                      price=price)])


def _ask(url: str, text: str) -> tuple[str, str | None]:
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "system", "content": "Answer briefly."},
                                               {"role": "user", "content": text}])
    return raw.headers["x-tokenomy-cache"], raw.parse().choices[0].message.content


def _saved(home: Path) -> list[str]:
    with sqlite3.connect(home / "cache.db") as db:
        return [row[0] for row in db.execute("SELECT text FROM semantic_entries ORDER BY added_at")]


def test_a_paraphrase_is_a_semantic_hit_after_a_restart(tmp_path: Path,
                                                        upstream: tuple[str, FaultUpstream]) -> None:
    base, fake = upstream
    settings = _settings(tmp_path, base)
    with run_gateway(settings) as url:
        assert _ask(url, Q) == ("miss", f"echo: {Q}")
    assert _saved(tmp_path) == [Q.lower()]
    before = fake.calls["echo"]
    with run_gateway(settings) as url:  # a new process's index, on the same data dir
        assert _ask(url, PARAPHRASE) == ("semantic-hit", f"echo: {Q}")
    assert fake.calls["echo"] == before


def test_an_entry_removed_by_feedback_stays_removed_after_a_restart(tmp_path: Path,
                                                                    upstream: tuple[str, FaultUpstream]) -> None:
    base, fake = upstream
    settings = _settings(tmp_path, base)
    with run_gateway(settings) as url:
        _ask(url, Q)
        _ask(url, "Why is the sky blue?")
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        hit = client.chat.completions.with_raw_response.create(
            model="echo", temperature=0, messages=[{"role": "system", "content": "Answer briefly."},
                                                   {"role": "user", "content": "Why is the sky blue in colour?"}])
        assert hit.headers["x-tokenomy-cache"] == "semantic-hit"
        request = urllib.request.Request(url + "/feedback", method="POST", headers={"content-type": "application/json"},
                                         data=json.dumps({"request_id": hit.headers["x-request-id"],
                                                          "correct": False}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["applied"] is True
    assert _saved(tmp_path) == [Q.lower()]  # the sky entry was deleted, the other kept
    before = fake.calls["echo"]
    with run_gateway(settings) as url:
        assert _ask(url, "Why is the sky blue in colour?") == ("miss", "echo: Why is the sky blue in colour?")
        assert fake.calls["echo"] == before + 1
        assert _ask(url, PARAPHRASE) == ("semantic-hit", f"echo: {Q}")
    assert fake.calls["echo"] == before + 1


def test_the_semantic_store_memory_keeps_nothing(tmp_path: Path, upstream: tuple[str, FaultUpstream]) -> None:
    base, fake = upstream
    settings = _settings(tmp_path, base, store="memory")
    with run_gateway(settings) as url:
        _ask(url, Q)
    before = fake.calls["echo"]
    with run_gateway(settings) as url:
        assert _ask(url, Q)[0] == "hit"  # the exact cache's answer is on disk ...
        assert _ask(url, PARAPHRASE)[0] == "miss"  # ... but no semantic entry points at it
    assert fake.calls["echo"] == before + 1
    with sqlite3.connect(tmp_path / "cache.db") as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'semantic_entries'").fetchone() is None


def test_the_store_follows_the_exact_cache(tmp_path: Path) -> None:
    def entries(**semantic: object) -> object:
        settings = _settings(tmp_path, "http://127.0.0.1:9", **semantic)
        layer = build_semantic_layer(settings, build_exact_cache(settings, {}), _no_embedder, {})
        assert layer is not None
        return layer.entries

    assert isinstance(entries(), SQLiteEntries)  # auto, exact cache in sqlite
    assert entries(exact_store="memory") is None  # auto, exact cache in memory: answers do not survive either
    assert entries(store="memory") is None
    with pytest.raises(ConfigError, match=r"cache\.semantic\.store.*needs cache\.exact\.store 'sqlite'"):
        entries(store="sqlite", exact_store="memory")


async def _no_embedder() -> object:
    raise AssertionError("not called")


def _vectors(n: int) -> np.ndarray:
    vectors = np.random.default_rng(7).normal(size=(n, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _cache(max_entries: int) -> SemanticCache:
    return SemanticCache(load_calibration(), max_error=0.1, max_entries=max_entries)


async def test_the_table_is_bounded_by_max_entries(tmp_path: Path) -> None:
    path, vectors = tmp_path / "cache.db", _vectors(7)
    cache = _cache(3)
    saved = SQLiteEntries(path, cache, max_entries=3)
    await saved.start()
    for i in range(7):
        cache.insert("ctx" if i % 2 else "other", f"question {i}", vectors[i], f"k{i}")
        await saved.publish_add("ctx" if i % 2 else "other", f"Question {i}", vectors[i], f"k{i}")
    await saved.publish_add("ctx", "question 5", vectors[5], "k5-new")  # a refresh: not a new row, its age kept
    await saved.aclose()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT text, answer_key FROM semantic_entries ORDER BY added_at").fetchall()
    assert rows == [("question 4", "k4"), ("question 5", "k5-new"), ("question 6", "k6")]
    assert len(cache) == 3
    again = _cache(3)
    reloaded = SQLiteEntries(path, again, max_entries=3)
    await reloaded.start()
    await reloaded.aclose()
    assert reloaded.loaded == 3 and len(again) == 3
    match = again.lookup("ctx", "question 5", vectors[5])
    assert match is not None and match.entry.answer_key == "k5-new" and match.cosine == pytest.approx(1, abs=0.01)
    fewer = _cache(2)  # a lower max_entries on the next start: the newest two are loaded, the table trimmed to them
    trimmed = SQLiteEntries(path, fewer, max_entries=2)
    await trimmed.start()
    await trimmed.aclose()
    assert trimmed.loaded == 2 and [r[0] for r in sqlite3.connect(path).execute(
        "SELECT text FROM semantic_entries ORDER BY added_at")] == ["question 5", "question 6"]


async def test_entries_whose_answer_is_gone_are_dropped_at_load(tmp_path: Path) -> None:
    path, vectors = tmp_path / "cache.db", _vectors(3)
    store = SQLiteStore(path, 1 << 20)
    await store.put("live", b"{}", 60)
    await store.put("expired", b"{}", -1)
    saved = SQLiteEntries(path, _cache(10), max_entries=10)
    await saved.start()
    for i, key in enumerate(["live", "expired", "never-stored"]):
        await saved.publish_add("ctx", f"question {i}", vectors[i], key)
    await saved.aclose()
    assert len(_saved(tmp_path)) == 3
    cache = _cache(10)
    reloaded = SQLiteEntries(path, cache, max_entries=10)
    await reloaded.start()
    await reloaded.aclose()
    assert reloaded.loaded == 1 and _saved(tmp_path) == ["question 0"]
    match = cache.lookup("ctx", "question 0", vectors[0])
    assert match is not None and match.entry.answer_key == "live"


async def test_a_failing_file_is_skipped_not_raised(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    saved = SQLiteEntries(blocked / "cache.db", _cache(10), max_entries=10)
    await saved.start()  # cannot open: starts empty
    await saved.publish_add("ctx", "question", _vectors(1)[0], "k")
    await saved.aclose()
    assert saved.loaded == 0 and saved.written == 0 and saved.outage.lines == 1


async def _saved_questions(path: Path, n: int) -> np.ndarray:
    """A table of ``n`` entries "question i" → "ki" in one context, saved by a first start; their vectors."""
    vectors = _vectors(n)
    saved = SQLiteEntries(path, _cache(10), max_entries=10)
    await saved.start()
    for i in range(n):
        await saved.publish_add("ctx", f"question {i}", vectors[i], f"k{i}")
    await saved.aclose()
    return vectors


async def test_a_large_table_loads_in_the_background_without_undoing_live_changes(tmp_path: Path) -> None:
    """Past ``load_before_serving`` the start returns at once and the load runs in chunks; an entry removed or
    re-added by live traffic meanwhile is not brought back or overwritten by its saved copy."""
    path, vectors = tmp_path / "cache.db", await _saved_questions(tmp_path / "cache.db", 7)
    cache = _cache(10)
    background = SQLiteEntries(path, cache, max_entries=10, load_before_serving=2)
    await background.start()
    assert background.loading is not None and background.loaded == 0  # not loaded before serving
    cache.remove_text("ctx", "question 1")  # what the layer does on feedback "wrong", then publishes it
    await background.publish_remove("ctx", "question 1")
    cache.insert("ctx", "question 2", vectors[2], "k2-live")
    await background.publish_add("ctx", "question 2", vectors[2], "k2-live")
    await background.loading
    await background.aclose()
    assert background.loaded == 5 and len(cache) == 6
    assert cache.lookup("ctx", "question 2", vectors[2]).entry.answer_key == "k2-live"  # type: ignore[union-attr]
    removed = cache.lookup("ctx", "question 1", vectors[1])
    assert removed is None or removed.entry.text != "question 1"
    assert _saved(tmp_path) == ["question 0", "question 2", "question 3", "question 4", "question 5", "question 6"]


async def test_a_removal_made_while_its_chunk_goes_in_is_not_undone(tmp_path: Path) -> None:
    """The race the filter alone misses: feedback removes an entry after its chunk was filtered but before the
    chunk is in the index (the layer's removal finds nothing yet); the loader removes it again afterwards."""
    path, vectors = tmp_path / "cache.db", await _saved_questions(tmp_path / "cache.db", 3)
    background: SQLiteEntries | None = None

    class RacingCache(SemanticCache):
        def insert_many(self, context: str, texts: list[str], vectors: Any, answer_keys: list[str]) -> int:
            if background is not None and background._touched is not None and "question 1" in texts:
                background._touched[("ctx", "question 1")] = "remove"  # published while the chunk goes in
            return super().insert_many(context, texts, vectors, answer_keys)

    cache = RacingCache(load_calibration(), max_error=0.1, max_entries=10)
    background = SQLiteEntries(path, cache, max_entries=10, load_before_serving=1)
    await background.start()
    assert background.loading is not None
    await background.loading
    await background.aclose()
    assert len(cache) == 2
    removed = cache.lookup("ctx", "question 1", vectors[1])
    assert removed is None or removed.entry.text != "question 1"
