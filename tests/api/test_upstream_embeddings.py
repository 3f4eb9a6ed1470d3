"""/v1/embeddings to upstream deployments (kind: embeddings): served, failed over, priced in the ledger, and —
with batching — concurrent requests coalesced into few upstream calls, each request getting its own vectors and a
share of the usage that adds up to what the upstream reported."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from servers import run_gateway
from tokenomy.config.settings import DeploymentConfig, LocalConfig, MicroBatchConfig, Settings
from tokenomy.ledger.records import PICO
from tokenomy.testing.fault_upstream import FaultUpstream, fake_vector


def _settings(base: str, home: Path, tag: str, batching: MicroBatchConfig | None) -> Settings:
    def dep(name: str, upstream: str, **kw: object) -> DeploymentConfig:
        return DeploymentConfig(name=name, provider="openai_compatible", kind="embeddings", base_url=base,
                                upstream_model=upstream, **kw)  # type: ignore[arg-type]

    return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home), deployments=[
        dep("broken", "error-500", model="text-embedding-3-small", max_retries=0),
        dep("small", "text-embedding-3-small", model="text-embedding-3-small", batching=batching),
        dep("other", f"other-{tag}", model="my-embedder")])


def _rows(home: Path) -> list[tuple[int, int | None, str]]:
    time.sleep(0.3)  # the ledger writer flushes every 50 ms
    with sqlite3.connect(home / "ledger.db") as conn:
        return conn.execute("SELECT input_tokens, cost_pusd, status FROM requests WHERE endpoint = 'embeddings'"
                            ).fetchall()


def test_upstream_embeddings_fail_over_and_are_priced(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, upstream = fault
    tag = uuid.uuid4().hex[:6]
    with run_gateway(_settings(base, tmp_path, tag, None)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=["one two", "three"])
        result = raw.parse()
        assert [d.embedding for d in result.data] == [fake_vector("one two"), fake_vector("three")]
        assert result.usage.prompt_tokens == 5 and raw.headers["x-tokenomy-tier"] == "upstream-embedding"
        assert upstream.embedding_calls["error-500"] >= 1  # the first deployment failed; the next one answered
        listed = {m.id for m in client.models.list()}
        assert {"text-embedding-3-small", "my-embedder"} <= listed
        with pytest.raises(openai.NotFoundError, match="my-embedder"):
            client.embeddings.create(model="nope", input="x")
    rows = _rows(tmp_path)
    assert sorted(r[2] for r in rows) == [200, 404]  # the unknown model's refusal is a row too, at no cost
    ((tokens, cost, status),) = [r for r in rows if r[2] == 200]
    assert (tokens, status) == (5, 200)
    assert [r[1] for r in rows if r[2] == 404] == [0]
    assert Decimal(cost) / PICO == Decimal(5) * Decimal("0.02") / 1_000_000


def test_concurrent_requests_are_coalesced(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, upstream = fault
    tag = uuid.uuid4().hex[:6]
    n = 48
    before = upstream.embedding_calls["text-embedding-3-small"]
    texts = [f"request number {i} with some words" + " more" * (i % 5) for i in range(n)]
    with run_gateway(_settings(base, tmp_path, tag, MicroBatchConfig(max_batch=16, max_wait_ms=20))) as url:
        client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)

        async def burst() -> list[list[float]]:
            answers = await asyncio.gather(*(client.embeddings.create(model="text-embedding-3-small", input=t)
                                             for t in texts))
            return [a.data[0].embedding for a in answers]

        vectors = asyncio.run(burst())
    assert vectors == [fake_vector(t) for t in texts]  # each request got its own embedding back
    calls = upstream.embedding_calls["text-embedding-3-small"] - before
    assert calls <= n // 4, f"{calls} upstream calls for {n} requests: not coalesced"
    rows = _rows(tmp_path)
    assert len(rows) == n
    reported = sum(len(t.split()) + 1 for t in texts)  # what the upstream billed, over all its calls
    assert sum(r[0] for r in rows) == reported
