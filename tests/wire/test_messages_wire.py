"""The Messages door's translations, both ways: an Anthropic request as a chat body, a chat answer (whole or
streamed) as Anthropic's message and events, and the thinking blocks that cross the chat shapes intact."""

from __future__ import annotations

from typing import Any

import pytest

from tokenomy.errors import CapabilityError, InvalidRequestError, StreamBrokenError, UpstreamProtocolError
from tokenomy.providers.anthropic_translate import StreamTranslator, from_messages_response, to_messages_request
from tokenomy.wire.messages.answer import to_message
from tokenomy.wire.messages.events import MessageEvents
from tokenomy.wire.messages.request import count_tokens_chat, to_chat
from tokenomy.wire.stream import StreamAssembler, replay_chunks
from tokenomy.wire.validation import validate_chat

EPHEMERAL = {"type": "ephemeral"}
THINKING = {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1gbcDa9G"}


def _agent_turns() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True, "temperature": 0.2, "top_k": 5,
        "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "system": [{"type": "text", "text": "You are a coding agent."},
                   {"type": "text", "text": "Repository rules.", "cache_control": EPHEMERAL}],
        "tools": [{"name": "read_file", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
                   "cache_control": EPHEMERAL}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Open README.md"},
            {"role": "assistant", "content": [THINKING, {"type": "text", "text": "Reading it."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                               "input": {"path": "README.md"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "# tokenomy"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                          "data": "iVBORw0KGgo="}}]},
                {"type": "text", "text": "Summarise it.", "cache_control": EPHEMERAL}]},
        ],
    }


def test_a_coding_agent_turn_becomes_a_valid_chat_body() -> None:
    chat = to_chat(_agent_turns())
    validate_chat(chat)  # the core accepts it as any chat request
    assert chat["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Repository rules.", "cache_control": EPHEMERAL}]}
    assert chat["messages"][2] == {
        "role": "assistant", "content": "Reading it.",
        "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "read_file", "arguments": '{"path":"README.md"}'}}],
        "thinking_blocks": [THINKING], "reasoning_content": THINKING["thinking"]}
    # the tool result first, as a tool message; its image and the turn's own text follow in a user message
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1",
                                   "content": [{"type": "text", "text": "# tokenomy"}]}
    assert chat["messages"][4] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "Summarise it.", "cache_control": EPHEMERAL}]}
    assert chat["tools"] == [{"type": "function", "cache_control": EPHEMERAL, "function": {
        "name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert (chat["stop"], chat["user"], chat["max_tokens"], chat["temperature"]) == (["END"], "u-1", 1024, 0.2)
    assert chat["stream_options"] == {"include_usage": True}
    assert "top_k" not in chat and "thinking" not in chat  # an Anthropic deployment gets them from the original


def test_the_chat_body_goes_back_to_anthropic_with_thinking_and_marks_intact() -> None:
    again = to_messages_request(to_chat(_agent_turns()))
    assert again["messages"][1]["content"][0] == THINKING  # first in its turn, signature intact
    assert again["system"][-1]["cache_control"] == EPHEMERAL and again["tools"][0]["cache_control"] == EPHEMERAL


@pytest.mark.parametrize(("change", "param"), [
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": 1.5}, "temperature"),
    ({"container": "c-1"}, None),  # a top-level field this door does not know is refused, not dropped
    # a server tool runs at Anthropic: no chat shape holds it
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"messages": []}, "messages"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}]},
     "messages[0].content[0]"),
])
def test_invalid_requests_name_the_field(change: dict[str, Any], param: str | None) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **change}
    with pytest.raises(InvalidRequestError) as caught:
        to_chat(body)
    if param is not None:
        assert caught.value.param == param
    else:
        assert "container" in caught.value.message


def test_documents_chat_cannot_hold_are_refused() -> None:
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    with pytest.raises(CapabilityError) as caught:
        to_chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [doc]}]})
    assert caught.value.param == "messages[0].content[0]"
    pdf = {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf",
                                                            "data": "JVBERi0x"}}
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}
    chat = count_tokens_chat({"model": "m", "messages": [{"role": "user", "content": [pdf, text]}]})
    assert chat["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}},
        {"type": "text", "text": "plain words"}]


def _completion(message: dict[str, Any], usage: dict[str, Any], finish: str = "tool_calls") -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "claude-sonnet-4-5",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


def test_an_anthropic_answer_comes_back_whole_with_its_own_usage() -> None:
    raw = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [THINKING, {"type": "redacted_thinking", "data": "EmwKAhgB"}, {"type": "text", "text": "On it."},
                       {"type": "tool_use", "id": "toolu_9", "name": "read_file", "input": {"path": "a"}}],
           "stop_reason": "tool_use", "stop_sequence": None,
           "usage": {"input_tokens": 13, "cache_read_input_tokens": 20480, "cache_creation_input_tokens": 1520,
                     "cache_creation": {"ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 496},
                     "output_tokens": 16}}
    message = to_message(from_messages_response(raw, "claude-sonnet-4-5"), "req_abc")
    assert message["id"] == "msg_abc" and message["content"] == raw["content"]
    assert message["stop_reason"] == "tool_use" and message["usage"] == raw["usage"]


def test_a_chat_answer_becomes_a_message_with_cached_tokens_as_cache_reads() -> None:
    usage = {"prompt_tokens": 30, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 8}}
    completion = _completion({"role": "assistant", "content": "Paris"}, usage, "length")
    message = to_message(completion, "req_1")
    assert message["content"] == [{"type": "text", "text": "Paris"}] and message["stop_reason"] == "max_tokens"
    assert message["usage"] == {"input_tokens": 22, "cache_read_input_tokens": 8, "cache_creation_input_tokens": 0,
                                "output_tokens": 2}
    broken = _completion({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}, {})
    with pytest.raises(UpstreamProtocolError):
        to_message(broken, "req_2")


STREAM = [  # an Anthropic stream with thinking, text and a tool call, as its events
    ("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 40, "output_tokens": 1}}}),
    ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Need the "}}),
    ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "weather."}}),
    ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "EqQBsig"}}),
    ("content_block_stop", {"index": 0}),
    ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Checking."}}),
    ("content_block_stop", {"index": 1}),
    ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather",
                                                           "input": {}}}),
    ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}}),
    ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}}),
    ("content_block_stop", {"index": 2}),
    ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
    ("message_stop", {}),
]


def _chunks() -> list[dict[str, Any]]:
    translator = StreamTranslator("claude-sonnet-4-5")
    return [chunk for name, data in STREAM for chunk in translator.feed(name, {"type": name, **data})]


def test_a_stream_comes_back_as_the_documented_event_sequence() -> None:
    events = MessageEvents("req_7", "claude-sonnet-4-5")
    out = [e for chunk in _chunks() for e in events.feed(chunk)] + events.finish()
    assert [name for name, _ in out] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    deltas = [data["delta"] for name, data in out if name == "content_block_delta"]
    assert deltas[2] == {"type": "signature_delta", "signature": "EqQBsig"}
    assert [d["type"] for d in deltas] == ["thinking_delta", "thinking_delta", "signature_delta", "text_delta",
                                          "input_json_delta", "input_json_delta"]
    starts = [data["content_block"] for name, data in out if name == "content_block_start"]
    assert starts[2] == {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}
    final = out[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["output_tokens"] == 30 and final["usage"]["input_tokens"] == 40
    assert MessageEvents.error(StreamBrokenError(UpstreamProtocolError("cut")))[1]["error"]["type"] == "api_error"


def test_a_streamed_answer_cached_and_replayed_keeps_its_thinking() -> None:
    assembler = StreamAssembler()
    for chunk in _chunks():
        assembler.feed(chunk)
    whole = assembler.completion()
    message = whole["choices"][0]["message"]
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "Need the weather.",
                                           "signature": "EqQBsig"}]
    events = MessageEvents("req_8", "m")
    out = [e for chunk in replay_chunks(whole, include_usage=True) for e in events.feed(chunk)] + events.finish()
    replayed = [data["delta"] for name, data in out if name == "content_block_delta"]
    assert replayed[:2] == [{"type": "thinking_delta", "thinking": "Need the weather."},
                            {"type": "signature_delta", "signature": "EqQBsig"}]
