"""Embeddings micro-batchers are bounded (issue 20): on 939b14d each distinct ``user`` value (or other option) a
client sent made a batcher that was never freed, keyed by the value itself (20 unique 5 MB values: +244 MB)."""

from __future__ import annotations

import gc
import json
import tracemalloc
import uuid
from pathlib import Path

from tests.hardening.parts import JSON, request

from servers import run_gateway
from tokenomy.config.settings import DeploymentConfig, LocalConfig, MicroBatchConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream, fake_vector


def _settings(base: str, home: Path) -> Settings:
    dep = DeploymentConfig(name="emb", provider="openai_compatible", kind="embeddings", base_url=base,
                           model="text-embedding-3-small", upstream_model="text-embedding-3-small",
                           batching=MicroBatchConfig(max_batch=16, max_wait_ms=1.0))
    return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home), deployments=[dep])


def _embed(url: str, **extra: object) -> list[float]:
    body = json.dumps({"model": "text-embedding-3-small", "input": ["one two"], **extra}).encode()
    status, _, raw = request(url + "/embeddings", "POST", body, JSON)
    assert status == 200, raw[:300]
    return list(json.loads(raw)["data"][0]["embedding"])


def _retained(url: str, bodies: list[dict[str, object]]) -> int:
    """Bytes still allocated after the requests are served (tracemalloc, after a collection)."""
    _embed(url)  # warm: the first request builds what every request shares
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for extra in bodies:
            assert _embed(url, **extra) == fake_vector("one two")
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_user_values_leave_nothing_behind(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(_settings(base, tmp_path)) as url:
        users = [{"user": uuid.uuid4().hex + "u" * 1_000_000} for _ in range(20)]  # 20 MB of user values
        assert _retained(url, users) < 4_000_000

