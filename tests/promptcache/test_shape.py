"""Prompt-cache shaping: canonical tool schemas, marked stable context first, nothing else moved."""

from __future__ import annotations

import copy

import orjson

from tokenomy.cache.key import request_key
from tokenomy.promptcache.shape import shape_body


def _tool(properties: dict[str, object]) -> dict[str, object]:
    return {"type": "function", "function": {"name": "search", "parameters": {
        "type": "object", "properties": properties, "required": ["q"]}}}


def test_tool_schemas_become_canonical_and_keep_their_order() -> None:
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
         "tools": [_tool({"q": {"type": "string", "description": "d"}, "k": {"type": "integer"}}),
                   {"type": "function", "function": {"name": "noop"}}]}
    b = copy.deepcopy(a)
    b["tools"][0] = _tool({"k": {"type": "integer"}, "q": {"description": "d", "type": "string"}})
    assert orjson.dumps(a) != orjson.dumps(b)
    assert orjson.dumps(shape_body(a)) == orjson.dumps(shape_body(b))  # the same bytes upstream
    assert [t["function"]["name"] for t in shape_body(a)["tools"]] == ["search", "noop"]
    assert request_key(shape_body(a), "ns") == request_key(shape_body(b), "ns")


def test_marked_stable_context_moves_before_variable_parts_only_when_marked() -> None:
    document = {"type": "text", "text": "LONG DOCUMENT", "cache_control": {"type": "ephemeral"}}
    question = {"type": "text", "text": "What does it say about X?"}
    body = {"model": "m", "messages": [{"role": "system", "content": "sys"},
                                       {"role": "user", "content": [question, document]}]}
    original = copy.deepcopy(body)
    shaped = shape_body(body)
    assert shaped["messages"][1]["content"] == [document, question]
    assert shaped["messages"][0] == {"role": "system", "content": "sys"}
    assert body == original  # the client's object is untouched
    unmarked = {"model": "m", "messages": [{"role": "user", "content": [question, {"type": "text", "text": "doc"}]}]}
    assert shape_body(unmarked) == unmarked
    assistant = {"model": "m", "messages": [{"role": "assistant", "content": [question, document]}]}
    assert shape_body(assistant) == assistant  # only user turns are reordered
