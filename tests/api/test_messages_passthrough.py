"""The Messages door in front of an Anthropic deployment: the official ``anthropic`` SDK → the gateway → a
Messages-API server replaying recorded answers with thinking, a redacted thinking block, a tool call and prompt-cache
usage. The request arrives upstream as the client wrote it (breakpoints, thinking config and earlier thinking blocks
with their signatures, ``top_k``, the ``anthropic-beta`` header), only the model named for the deployment; the answer
comes back with its thinking blocks and signatures intact, whole or streamed; the ledger prices it exactly."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from servers import run_aiohttp, run_gateway
from tokenomy.config.settings import CacheConfig, DeploymentConfig, ExactCacheConfig, LocalConfig, Settings

FIXTURES = Path(__file__).parent.parent / "providers" / "fixtures" / "anthropic"
RECORDED = json.loads((FIXTURES / "message_thinking.json").read_text())
SIGNED = RECORDED["content"][0]  # a thinking block with its signature, sent back in the next turn
EPHEMERAL = {"type": "ephemeral"}


@dataclass
class FakeAnthropic:
    seen: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(({k.lower(): v for k, v in request.headers.items()}, body))
        if not body.get("stream"):
            return web.Response(body=(FIXTURES / "message_thinking.json").read_bytes(),
                                content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write((FIXTURES / "stream_thinking.txt").read_bytes())
        await resp.write_eof()
        return resp


@dataclass
class World:
    client: anthropic.Anthropic
    upstream: FakeAnthropic
    home: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("messages")
    fake = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    with run_aiohttp(app) as base:
        settings = Settings(
            local=LocalConfig(enabled=False), env_providers=False, home=str(home),
            cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
            deployments=[DeploymentConfig(name="claude", provider="anthropic", model="claude-sonnet-4-5",
                                          upstream_model="claude-sonnet-4-5-20250929", base_url=base,
                                          api_key_env="ANTHROPIC_API_KEY", tier="frontier")])
        with run_gateway(settings, env={"ANTHROPIC_API_KEY": "sk-ant-upstream"}) as url:
            client = anthropic.Anthropic(base_url=url.removesuffix("/v1"), api_key="unused", max_retries=0)
            yield World(client, fake, home)


def _request(**extra: Any) -> dict[str, Any]:
    """A second turn of a tool-using conversation with thinking on, marked for prompt caching by the client."""
    return {
        "model": "claude-sonnet-4-5", "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "system": [{"type": "text", "text": "You are a weather assistant.", "cache_control": EPHEMERAL}],
        "tools": [{"name": "get_weather", "description": "Weather for a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                   "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [SIGNED, {"type": "tool_use", "id": "toolu_0", "name": "get_weather",
                                                       "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "18 C",
                                          "cache_control": EPHEMERAL}]},
        ], **extra}


def _ledger(home: Path, request_ids: list[str]) -> list[tuple[Any, ...]]:
    """The rows (with their calls) of these requests, once all are written."""
    marks = ", ".join("?" for _ in request_ids)
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(home / "ledger.db") as db:
            rows = db.execute("SELECT r.endpoint, r.status, c.input_tokens, c.cached_read_tokens, "
                              "c.cache_write_5m_tokens, c.cache_write_1h_tokens, c.output_tokens, r.cost_pusd "
                              f"FROM requests r JOIN calls c ON c.request_id = r.id WHERE r.id IN ({marks}) "
                              "ORDER BY r.started_us", request_ids).fetchall()
        if len(rows) >= len(request_ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# claude-sonnet-4-5: 13 × $3 + 20480 × $0.30 + 1024 × $3.75 + 496 × $6 + 96 × $15 per million tokens
#                  = 39 + 6144 + 3840 + 2976 + 1440 = 14439 µ$
COST = Decimal("0.014439")


def test_the_request_goes_upstream_untranslated(world: World) -> None:
    raw = world.client.messages.with_raw_response.create(  # top_k: what older clients still send
        **_request(), extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}, extra_body={"top_k": 20})
    headers, sent = world.upstream.seen[-1]
    assert sent == {**_request(), "top_k": 20, "model": "claude-sonnet-4-5-20250929"}  # nothing lost or added
    assert headers["x-api-key"] == "sk-ant-upstream" and headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    message = raw.parse()
    assert [block.to_dict() for block in message.content] == RECORDED["content"]  # signatures and all
    assert message.stop_reason == "tool_use" and message.id == "msg_" + raw.headers["x-request-id"][4:]
    assert message.usage.to_dict() == {k: v for k, v in RECORDED["usage"].items() if k != "service_tier"}
    assert Decimal(raw.headers["x-tokenomy-cost-usd"]) == COST


def test_the_stream_keeps_thinking_and_signatures(world: World) -> None:
    with world.client.messages.stream(**_request()) as stream:
        kinds = [event.type for event in stream if event.type not in ("text", "thinking", "signature",
                                                                      "input_json")]  # the SDK's own
        final = stream.get_final_message()
    assert world.upstream.seen[-1][1] == {**_request(), "model": "claude-sonnet-4-5-20250929", "stream": True}
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "content_block_start", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    content = [block.to_dict() for block in final.content]
    assert content[0] == SIGNED and content[1] == RECORDED["content"][1]
    assert content[2]["text"] == "Let me check the weather in Paris."
    assert {k: content[3][k] for k in ("id", "name", "input")} == {
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {"city": "Paris"}}
    usage = final.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
            usage.output_tokens) == (13, 20480, 1520, 96)


def test_one_ledger_row_per_request_priced_exactly(world: World) -> None:
    whole = world.client.messages.with_raw_response.create(**_request())
    with world.client.messages.stream(**_request()) as stream:
        stream.until_done()
        streamed = stream.response.headers["x-request-id"]
    rows = _ledger(world.home, [whole.headers["x-request-id"], streamed])
    assert [r[:7] for r in rows] == [("messages", 200, 13, 20480, 1024, 496, 96)] * 2
    assert [Decimal(r[7]) / 10**12 for r in rows] == [COST, COST]


def test_a_coding_agents_breakpoints_arrive_where_it_put_them(world: World) -> None:
    agent = coding_agent_request()
    world.client.messages.create(**agent)
    sent = world.upstream.seen[-1][1]
    assert sent == {**agent, "model": "claude-sonnet-4-5-20250929"}
    marked = [t["name"] for t in sent["tools"] if "cache_control" in t]
    assert marked == [agent["tools"][-1]["name"]] and "cache_control" in sent["system"][-1]
    assert sent["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL


def test_our_breakpoints_are_added_where_the_agent_set_none(world: World) -> None:
    agent = _unmarked(coding_agent_request())
    world.client.messages.create(**agent)
    sent = world.upstream.seen[-1][1]
    assert sent["tools"][-1]["cache_control"]["type"] == "ephemeral"  # the tools are past the minimum: marked
    assert sent["system"][-1]["cache_control"]["type"] == "ephemeral"
    assert sent["messages"][-2]["content"][-1]["cache_control"]["type"] == "ephemeral"  # the history before the turn
    assert _unmarked(sent) == {**agent, "model": "claude-sonnet-4-5-20250929"}  # nothing else changed


def _unmarked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def coding_agent_request() -> dict[str, Any]:
    """The shape a coding agent (Claude Code and the like) sends, assembled from its documented layout: a long system
    prompt in blocks, the last one marked; many tools, the last one marked; a history of tool calls and results;
    the newest user block marked."""
    rules = [f"Rule {i}: when you edit a file, read it first, keep its style, and run the tests that cover the "
             f"change; report what you ran and what it printed, in a short paragraph." for i in range(60)]
    tools = [{"name": name, "description": f"{name.replace('_', ' ').capitalize()} in the workspace. " * 4,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                                "pattern": {"type": "string"}},
                               "required": ["path"]}}
             for name in ("read_file", "write_file", "edit_file", "list_dir", "glob", "grep", "bash", "web_fetch",
                          "todo_write", "notebook_edit", "task", "exit_plan_mode", "multi_edit", "ls", "kill_shell")]
    tools[-1]["cache_control"] = EPHEMERAL
    return {
        "model": "claude-sonnet-4-5", "max_tokens": 8192,
        "system": [{"type": "text", "text": "You are a coding agent working in the user's repository."},
                   {"type": "text", "text": "\n".join(rules), "cache_control": EPHEMERAL}],
        "tools": tools,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Find where the ledger is migrated."}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_a", "name": "grep",
                                               "input": {"path": "src", "pattern": "def upgrade"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a",
                                          "content": "src/tokenomy/ledger/migrate.py:34:def upgrade("},
                                         {"type": "text", "text": "Now explain it.", "cache_control": EPHEMERAL}]},
        ]}
