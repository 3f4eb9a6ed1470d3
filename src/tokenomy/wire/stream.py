"""Between the two shapes of one answer: stream chunks → a whole completion (to store a streamed miss), and a whole
completion → stream chunks (to replay a hit to a streaming client)."""

from __future__ import annotations

import time
import uuid
from typing import Any


class StreamAssembler:
    """Folds ``chat.completion.chunk`` objects into the ``chat.completion`` they describe (any ``n``, tool calls
    merged by index, token logprobs joined, the final usage)."""

    def __init__(self) -> None:
        self._choices: dict[int, dict[str, Any]] = {}
        self._head: dict[str, Any] = {}
        self._usage: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> None:
        if not self._head:
            self._head = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            slot = self._choices.setdefault(int(choice.get("index", 0)), {
                "content": [], "tools": {}, "thinking": {}, "reasoning": [], "finish_reason": None, "logprobs": None})
            delta = choice.get("delta") or {}
            if delta.get("content"):
                slot["content"].append(delta["content"])
            if delta.get("reasoning_content"):
                slot["reasoning"].append(delta["reasoning_content"])
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                slot["logprobs"] = (slot["logprobs"] or []) + logprobs["content"]
            for call in delta.get("tool_calls") or ():
                _merge_tool_call(slot["tools"], call)
            for part in delta.get("thinking_blocks") or ():
                _merge_thinking(slot["thinking"], part)
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            message: dict[str, Any] = {"role": "assistant", "content": "".join(slot["content"]) or None}
            if slot["tools"]:
                message["tool_calls"] = [slot["tools"][i] for i in sorted(slot["tools"])]
            if slot["thinking"]:
                message["thinking_blocks"] = [slot["thinking"][i] for i in sorted(slot["thinking"])]
            if slot["reasoning"]:
                message["reasoning_content"] = "".join(slot["reasoning"])
            logprobs = None if slot["logprobs"] is None else {"content": slot["logprobs"], "refusal": None}
            choices.append({"index": index, "message": message, "finish_reason": slot["finish_reason"],
                            "logprobs": logprobs})
        out = {**self._head, "object": "chat.completion", "choices": choices}
        if self._usage is not None:
            out["usage"] = self._usage
        return out


def _merge_tool_call(calls: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    index = int(part.get("index", 0))
    call = calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    if part.get("id"):
        call["id"] = part["id"]
    function = part.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def _merge_thinking(blocks: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    """A streamed piece of an Anthropic thinking block (see providers/anthropic_translate): text appended, the
    signature or a redacted block's data set."""
    index = int(part.get("index", 0))
    if part.get("type") == "redacted_thinking":
        blocks[index] = {"type": "redacted_thinking", "data": part.get("data", "")}
        return
    block = blocks.setdefault(index, {"type": "thinking", "thinking": "", "signature": ""})
    block["thinking"] += part.get("thinking") or ""
    if part.get("signature"):
        block["signature"] = part["signature"]


def fresh(completion: dict[str, Any]) -> dict[str, Any]:
    """A cached completion re-issued: its own id and time."""
    return {**completion, "id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time())}


def replay_chunks(completion: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a streamed answer equal to ``completion``: role, content, tool calls, finish, usage."""
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion.get("model")}
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or ():
        index, message = choice.get("index", 0), choice.get("message") or {}
        chunks.append({**head, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]})
        if message.get("thinking_blocks") or message.get("reasoning_content"):
            thinking: dict[str, Any] = {"reasoning_content": message.get("reasoning_content") or ""}
            if message.get("thinking_blocks"):
                thinking["thinking_blocks"] = [{**b, "index": i} for i, b in enumerate(message["thinking_blocks"])]
            chunks.append({**head, "choices": [{"index": index, "delta": thinking, "finish_reason": None}]})
        if message.get("content"):
            chunks.append({**head, "choices": [{"index": index, "delta": {"content": message["content"]},
                                                "finish_reason": None}]})
        for i, call in enumerate(message.get("tool_calls") or ()):
            chunks.append({**head, "choices": [{"index": index, "delta": {"tool_calls": [{**call, "index": i}]},
                                                "finish_reason": None}]})
        finish = choice.get("finish_reason")
        chunks.append({**head, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if include_usage and completion.get("usage"):
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks
