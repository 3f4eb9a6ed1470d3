"""The Responses door with the official ``openai`` SDK (``responses.create`` / ``responses.stream``, ``retrieve``,
``delete``, ``input_items.list``) against a running gateway over the fault upstream, which echoes the last user turn
and records the chat body it was sent: conversation state, scoping per key, tools, formats, streams. The gateway
stores responses in its ledger database: SQLite here, PostgreSQL in the last test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.control.parts import MASTER, admin, priced
from tests.scale.parts import fresh_database

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LedgerConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream

TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@dataclass
class World:
    fault: FaultUpstream
    a: openai.OpenAI  # two keys of one gateway
    b: openai.OpenAI


@contextlib.contextmanager
def _world(home: Path, database_url: str | None = None) -> Iterator[World]:
    with run_fault_upstream() as (base, fault):
        settings = Settings(deployments=[priced("echo", base, "echo"), priced("tools", base, "tools")],
                            local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            control=ControlConfig(master_key=MASTER),
                            cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
                            ledger=LedgerConfig(database_url=database_url))
        with run_gateway(settings) as url:
            clients = []
            for name in ("alice", "bob"):
                status, key = admin(url, "POST", "/admin/keys", {"name": name})
                assert status == 201, key
                clients.append(openai.OpenAI(base_url=url, api_key=key["key"], max_retries=0))
            yield World(fault, clients[0], clients[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with _world(tmp_path_factory.mktemp("responses")) as found:
        yield found


def _sent(world: World) -> list[dict[str, Any]]:
    assert world.fault.last_body is not None
    messages: list[dict[str, Any]] = world.fault.last_body["messages"]
    return messages


def test_create_then_continue_the_conversation(world: World) -> None:
    first = world.a.responses.create(model="echo", input="My name is Ada.", instructions="Be brief.")
    assert first.output_text == "echo: My name is Ada." and first.status == "completed"
    assert first.id.startswith("resp_") and first.usage is not None and first.usage.input_tokens > 0
    second = world.a.responses.create(model="echo", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # the earlier turn's input and output come first; its instructions are not carried over (as in OpenAI's API)
    assert _sent(world) == [{"role": "user", "content": "My name is Ada."},
                            {"role": "assistant", "content": "echo: My name is Ada."},
                            {"role": "user", "content": "What is my name?"}]
    world.a.responses.create(model="echo", input="And again?", previous_response_id=second.id,
                             instructions="Answer in French.")
    assert _sent(world)[0] == {"role": "system", "content": "Answer in French."} and len(_sent(world)) == 6


def test_retrieve_delete_and_input_items(world: World) -> None:
    made = world.a.responses.create(model="echo", input=[
        {"role": "user", "content": "one"}, {"role": "user", "content": [{"type": "input_text", "text": "two"}]},
        {"role": "user", "content": "three"}], metadata={"ticket": "T-1"})
    found = world.a.responses.retrieve(made.id)
    assert found.model_dump() == made.model_dump() and found.metadata == {"ticket": "T-1"}
    items = world.a.responses.input_items.list(made.id)
    texts = [item.content[0].text for item in items.data]  # type: ignore[union-attr]
    assert texts == ["three", "two", "one"]  # newest first, as OpenAI lists them
    page = world.a.responses.input_items.list(made.id, order="asc", limit=2)
    assert [i.content[0].text for i in page.data] == ["one", "two"] and page.has_more  # type: ignore[union-attr]
    rest = world.a.responses.input_items.list(made.id, order="asc", after=page.data[-1].id)
    assert [i.content[0].text for i in rest.data] == ["three"] and not rest.has_more  # type: ignore[union-attr]
    world.a.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        world.a.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        world.a.responses.create(model="echo", input="more", previous_response_id=made.id)


def test_another_key_gets_404_for_everything(world: World) -> None:
    mine = world.a.responses.create(model="echo", input="secret plans")
    for attempt in (lambda: world.b.responses.retrieve(mine.id),
                    lambda: world.b.responses.input_items.list(mine.id),
                    lambda: world.b.responses.delete(mine.id),
                    lambda: world.b.responses.create(model="echo", input="x", previous_response_id=mine.id)):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert world.a.responses.retrieve(mine.id).output_text == "echo: secret plans"  # untouched


def test_store_false_keeps_nothing(world: World) -> None:
    fleeting = world.a.responses.create(model="echo", input="forget me", store=False)
    assert fleeting.output_text == "echo: forget me" and fleeting.store is False
    with pytest.raises(openai.NotFoundError):
        world.a.responses.retrieve(fleeting.id)


def test_a_function_tool_round_trip(world: World) -> None:
    asked = world.a.responses.create(model="tools", input="Weather in Paris?", tools=[TOOL])  # type: ignore[list-item]
    call = asked.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    world.a.responses.create(model="echo", previous_response_id=asked.id, tools=[TOOL],  # type: ignore[list-item]
                             input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18 C"}])
    sent = _sent(world)
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "18 C"}
    assert world.fault.last_body is not None and world.fault.last_body["tools"][0]["function"]["name"] == "get_weather"


def test_a_json_schema_format_reaches_the_upstream(world: World) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    world.a.responses.create(model="echo", input="Capital of France?", max_output_tokens=30,
                             text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}})
    body = world.fault.last_body
    assert body is not None and body["max_tokens"] == 30
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "city", "schema": schema, "strict": True}}


def test_a_hosted_tool_is_refused_by_name(world: World) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        world.a.responses.create(model="echo", input="x", tools=[{"type": "web_search"}])
    assert caught.value.param == "tools[0].type"


def test_the_stream_events_and_the_stored_final_response(world: World) -> None:
    with world.a.responses.stream(model="echo", input="stream this") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                     "response.output_text.delta", "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    assert final.output_text == "echo: stream this" and final.usage is not None
    stored = world.a.responses.retrieve(final.id)
    assert stored.model_dump() == _unparsed(final.model_dump())  # what the stream ended with, stored
    continued = world.a.responses.create(model="echo", input="next", previous_response_id=final.id)
    assert continued.output_text == "echo: next" and _sent(world)[1]["content"] == "echo: stream this"


def _unparsed(value: Any) -> Any:
    """A streamed response as the SDK hands it back, without the ``parsed`` fields the SDK adds itself."""
    if isinstance(value, dict):
        return {k: _unparsed(v) for k, v in value.items() if k != "parsed"}
    if isinstance(value, list):
        return [_unparsed(v) for v in value]
    return value


def test_conversation_state_on_postgresql(tmp_path: Path) -> None:
    with fresh_database() as url, _world(tmp_path, database_url=url) as world:
        first = world.a.responses.create(model="echo", input="on postgres")
        with world.a.responses.stream(model="echo", input="streamed", previous_response_id=first.id) as stream:
            stream.until_done()
            second = stream.get_final_response()
        assert [m["content"] for m in _sent(world)] == ["on postgres", "echo: on postgres", "streamed"]
        assert world.a.responses.retrieve(second.id).previous_response_id == first.id
        with pytest.raises(openai.NotFoundError):
            world.b.responses.retrieve(first.id)
