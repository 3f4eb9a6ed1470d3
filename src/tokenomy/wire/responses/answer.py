"""A chat completion as an OpenAI Responses ``response`` object. Pure, no I/O.

The output is one ``message`` item with the text (an ``output_text`` part), then one ``function_call`` item per tool
call. A completion cut off by its token limit is ``incomplete`` (``max_output_tokens``), one a content filter stopped
``incomplete`` (``content_filter``). Usage: ``input_tokens`` (with ``cached_tokens``), ``output_tokens`` (with
``reasoning_tokens``), ``total_tokens``. The request's own settings are echoed as OpenAI's API echoes them.

Ids: the response's is ``resp_`` + its ledger request id's own part (an answer names its ledger row); an output
item's is made from that part and its place in the output, so a stream and its final response agree.
"""

from __future__ import annotations

import time
from typing import Any

Item = dict[str, Any]
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(request_id: str) -> str:
    return "resp_" + request_id.removeprefix("req_")


def item_hex(request_id: str) -> str:
    """What the ids of a response's items are made from."""
    return request_id.removeprefix("req_")


def message_item(request_id: str, index: int, text: str, status: str = "completed") -> Item:
    return {"id": f"msg_{item_hex(request_id)}_o{index}", "type": "message", "status": status, "role": "assistant",
            "content": [output_text(text)] if status == "completed" else []}


def output_text(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(request_id: str, index: int, call: dict[str, Any], status: str = "completed") -> Item:
    function = call.get("function") or {}
    return {"id": f"fc_{item_hex(request_id)}_o{index}", "type": "function_call", "status": status,
            "call_id": call.get("id") or "", "name": function.get("name") or "",
            "arguments": (function.get("arguments") or "") if status == "completed" else ""}


def output_items(completion: dict[str, Any], request_id: str) -> list[Item]:
    message = ((completion.get("choices") or [{}])[0]).get("message") or {}
    items: list[Item] = []
    if message.get("content") or not message.get("tool_calls"):
        items.append(message_item(request_id, 0, str(message.get("content") or "")))
    for call in message.get("tool_calls") or ():
        items.append(call_item(request_id, len(items), call))
    return items


def usage(chat_usage: dict[str, Any] | None) -> Item | None:
    if not chat_usage:
        return None
    prompt, output = int(chat_usage.get("prompt_tokens") or 0), int(chat_usage.get("completion_tokens") or 0)
    cached = int((chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    written = int((chat_usage.get("anthropic") or {}).get("cache_creation_input_tokens") or 0)
    reasoning = int((chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": prompt + output}


def response_object(request: dict[str, Any], request_id: str, *, model: str, status: str,
                    output: list[Item], chat_usage: dict[str, Any] | None = None, finish_reason: str | None = None,
                    error: Item | None = None, created_at: int | None = None) -> Item:
    """The response object for ``request`` (the client's body): ``in_progress`` (a stream's first events),
    ``completed``/``incomplete`` (by ``finish_reason``), or ``failed`` with ``error``."""
    incomplete = _INCOMPLETE.get(finish_reason or "")
    if status == "completed" and incomplete is not None:
        status = "incomplete"
    text = request.get("text") or {"format": {"type": "text"}}
    return {
        "id": response_id(request_id), "object": "response", "created_at": created_at or int(time.time()),
        "status": status, "error": error, "background": False,
        "incomplete_details": {"reason": incomplete} if status == "incomplete" else None,
        "instructions": request.get("instructions"), "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {}, "model": model, "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None}, "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0), "text": text,
        "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0), "truncation": request.get("truncation", "disabled"),
        "usage": usage(chat_usage), "user": request.get("user"),
    }


def completed(request: dict[str, Any], request_id: str, completion: dict[str, Any]) -> Item:
    """The finished response for a whole chat completion."""
    choice = (completion.get("choices") or [{}])[0]
    return response_object(request, request_id, model=str(completion.get("model") or request["model"]),
                           status="completed", output=output_items(completion, request_id),
                           chat_usage=completion.get("usage"), finish_reason=choice.get("finish_reason"))
