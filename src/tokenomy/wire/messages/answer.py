"""A chat completion as an Anthropic Messages answer: the ``message`` object, its ``usage`` and ``stop_reason``.
Pure, no I/O; the reverse of ``providers/anthropic_translate.from_messages_response``.

Content, in Anthropic's order: thinking blocks (``message.thinking_blocks``, signatures intact), the text, then one
``tool_use`` block per tool call (its arguments parsed: a model that wrote arguments that are not a JSON object
gets an UpstreamProtocolError, since the Messages API has no shape for them).

Usage: an Anthropic deployment's own figures when the completion carries them (``usage.anthropic``: input tokens
without the cached ones, cache reads, cache writes with their 5-minute / 1-hour split); otherwise the chat usage,
with ``prompt_tokens_details.cached_tokens`` as cache reads and the rest as input.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenomy.errors import UpstreamProtocolError

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def message_id(request_id: str) -> str:
    """The answer's id: the ledger request id's own part, so an answer names its ledger row."""
    return "msg_" + request_id.removeprefix("req_")


def to_message(completion: dict[str, Any], request_id: str) -> dict[str, Any]:
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = [_thinking(b) for b in message.get("thinking_blocks") or ()]
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    content.extend(tool_use(call) for call in message.get("tool_calls") or ())
    return {"id": message_id(request_id), "type": "message", "role": "assistant",
            "model": completion.get("model") or "", "content": content,
            "stop_reason": stop_reason(choice.get("finish_reason")), "stop_sequence": None,
            "usage": usage(completion.get("usage") or {})}


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "",
            "input": tool_input(function.get("arguments"))}


def tool_input(arguments: str | None) -> dict[str, Any]:
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"the model's tool call arguments are not JSON: {arguments[:80]!r}") from exc
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"the model's tool call arguments are not a JSON object: {arguments[:80]!r}")
    return value


def usage(chat_usage: dict[str, Any]) -> dict[str, Any]:
    raw = chat_usage.get("anthropic")
    output = int(chat_usage.get("completion_tokens") or 0)
    if isinstance(raw, dict):
        out: dict[str, Any] = {"input_tokens": int(raw.get("input_tokens") or 0),
                               "cache_creation_input_tokens": int(raw.get("cache_creation_input_tokens") or 0),
                               "cache_read_input_tokens": int(raw.get("cache_read_input_tokens") or 0),
                               "output_tokens": output}
        if isinstance(raw.get("cache_creation"), dict):
            out["cache_creation"] = dict(raw["cache_creation"])
        return out
    cached = int((chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": int(chat_usage.get("prompt_tokens") or 0) - cached, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": output}


def _thinking(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}
