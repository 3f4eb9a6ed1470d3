"""The Responses door's translations: typed input items (and an earlier turn's output) as chat messages, a chat
answer as a response object, and chat chunks as the documented semantic events."""

from __future__ import annotations

from typing import Any

import pytest

from tokenomy.errors import CapabilityError, InvalidRequestError, StreamBrokenError, UpstreamConnectionError
from tokenomy.wire.responses.answer import completed
from tokenomy.wire.responses.events import ResponseEvents
from tokenomy.wire.responses.request import input_items, to_chat, validate
from tokenomy.wire.validation import validate_chat

TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}


def test_typed_items_become_a_valid_chat_conversation() -> None:
    body = {"model": "m", "instructions": "Be brief.", "tools": [TOOL], "tool_choice": {"type": "function",
                                                                                        "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
            "max_output_tokens": 64, "temperature": 0, "stream": True, "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.",
                                                                      "annotations": []}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "18 C"},
                {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."},
                                                  {"type": "input_image", "image_url": "https://x/y.png",
                                                   "detail": "low"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []}]}
    validate(body)
    items = input_items(body, "abc")
    assert [i["id"] for i in items] == ["msg_abc_0", "msg_abc_1", "fc_abc_2", "fco_abc_3", "msg_abc_4", "rs_1"]
    assert items[0]["content"] == [{"type": "input_text", "text": "Weather in Paris?"}]
    chat = to_chat(body, items)
    validate_chat(chat)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [{
            "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "system", "content": [
            {"type": "text", "text": "Answer in French."},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
    ]  # the reasoning item is kept in the record, not in the prompt
    assert chat["tools"] == [{"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                              "strict": True}}
    assert (chat["max_tokens"], chat["temperature"], chat["stream_options"]) == (64, 0, {"include_usage": True})


@pytest.mark.parametrize(("change", "error", "param"), [
    ({"tools": [{"type": "web_search"}]}, CapabilityError, "tools[0].type"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, CapabilityError, "input[0].type"),
    ({"input": [{"role": "robot", "content": "x"}]}, InvalidRequestError, "input[0].role"),
    ({"background": True}, InvalidRequestError, "background"),
    ({"conversation": "conv_1"}, InvalidRequestError, None),
    ({"temperature": 3}, InvalidRequestError, "temperature"),
])
def test_what_the_door_cannot_honour_is_refused(change: dict[str, Any], error: type[Exception],
                                                 param: str | None) -> None:
    body = {"model": "m", "input": "hi", **change}
    with pytest.raises(error) as caught:
        validate(body)
        to_chat(body, input_items(body, "x"))
    assert getattr(caught.value, "param", None) == param


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, Any] | None = None,
           ) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m-2025", "choices": choices,
            **({"usage": usage} if usage else {})}


CHUNKS = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Let me "}), _chunk({"content": "check."}),
          _chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                  "function": {"name": "get_weather", "arguments": ""}}]}),
          _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
          _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
          _chunk({}, "tool_calls"), _chunk(usage={"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29})]


def test_a_stream_comes_back_as_the_documented_semantic_events() -> None:
    events = ResponseEvents({"model": "m", "input": "x"}, "req_1")
    out = events.start() + [e for chunk in CHUNKS for e in events.feed(chunk)] + events.finish()
    assert [e["type"] for e in out] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "m-2025"
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["total_tokens"] == 29
    message, call = final["output"]
    assert message["content"][0]["text"] == "Let me check." and message["id"] == out[2]["item"]["id"]
    assert (call["call_id"], call["name"], call["arguments"]) == ("call_9", "get_weather", '{"city":"Paris"}')
    # the same answer whole gives the same output
    whole = {"model": "m-2025", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"city":"Paris"}'}}]}}],
             "usage": {"prompt_tokens": 20, "completion_tokens": 9}}
    assert completed({"model": "m", "input": "x"}, "req_1", whole)["output"] == final["output"]


def test_a_cut_off_answer_is_incomplete_and_a_broken_one_failed() -> None:
    events = ResponseEvents({"model": "m", "input": "x"}, "req_2")
    out = events.start() + events.feed(_chunk({"content": "Once upon"}, "length")) + events.finish()
    assert out[-1]["type"] == "response.incomplete"
    assert out[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    broken = ResponseEvents({"model": "m", "input": "x"}, "req_3")
    failed = broken.failed(StreamBrokenError(UpstreamConnectionError("reset")))
    assert failed[0]["type"] == "response.failed"
    assert failed[0]["response"]["error"]["code"] == "upstream_connection_error"
