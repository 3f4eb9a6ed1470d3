"""An Anthropic Messages request as a chat-completions body: what every deployment but an Anthropic one answers,
and what routing, the caches, budgets and rate limits read. Pure, no I/O.

The reverse of ``providers/anthropic_translate`` (chat → Messages), with the same conventions:
- ``system`` (a string or text blocks) becomes the first message, a ``system`` message; ``cache_control`` on any
  block, tool or part is kept on the chat part it becomes.
- A user turn's ``tool_result`` blocks become ``tool`` messages (before the turn's other content, as Anthropic
  orders them); images inside a tool result, which a chat ``tool`` message cannot hold, follow in a user message.
- An assistant turn's ``tool_use`` blocks become ``tool_calls`` (arguments as JSON text); ``thinking`` and
  ``redacted_thinking`` blocks become ``thinking_blocks`` (signatures intact) and their text ``reasoning_content``.
- Images (base64 or URL) become ``image_url`` parts; a base64 PDF document a ``file`` part; a plain-text document a
  text part. A document by URL, or in another media type, is refused (CapabilityError): no chat shape holds it.
- ``tool_choice`` any → required, tool → the named function, ``disable_parallel_tool_use`` → ``parallel_tool_calls:
  false``; ``stop_sequences`` → ``stop``; ``metadata.user_id`` → ``user``; ``output_format`` (JSON schema) →
  ``response_format``.
- Not translated, but sent as written to an Anthropic deployment: ``thinking``, ``top_k``, ``service_tier``.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenomy.errors import CapabilityError, InvalidRequestError
from tokenomy.wire.messages.shapes import CountTokensRequest, MessagesRequest
from tokenomy.wire.validation import integral, typed_view

Part = dict[str, Any]

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body for a Messages request body (validated here: InvalidRequestError names the field)."""
    integral(body, ("max_tokens", "top_k"))
    typed = typed_view(body, MessagesRequest)
    _require(typed.max_tokens >= 1, f"'max_tokens' must be at least 1, got {typed.max_tokens}", "max_tokens")
    if typed.temperature is not None:
        _require(0 <= typed.temperature <= 1, f"'temperature' must be in [0, 1], got {typed.temperature}",
                 "temperature")
    if typed.top_p is not None:
        _require(0 <= typed.top_p <= 1, f"'top_p' must be in [0, 1], got {typed.top_p}", "top_p")
    if typed.top_k is not None:
        _require(typed.top_k >= 0, f"'top_k' must be at least 0, got {typed.top_k}", "top_k")
    chat = _conversation(body)
    chat["max_tokens"] = typed.max_tokens
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if typed.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def count_tokens_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body whose prompt ``POST /v1/messages/count_tokens`` counts."""
    typed_view(body, CountTokensRequest)
    return _conversation(body)


def _conversation(body: dict[str, Any]) -> dict[str, Any]:
    """Model, messages (system first), tools and tool choice, response format: what both requests share."""
    _require(bool(str(body["model"]).strip()), "'model' must be a non-empty string", "model")
    _require(bool(body["messages"]), "'messages' must hold at least one message", "messages")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_content(_as_blocks(system, "system"))})
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}].content"
        blocks = _as_blocks(message["content"], where)
        if message["role"] == "user":
            messages.extend(_user_turn(blocks, where))
        else:
            messages.append(_assistant_turn(blocks, where))
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("tools"):
        chat["tools"] = [_tool(tool) for tool in body["tools"]]
    chat.update(_tool_choice(body.get("tool_choice")))
    fmt = body.get("output_format")
    if fmt:
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
    return chat


def _require(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)


def _as_blocks(content: str | list[Part], where: str) -> list[Part]:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    for j, block in enumerate(blocks):  # as Anthropic's API: an empty text is an error, not a turn
        if block["type"] == "text" and not block["text"]:
            raise InvalidRequestError(f"{where}: text content must be non-empty",
                                      param=where if isinstance(content, str) else f"{where}[{j}].text")
    return blocks


def _user_turn(blocks: list[Part], where: str) -> list[dict[str, Any]]:
    """Tool messages for the turn's tool results, then a user message with the rest (and a result's images)."""
    tools: list[dict[str, Any]] = []
    parts: list[Part] = []
    for j, block in enumerate(blocks):
        at = f"{where}[{j}]"
        if block["type"] == "tool_result":
            content, images = _tool_result(block, at)
            tools.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content})
            parts.extend(images)
        elif block["type"] in ("text", "image", "document"):
            parts.append(_part(block, at))
        else:
            raise InvalidRequestError(f"a user turn cannot hold a '{block['type']}' block", param=at)
    turn = [{"role": "user", "content": _compact(parts)}] if parts else []
    return tools + turn


def _tool_result(block: Part, where: str) -> tuple[str | list[Part], list[Part]]:
    content = block.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    texts = [_part(b, f"{where}.content[{k}]") for k, b in enumerate(content) if b["type"] == "text"]
    images = [_part(b, f"{where}.content[{k}]") for k, b in enumerate(content) if b["type"] == "image"]
    return texts if texts else "", images


def _assistant_turn(blocks: list[Part], where: str) -> dict[str, Any]:
    texts: list[Part] = []
    calls: list[dict[str, Any]] = []
    thinking: list[Part] = []
    for j, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            texts.append(_part(block, f"{where}[{j}]"))
        elif kind == "tool_use":
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}})
        elif kind == "thinking":
            thinking.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise InvalidRequestError(f"an assistant turn cannot hold a '{kind}' block", param=f"{where}[{j}]")
    # "" rather than null beside tool calls: llama.cpp's server and some chat templates refuse a null content
    message: dict[str, Any] = {"role": "assistant", "content": _text_content(texts)}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
    return message


def _part(block: Part, where: str) -> Part:
    kind = block["type"]
    if kind == "text":
        part: Part = {"type": "text", "text": block["text"]}
    elif kind == "image":
        part = {"type": "image_url", "image_url": {"url": _url(block["source"])}}
    else:
        part = _document(block, where)
    if block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _document(block: Part, where: str) -> Part:
    source = block["source"]
    if source["type"] == "text":
        return {"type": "text", "text": source["data"]}
    if source["type"] == "base64" and source["media_type"] == "application/pdf":
        return {"type": "file", "file": {"file_data": _url(source), "filename": block.get("title") or "document.pdf"}}
    raise CapabilityError("only base64 PDF and plain-text documents are supported (a chat request cannot hold a "
                          f"document by URL or of type {source.get('media_type', 'unknown')})", param=where)


def _url(source: Part) -> str:
    if source["type"] == "url":
        return str(source["url"])
    return f"data:{source['media_type']};base64,{source['data']}"


def _compact(parts: list[Part]) -> str | list[Part]:
    """One plain text part as a string (the shape most turns have); anything else as parts."""
    if len(parts) == 1 and set(parts[0]) == {"type", "text"}:
        return str(parts[0]["text"])
    return parts


def _text_content(parts: list[Part]) -> str | list[Part]:
    """Text blocks as one string, unless one carries ``cache_control`` (then as parts, the marks kept)."""
    if any("cache_control" in p for p in parts):
        return [{"type": "text", "text": p["text"], **({"cache_control": p["cache_control"]}
                                                          if "cache_control" in p else {})} for p in parts]
    return "".join(str(p["text"]) for p in parts)


def _tool(tool: Part) -> Part:
    function: Part = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    out: Part = {"type": "function", "function": function}
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Part | None) -> dict[str, Any]:
    if not choice:
        return {}
    out: dict[str, Any] = {}
    if choice["type"] == "tool":
        _require(bool(choice.get("name")), "tool_choice of type 'tool' needs 'name'", "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        out["tool_choice"] = _TOOL_CHOICES[choice["type"]]
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out
