"""OpenAI <-> Anthropic translation, checked against recorded Messages API payloads in fixtures/anthropic/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tokenomy.errors import (
    CapabilityError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamUnavailableError,
)
from tokenomy.providers.anthropic_translate import (
    DEFAULT_MAX_TOKENS,
    StreamTranslator,
    from_messages_response,
    to_messages_request,
)
from tokenomy.providers.sse import read_events

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-5"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a place.",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return data


async def replay(name: str, translator: StreamTranslator) -> list[dict[str, Any]]:
    """Feed a recorded SSE stream through the same parser the provider uses."""
    async def lines() -> AsyncIterator[bytes]:
        for line in (FIXTURES / name).read_bytes().splitlines(keepends=True):
            yield line

    chunks: list[dict[str, Any]] = []
    async for event in read_events(lines()):
        chunks.extend(translator.feed(event.event or "", orjson.loads(event.data)))
    return chunks


def reassemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What an OpenAI client rebuilds from the chunks: content, tool calls, finish reason, usage."""
    content, finish = "", None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        delta = choice["delta"]
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            slot = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] += call.get("function", {}).get("name", "")
            slot["arguments"] += call.get("function", {}).get("arguments", "")
        finish = choice["finish_reason"] or finish
    assert chunks[-1]["choices"] == []
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish,
            "usage": chunks[-1]["usage"]}


# --- request ----------------------------------------------------------------------------------------------------


def test_system_and_developer_messages_join_the_top_level_system() -> None:
    out = to_messages_request({"model": MODEL, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Capital of Italy?"}]})
    assert out == {"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS, "system": "You are terse.\n\nAnswer in French.",
                   "messages": [{"role": "user", "content": "Capital of Italy?"}]}


def test_system_parts_with_cache_control_stay_blocks() -> None:
    cached = {"type": "text", "text": "<long policy>", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    out = to_messages_request({"model": MODEL, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}, cached]},
        {"role": "user", "content": "Hi"}]})
    assert out["system"] == [{"type": "text", "text": "You are terse."}, cached]


def test_tool_turns_become_tool_use_and_merged_tool_result_turns() -> None:
    def weather(call_id: str, city: str) -> dict[str, Any]:
        arguments = orjson.dumps({"location": city}).decode()
        return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}

    out = to_messages_request({"model": MODEL, "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Paris"},
        {"role": "user", "content": [{"type": "text", "text": "and Rome?"}]},
        {"role": "assistant", "content": None, "tool_calls": [weather("call_1", "Paris"), weather("call_2", "Rome")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, clear"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C, sunny"}]},
        {"role": "user", "content": "Which is warmer?"}]})
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris"},
                                     {"type": "text", "text": "and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, clear"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "24C, sunny"}]},
            {"type": "text", "text": "Which is warmer?"}]},
    ]
    assert out["tools"] == [{"name": "get_weather", "description": "Current weather for a place.",
                             "input_schema": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]


def test_image_parts_become_base64_and_url_sources() -> None:
    out = to_messages_request({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]}]})
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("none", None, {"type": "none"}),
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
])
def test_tool_choice_maps_to_anthropic(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": MODEL, "tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "x"}]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_messages_request(body)["tool_choice"] == expected


def test_sampling_limits_and_passthrough_fields() -> None:
    out = to_messages_request({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 50,
                               "max_completion_tokens": 300, "temperature": 1.6, "top_p": 0.9, "stop": "END",
                               "user": "user-42", "stream": True, "seed": 7, "metadata": {"team": "a"}})
    assert out == {"model": MODEL, "max_tokens": 300, "temperature": 1.0, "stop_sequences": ["END"],
                   "metadata": {"user_id": "user-42"}, "stream": True,
                   "messages": [{"role": "user", "content": "x"}]}
    alone = to_messages_request({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "top_p": 0.5,
                                 "max_tokens": 64, "stop": ["a", "b"]})
    assert (alone["top_p"], alone["max_tokens"], alone["stop_sequences"]) == (0.5, 64, ["a", "b"])


def test_json_schema_response_format_becomes_a_system_instruction() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = to_messages_request({"model": MODEL, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Spain?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}})
    first, instruction = out["system"].split("\n\n")
    assert first == "Be brief."
    assert instruction.startswith("Respond with one JSON object only")
    assert orjson.loads(instruction.split("JSON Schema:\n", 1)[1]) == schema


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "function", "name": "f", "content": "1"}]}, "messages[0].role"),
    ({"messages": [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]}]}, "messages[0].content[0]"),
])
def test_unsupported_requests_raise_capability_error(extra: dict[str, Any], param: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(CapabilityError) as caught:
        to_messages_request(body)
    assert caught.value.param == param
    assert caught.value.status == 400


# --- response ---------------------------------------------------------------------------------------------------


def test_text_message_becomes_a_chat_completion() -> None:
    out = from_messages_response(fixture("message_text.json"), MODEL, created=1_700_000_000)
    assert out == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
        "system_fingerprint": None,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "The capital of France is Paris.", "refusal": None}}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 10, "total_tokens": 31,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "anthropic": {"input_tokens": 21, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}}},
    }


def test_tool_use_message_becomes_tool_calls() -> None:
    out = from_messages_response(fixture("message_tool_use.json"), MODEL)
    (choice,) = out["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the current weather in Paris for you."
    assert choice["message"]["tool_calls"] == [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"location":"Paris, France","unit":"celsius"}'}}]
    assert (out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]) == (412, 78)


def test_cached_tokens_count_in_prompt_tokens_and_keep_the_anthropic_split() -> None:
    out = from_messages_response(fixture("message_cached.json"), "claude-haiku-4-5")
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"] == {
        "prompt_tokens": 13 + 20480 + 1520, "completion_tokens": 16, "total_tokens": 13 + 20480 + 1520 + 16,
        "prompt_tokens_details": {"cached_tokens": 20480},
        "anthropic": {"input_tokens": 13, "cache_read_input_tokens": 20480, "cache_creation_input_tokens": 1520,
                      "cache_creation": {"ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 496}}}


def test_refusal_and_tool_only_answers() -> None:
    refused = {**fixture("message_text.json"), "stop_reason": "refusal", "content": []}
    assert from_messages_response(refused, MODEL)["choices"][0]["finish_reason"] == "content_filter"
    tool_only = fixture("message_tool_use.json")
    tool_only["content"] = tool_only["content"][1:]
    assert from_messages_response(tool_only, MODEL)["choices"][0]["message"]["content"] is None


# --- stream -----------------------------------------------------------------------------------------------------


async def test_streamed_text_reassembles_to_the_non_stream_answer() -> None:
    chunks = await replay("stream_text.txt", StreamTranslator(MODEL, created=1))
    whole = from_messages_response(fixture("message_text.json"), MODEL)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}
    assert {(c["object"], c["model"], c["created"]) for c in chunks} == {("chat.completion.chunk", MODEL, 1)}
    assert reassemble(chunks) == {"content": whole["choices"][0]["message"]["content"], "tool_calls": [],
                                  "finish_reason": "stop", "usage": whole["usage"]}


async def test_streamed_tool_use_reassembles_to_the_non_stream_answer() -> None:
    translator = StreamTranslator(MODEL)
    chunks = await replay("stream_tool_use.txt", translator)
    whole = from_messages_response(fixture("message_tool_use.json"), MODEL)["choices"][0]["message"]
    got = reassemble(chunks)
    assert got["content"] == whole["content"]
    assert got["finish_reason"] == "tool_calls"
    (call,) = got["tool_calls"]
    assert (call["id"], call["name"]) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert orjson.loads(call["arguments"]) == orjson.loads(whole["tool_calls"][0]["function"]["arguments"])
    # the tool call's index counts tool calls only, though it is the message's second content block
    starts = [c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert {c["choices"][0]["delta"]["tool_calls"][0]["index"] for c in starts} == {0}
    assert got["usage"]["prompt_tokens"] == 412 and got["usage"]["completion_tokens"] == 78
    assert translator.finished


async def test_stream_usage_counts_cached_tokens_from_message_start() -> None:
    translator = StreamTranslator(MODEL)
    cached = fixture("message_cached.json")["usage"]
    translator.feed("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": cached}})
    translator.feed("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                      "usage": {"output_tokens": 40}})
    (last,) = translator.feed("message_stop", {"type": "message_stop"})
    assert last["usage"]["prompt_tokens"] == 22013
    assert last["usage"]["completion_tokens"] == 40
    assert last["usage"]["anthropic"]["cache_creation"] == {"ephemeral_5m_input_tokens": 1024,
                                                           "ephemeral_1h_input_tokens": 496}


@pytest.mark.parametrize(("kind", "error_class"), [
    ("overloaded_error", UpstreamUnavailableError),
    ("rate_limit_error", UpstreamRateLimitError),
    ("api_error", UpstreamError),
])
def test_stream_error_events_raise_upstream_errors(kind: str, error_class: type[UpstreamError]) -> None:
    translator = StreamTranslator(MODEL, deployment="anthropic/claude")
    with pytest.raises(UpstreamError) as caught:
        translator.feed("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    assert type(caught.value) is error_class
    assert caught.value.deployment == "anthropic/claude"
    assert kind in caught.value.message


def test_ping_and_unknown_events_yield_nothing() -> None:
    translator = StreamTranslator(MODEL)
    assert translator.feed("ping", {"type": "ping"}) == []
    assert translator.feed("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta"}}) == []
    assert translator.feed("some_future_event", {"type": "some_future_event"}) == []
