"""An OpenAI Responses request as a chat-completions body, for every deployment. Pure, no I/O.

- ``input`` (a string, or typed items) is normalised into items with ids (``input_items``: what
  ``GET /v1/responses/{id}/input_items`` lists): a string becomes one user message; a message item's string content
  becomes one ``input_text`` (or, for the assistant, ``output_text``) part.
- The conversation is: ``instructions`` as a system message, then the items of the earlier responses the request
  continues (``previous_response_id``: each one's input items, then its output), then this request's items. As in
  OpenAI's API, an earlier response's ``instructions`` are not carried over.
- Items as chat messages: a message item keeps its role (``input_text`` → text part, ``input_image`` → ``image_url``,
  ``input_file`` with ``file_data`` → ``file``); ``function_call`` items join the assistant message before them as
  ``tool_calls``; a ``function_call_output`` is a ``tool`` message. ``reasoning`` items are kept in the record and
  left out of the prompt (no chat shape carries them).
- ``tools`` (function tools) → chat tools; ``tool_choice``; ``text.format`` → ``response_format``;
  ``max_output_tokens`` → ``max_tokens``; ``temperature``, ``top_p``, ``parallel_tool_calls``, ``user``.
- Refused with CapabilityError: hosted tools (web and file search, computer use, code interpreter, MCP, image
  generation, custom tools), ``item_reference`` items, images and files by ``file_id`` (no Files API for them here).
"""

from __future__ import annotations

from typing import Any

from tokenomy.errors import CapabilityError, InvalidRequestError
from tokenomy.wire.responses.shapes import ResponsesRequest
from tokenomy.wire.validation import integral, typed_view

Item = dict[str, Any]
_ROLES = ("user", "system", "developer", "assistant")
_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def validate(body: dict[str, Any]) -> ResponsesRequest:
    integral(body, ("max_output_tokens",))
    typed = typed_view(body, ResponsesRequest)
    _require(bool(typed.model.strip()), "'model' must be a non-empty string", "model")
    _require(bool(typed.input), "'input' must not be empty", "input")
    if typed.max_output_tokens is not None:
        _require(typed.max_output_tokens >= 1, "'max_output_tokens' must be at least 1", "max_output_tokens")
    if typed.temperature is not None:
        _require(0 <= typed.temperature <= 2, f"'temperature' must be in [0, 2], got {typed.temperature}",
                 "temperature")
    if typed.top_p is not None:
        _require(0 <= typed.top_p <= 1, f"'top_p' must be in [0, 1], got {typed.top_p}", "top_p")
    return typed


def input_items(body: dict[str, Any], item_hex: str) -> list[Item]:
    """This request's input as items, each with an id (the client's, or one made from ``item_hex``)."""
    raw = body["input"]
    given = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    return [_item(item, f"input[{i}]", item_hex, i) for i, item in enumerate(given)]


def to_chat(body: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    """The chat body for a (validated) Responses request whose conversation is ``items`` (history, then input)."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    for item in items:
        _append(messages, item)
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("tools"):
        chat["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("schema", "strict", "description") if fmt.get(k) is not None}
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": fmt.get("name") or "output",
                                                                          **schema}}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _require(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)


def _item(item: Any, where: str, item_hex: str, index: int) -> Item:
    _require(isinstance(item, dict), f"{where} must be an object", where)
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind not in _PREFIX:
        raise CapabilityError(f"input item type {kind!r} is not supported here", param=f"{where}.type")
    out: Item = {"id": item.get("id") or f"{_PREFIX[kind]}_{item_hex}_{index}", "type": kind}
    if kind == "message":
        role = item.get("role")
        _require(role in _ROLES, f"{where}.role must be one of {', '.join(_ROLES)}", f"{where}.role")
        out.update(role=role, content=_parts(item.get("content"), role, f"{where}.content"), status="completed")
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            _require(isinstance(item.get(name), str), f"{where}.{name} must be a string", f"{where}.{name}")
        out.update(call_id=item["call_id"], name=item["name"], arguments=item["arguments"], status="completed")
    elif kind == "function_call_output":
        _require(isinstance(item.get("call_id"), str), f"{where}.call_id must be a string", f"{where}.call_id")
        _require(isinstance(item.get("output"), (str, list)), f"{where}.output must be a string or a list",
                 f"{where}.output")
        out.update(call_id=item["call_id"], output=item["output"], status="completed")
    else:
        out.update({k: v for k, v in item.items() if k not in ("id", "type")})
    return out


def _parts(content: Any, role: str, where: str) -> list[Item]:
    if isinstance(content, str):
        return [{"type": "output_text", "text": content, "annotations": []} if role == "assistant"
                else {"type": "input_text", "text": content}]
    _require(isinstance(content, list) and all(isinstance(p, dict) for p in content),
             f"{where} must be a string or a list of content parts", where)
    return list(content)


def _append(messages: list[dict[str, Any]], item: Item) -> None:
    kind = item["type"]
    if kind == "message":
        role, parts = item["role"], item["content"]
        if role == "assistant":
            text = "".join(str(p.get("text") or p.get("refusal") or "") for p in parts)
            messages.append({"role": "assistant", "content": text})
        else:
            chat_parts = [_chat_part(p, item["id"]) for p in parts]
            plain = len(chat_parts) == 1 and chat_parts[0]["type"] == "text"
            messages.append({"role": "system" if role == "developer" else role,
                             "content": chat_parts[0]["text"] if plain else chat_parts})
    elif kind == "function_call":
        call = {"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        text = output if isinstance(output, str) else "".join(str(p.get("text") or "") for p in output)
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})


def _chat_part(part: Item, item_id: str) -> Item:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "input_image" and part.get("image_url"):
        image: Item = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and part.get("file_data"):
        data = str(part["file_data"])
        url = data if data.startswith("data:") else f"data:application/pdf;base64,{data}"
        return {"type": "file", "file": {"file_data": url, "filename": part.get("filename") or "file.pdf"}}
    raise CapabilityError(f"content part {kind!r} of item {item_id} is not supported here (images by URL or data "
                          "URL, files as file_data only)", param="input")


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise CapabilityError(f"tool type {tool.get('type')!r} is not supported here: only function tools",
                              param=f"tools[{i}].type")
    _require(isinstance(tool.get("name"), str), f"tools[{i}].name must be a string", f"tools[{i}].name")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str) and choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise CapabilityError(f"tool_choice {choice!r} is not supported here (none, auto, required, or a function)",
                          param="tool_choice")
