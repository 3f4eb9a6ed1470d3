"""The semantic cache in the gateway: a paraphrase is served from cache with the original answer, only in the same
context, and shows in the ledger as a semantic hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from servers import run_fault_upstream, run_gateway
from tokenomy.cache.semantic.verifier import Calibration, load_calibration
from tokenomy.config.settings import (
    CacheConfig,
    DeploymentConfig,
    LedgerConfig,
    LocalConfig,
    PriceOverride,
    SemanticCacheConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, FaultUpstream, Path]]:
    home = tmp_path_factory.mktemp("semantic-home")
    calibration = home / "calibration.json"  # the shipped verifier, serving from score 0.8 at any max_error
    calibration.write_bytes(Calibration(load_calibration().verifier, ((0.001, 0.8),), "test").to_json())
    price = PriceOverride(input_usd_per_mtok=Decimal("2.5"), output_usd_per_mtok=Decimal("10"))
    with run_fault_upstream() as (base, upstream):
        settings = Settings(
            local=LocalConfig(enabled=False), env_providers=False, home=str(home),
            ledger=LedgerConfig(database_url=str(home / "ledger.db")),
            cache=CacheConfig(semantic=SemanticCacheConfig(enabled=True, calibration=str(calibration),
                                                           policy="calibrated")),
            deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base,
                                          price=price)])
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), upstream, home


def _ask(client: openai.OpenAI, text: str, system: str = "Answer briefly.", **extra: object) -> object:
    return client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "system", "content": system},
                                               {"role": "user", "content": text}], **extra)  # type: ignore[call-overload]


def test_paraphrase_is_a_semantic_hit(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, home = setup
    before = upstream.calls["echo"]
    first = _ask(client, "What is the capital of France?")
    second = _ask(client, "what's the capital city of France?")
    assert first.headers["x-tokenomy-cache"] == "miss"  # type: ignore[attr-defined]
    assert second.headers["x-tokenomy-cache"] == "semantic-hit"  # type: ignore[attr-defined]
    assert float(second.headers["x-tokenomy-semantic-score"]) >= 0.8  # type: ignore[attr-defined]
    assert second.parse().choices[0].message.content == "echo: What is the capital of France?"  # type: ignore[attr-defined]
    assert second.headers["x-tokenomy-cost-usd"] == "0"  # type: ignore[attr-defined]
    assert upstream.calls["echo"] == before + 1
    streamed = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, stream=True,
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What's the capital of France?"}])
    assert streamed.headers["x-tokenomy-cache"] == "semantic-hit"
    text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert text == "echo: What is the capital of France?" and upstream.calls["echo"] == before + 1

    time.sleep(0.3)  # the ledger writer flushes every 50 ms
    env = {**os.environ, "TOKENOMY_DATABASE_URL": str(home / "ledger.db")}
    report = json.loads(subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--json"], env=env,
                                       capture_output=True, text=True, check=True, timeout=60).stdout)
    assert report["cache"]["hits"] >= 2 and float(report["saving_usd"]) > 0


def test_other_context_or_question_goes_upstream(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, _ = setup
    _ask(client, "How do I reverse a list in Python?")
    hit = _ask(client, "How to reverse a list in Python?")
    assert hit.headers["x-tokenomy-cache"] == "semantic-hit"  # type: ignore[attr-defined]
    before = upstream.calls["echo"]
    other_system = _ask(client, "How can I reverse a Python list?", system="Answer in French.")
    other_question = _ask(client, "How do I sort a list in Python?")
    no_cache = client.chat.completions.with_raw_response.create(
        model="echo", temperature=0, messages=[{"role": "system", "content": "Answer briefly."},
                                               {"role": "user", "content": "How can I reverse a Python list?"}],
        extra_headers={"Cache-Control": "no-cache"})
    assert other_system.headers["x-tokenomy-cache"] == "miss"  # type: ignore[attr-defined]
    assert other_question.headers["x-tokenomy-cache"] == "miss"  # type: ignore[attr-defined]
    assert no_cache.headers["x-tokenomy-cache"] == "miss"
    assert upstream.calls["echo"] == before + 3


def _post(url: str, body: dict[str, object]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_feedback_on_a_semantic_hit(setup: tuple[openai.OpenAI, FaultUpstream, Path]) -> None:
    client, upstream, _ = setup
    _ask(client, "Why is the sky blue?")
    hit = _ask(client, "Why is the sky blue in colour?")
    assert hit.headers["x-tokenomy-cache"] == "semantic-hit"  # type: ignore[attr-defined]
    rid = hit.headers["x-request-id"]  # type: ignore[attr-defined]
    url = str(client.base_url).rstrip("/") + "/feedback"
    status, bad = _post(url, {"request_id": rid, "correct": "no"})
    assert status == 400 and bad["error"]["param"] == "correct"
    assert _post(url, {"request_id": rid, "correct": False}) == (200, {"object": "feedback", "request_id": rid,
                                                                       "applied": True})
    status, again = _post(url, {"request_id": rid, "correct": False})
    assert status == 404 and again["error"]["code"] == "feedback_not_found"
    before = upstream.calls["echo"]
    after = _ask(client, "Why is the sky blue in colour?")  # the entry reported wrong is gone: upstream again
    assert after.headers["x-tokenomy-cache"] == "miss" and upstream.calls["echo"] == before + 1  # type: ignore[attr-defined]
