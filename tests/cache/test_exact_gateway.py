"""The exact cache in the gateway: hits skip the upstream, replay as streams, and show in the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import DeploymentConfig, LedgerConfig, LocalConfig, PriceOverride, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, FaultUpstream, Path]]:
    home = tmp_path_factory.mktemp("cache-home")
    price = PriceOverride(input_usd_per_mtok=Decimal("2.5"), output_usd_per_mtok=Decimal("10"))
    with run_fault_upstream() as (base, upstream):
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=[
                                DeploymentConfig(name="echo", provider="openai_compatible", model="echo",
                                                 base_url=base, price=price),
                                DeploymentConfig(name="breaks", provider="openai_compatible", model="breaks",
                                                 upstream_model="break-stream", base_url=base, max_retries=0)])
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), upstream, home


def _text() -> str:
    return f"question {uuid.uuid4().hex[:8]}"


def test_deterministic_repeat_is_a_hit(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, _ = setup
    text = _text()
    first = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "user", "content": text}])
    second = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "user", "content": text}])
    assert first.headers["x-tokenomy-cache"] == "miss" and second.headers["x-tokenomy-cache"] == "hit"
    assert second.parse().choices[0].message.content == f"echo: {text}"
    assert second.parse().id != first.parse().id
    assert second.headers["x-tokenomy-cost-usd"] == "0"
    assert float(second.headers["x-tokenomy-saving-usd"]) > 0
    assert upstream.calls["echo"] >= 1 and sum(upstream.calls.values()) == upstream.calls["echo"] + \
        upstream.calls["break-stream"]


def test_stream_miss_is_stored_and_replayed(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, _ = setup
    text = _text()
    before = upstream.calls["echo"]
    streamed = list(client.chat.completions.create(model="echo", temperature=0, stream=True,
                                                   messages=[{"role": "user", "content": text}]))
    raw = client.chat.completions.with_raw_response.create(model="echo", temperature=0,
                                                           messages=[{"role": "user", "content": text}])
    assert raw.headers["x-tokenomy-cache"] == "hit"
    assert raw.parse().choices[0].message.content == "".join(c.choices[0].delta.content or "" for c in streamed
                                                             if c.choices)
    replay = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": text}])
    assert replay.headers["x-tokenomy-cache"] == "hit"
    chunks = list(replay.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"echo: {text}"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert upstream.calls["echo"] == before + 1


def test_broken_stream_is_never_stored(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, _ = setup
    for _ in range(2):
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="breaks", temperature=0, stream=True,
                                                messages=[{"role": "user", "content": "a b c d"}]))
    assert upstream.calls["break-stream"] == 2


def test_no_store_and_non_deterministic_skip_the_cache(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, _, _ = setup
    text = _text()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="echo", temperature=0, messages=[{"role": "user", "content": text}],
            extra_headers={"cache-control": "no-store"})
        assert raw.headers["x-tokenomy-cache"] == "none"
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="echo", temperature=0.7,
                                                               messages=[{"role": "user", "content": text}])
        assert raw.headers["x-tokenomy-cache"] == "none"


def test_hits_show_in_spend(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, _, home = setup
    text = _text()
    for _ in range(3):
        client.chat.completions.create(model="echo", temperature=0, messages=[{"role": "user", "content": text}])
    time.sleep(0.3)  # the ledger writer flushes every 50 ms
    env = {**os.environ, "TOKENOMY_DATABASE_URL": str(home / "ledger.db")}
    report = json.loads(subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--json"], env=env,
                                       capture_output=True, text=True, check=True, timeout=60).stdout)
    assert report["cache"]["hits"] >= 2 + 2 + 1  # this test's 2, plus the earlier tests' hits
    assert float(report["saving_usd"]) > 0
