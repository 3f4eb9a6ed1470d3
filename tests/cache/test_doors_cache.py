"""The exact cache across doors: a Responses request is a chat request (the same translated body, the same answer),
so the two share an entry; a Messages request carries its own Anthropic request (an Anthropic deployment answers
that, thinking blocks and all), so it never shares an entry with a chat request, only with the same Messages
request. Each door's ledger rows name the door."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import anthropic
import openai
from tests.control.parts import priced

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import CacheConfig, ExactCacheConfig, LocalConfig, Settings

QUESTION = [{"role": "user", "content": "cache me across doors"}]


def test_doors_share_cache_entries_only_when_the_answer_is_the_same(tmp_path: Path) -> None:
    with run_fault_upstream() as (base, fault):
        settings = Settings(deployments=[priced("echo", base, "echo")], local=LocalConfig(enabled=False),
                            env_providers=False, home=str(tmp_path),
                            cache=CacheConfig(exact=ExactCacheConfig(store="memory")))
        with run_gateway(settings) as url:
            chat = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
            claude = anthropic.Anthropic(base_url=url.removesuffix("/v1"), api_key="unused", max_retries=0)
            asked = chat.chat.completions.with_raw_response.create(model="echo", messages=QUESTION,  # type: ignore[arg-type]
                                                                   max_tokens=8, temperature=0)
            assert asked.headers["x-tokenomy-cache"] == "miss"
            reply = chat.responses.with_raw_response.create(model="echo", input=QUESTION[0]["content"],
                                                            max_output_tokens=8, temperature=0)
            assert reply.headers["x-tokenomy-cache"] == "hit"  # the same chat request underneath
            assert reply.parse().output_text == asked.parse().choices[0].message.content
            kwargs = {"model": "echo", "max_tokens": 8, "messages": QUESTION, "extra_body": {"temperature": 0}}
            first = claude.messages.with_raw_response.create(**kwargs)  # type: ignore[arg-type]
            again = claude.messages.with_raw_response.create(**kwargs)  # type: ignore[arg-type]
            assert (first.headers["x-tokenomy-cache"], again.headers["x-tokenomy-cache"]) == ("miss", "hit")
            assert again.parse().content == first.parse().content
            assert fault.calls["echo"] == 2  # the chat miss and the Messages miss
            time.sleep(0.3)  # the ledger writer flushes every 50 ms
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = db.execute("SELECT endpoint, cache_status FROM requests ORDER BY started_us").fetchall()
    assert rows == [("chat.completions", "miss"), ("responses", "hit"), ("messages", "miss"), ("messages", "hit")]
