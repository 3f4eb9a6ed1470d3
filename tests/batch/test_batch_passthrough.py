"""Pass-through batches: the whole batch goes to the provider's batch API (OpenAI Batch, Anthropic Message
Batches; a stand-in server speaks both), results come back as this batch's output, and the ledger prices each
line at the batch rate with the saving against the standard rate."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from servers import run_aiohttp, run_gateway
from tokenomy.config.settings import (
    BatchConfig,
    CacheConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LedgerConfig,
    LocalConfig,
    Settings,
)
from tokenomy.ledger.records import PICO
from tokenomy.testing.batch_upstream import BatchUpstream


@pytest.fixture
def provider() -> Iterator[tuple[str, BatchUpstream]]:
    fake = BatchUpstream(polls=2)
    with run_aiohttp(fake.app()) as base:
        yield base, fake


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def _settings(base: str, home: Path) -> Settings:
    return Settings(
        deployments=[
            DeploymentConfig(name="oai", provider="openai", model="gpt-4o-mini", base_url=f"{base}/v1",
                             api_key_env="OPENAI_API_KEY"),
            DeploymentConfig(name="claude", provider="anthropic", model="claude-haiku-4-5", base_url=base,
                             api_key_env="ANTHROPIC_API_KEY"),
            DeploymentConfig(name="other", provider="openai_compatible", model="local-only", base_url=f"{base}/v1"),
        ],
        local=LocalConfig(enabled=False), ledger=LedgerConfig(reference_model=None), home=str(home),
        cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
        batch=BatchConfig(via="provider", poll_interval_s=0.05))


ENV = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def _submit(client: openai.OpenAI, model: str, n: int, **extra: Any) -> Any:
    lines = [{"custom_id": f"{model}/{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": f"say {i} now"}]}}
             for i in range(n)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    source = client.files.create(file=("p.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  **extra)
    deadline = time.monotonic() + 30
    while (batch := client.batches.retrieve(batch.id)).status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.05)
    return batch


def _rows(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    return [] if file_id is None else [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


@pytest.mark.parametrize(("model", "standard_in", "standard_out"), [("gpt-4o-mini", "0.15", "0.60"),
                                                                    ("claude-haiku-4-5", "1.00", "5.00")])
def test_pass_through_is_priced_at_the_batch_rate(tmp_path: Path, provider: tuple[str, BatchUpstream], model: str,
                                                  standard_in: str, standard_out: str) -> None:
    base, fake = provider
    with run_gateway(_settings(base, tmp_path), env=ENV) as url:
        client = _client(url)
        batch = _submit(client, model, 5)
        output = _rows(client, batch.output_file_id)
    assert batch.status == "completed", batch.errors
    assert fake.created == 1
    assert [r["custom_id"] for r in output] == [f"{model}/{i}" for i in range(5)]
    assert output[0]["response"]["body"]["choices"][0]["message"]["content"] == "echo: say 0 now"
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        rows = conn.execute("SELECT r.cost_pusd, r.counterfactual_pusd, c.input_tokens, c.output_tokens, "
                            "c.deployment FROM requests r JOIN calls c ON c.request_id = r.id "
                            "WHERE r.endpoint = 'batch.chat.completions'").fetchall()
    assert len(rows) == 5
    for cost, counterfactual, tokens_in, tokens_out, deployment in rows:
        standard = (Decimal(tokens_in) * Decimal(standard_in) + Decimal(tokens_out) * Decimal(standard_out)) \
            / 1_000_000
        assert Decimal(counterfactual) / PICO == standard  # what the same tokens cost at the standard rate
        assert Decimal(cost) / PICO == standard / 2  # the providers' published batch discount: 50 %
        assert deployment == ("oai" if model == "gpt-4o-mini" else "claude")


def test_pass_through_errors_and_refusals(tmp_path: Path, provider: tuple[str, BatchUpstream]) -> None:
    base, _ = provider
    with run_gateway(_settings(base, tmp_path), env=ENV) as url:
        client = _client(url)
        refused = _submit(client, "local-only", 2)
        assert refused.status == "failed"
        assert refused.errors is not None and refused.errors.data is not None
        assert "no deployment of 'local-only' has a provider batch API" in (refused.errors.data[0].message or "")
        gateway_run = _submit(client, "local-only", 2, extra_body={"via": "gateway"})
        assert gateway_run.status == "completed"  # the same lines on tokenomy's own workers


def test_cancel_a_pass_through_batch(tmp_path: Path, provider: tuple[str, BatchUpstream]) -> None:
    base, fake = provider
    fake.polls = 10_000  # never finishes on its own
    with run_gateway(_settings(base, tmp_path), env=ENV) as url:
        client = _client(url)
        data = "".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                                   "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}})
                       + "\n" for i in range(3)).encode()
        source = client.files.create(file=("c.jsonl", io.BytesIO(data)), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 20
        while not fake.openai:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.batches.cancel(batch.id)
        while (batch := client.batches.retrieve(batch.id)).status != "cancelled":
            assert time.monotonic() < deadline, batch.status
            time.sleep(0.05)
        errors = _rows(client, batch.error_file_id)
    assert next(iter(fake.openai.values())).cancelled
    assert {r["error"]["code"] for r in errors} == {"batch_cancelled"} and len(errors) == 3
