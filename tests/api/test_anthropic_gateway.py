"""An Anthropic deployment end to end: the openai SDK → the gateway → a Messages-API server replaying a recorded
answer with prompt-cache usage → the ledger, priced exactly (cache reads, 5-minute and 1-hour writes apart)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from aiohttp import web

from servers import run_aiohttp, run_gateway
from tokenomy.config.settings import (
    CacheConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LedgerConfig,
    LocalConfig,
    Settings,
)

RECORDED = Path(__file__).parent.parent / "providers" / "fixtures" / "anthropic" / "message_cached.json"


@pytest.fixture()
def fake_anthropic() -> Iterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def messages(request: web.Request) -> web.Response:
        seen.append({"headers": dict(request.headers), "body": await request.json()})
        return web.Response(body=RECORDED.read_bytes(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    with run_aiohttp(app) as base:
        yield base, seen


def test_anthropic_cache_usage_is_priced_exactly(tmp_path: Path,
                                                 fake_anthropic: tuple[str, list[dict[str, object]]]) -> None:
    base, seen = fake_anthropic
    db = tmp_path / "ledger.db"
    settings = Settings(
        local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path),
        cache=CacheConfig(exact=ExactCacheConfig(mode="off")), ledger=LedgerConfig(database_url=str(db)),
        deployments=[DeploymentConfig(name="claude", provider="anthropic", model="claude-sonnet-4-5",
                                      base_url=base, api_key_env="ANTHROPIC_API_KEY", tier="frontier")])
    with run_gateway(settings, env={"ANTHROPIC_API_KEY": "sk-ant-test"}) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=16,
            messages=[{"role": "system", "content": "You answer from the contract."},
                      {"role": "user", "content": "What caps liability?"}])
        completion = raw.parse()
        time.sleep(0.3)  # the ledger writer flushes every 50 ms
    sent = seen[0]
    assert sent["headers"]["x-api-key"] == "sk-ant-test"  # type: ignore[index]
    body = sent["body"]
    assert isinstance(body, dict) and body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 16
    assert body["system"] in ("You answer from the contract.",
                              [{"type": "text", "text": "You answer from the contract."}])
    assert completion.choices[0].message.content.startswith("Section 4.2")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "length"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 13 + 20480 + 1520
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 20480
    # claude-sonnet-4-5: 13 × $3 + 20480 × $0.30 + 1024 × $3.75 + 496 × $6 + 16 × $15 per million tokens
    #                  = 39 + 6144 + 3840 + 2976 + 240 = 13239 µ$
    expected = Decimal("0.013239")
    assert Decimal(raw.headers["x-tokenomy-cost-usd"]) == expected
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT input_tokens, cached_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, "
                           "output_tokens, cost_pusd FROM calls").fetchone()
    assert row[:5] == (13, 20480, 1024, 496, 16)
    assert Decimal(row[5]) / Decimal(10**12) == expected
