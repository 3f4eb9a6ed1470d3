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
            slot = self._choices.setdefault(int(choice.get("index", 0)), {"content": [], "tools": {}, "role":
                                                                          "assistant", "finish_reason": None,
                                                                          "logprobs": None})
            delta = choice.get("delta") or {}
            if delta.get("content"):
                slot["content"].append(delta["content"])
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                slot["logprobs"] = (slot["logprobs"] or []) + logprobs["content"]
            for call in delta.get("tool_calls") or ():
                _merge_tool_call(slot["tools"], call)
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            message: dict[str, Any] = {"role": "assistant", "content": "".join(slot["content"]) or None}
            if slot["tools"]:
                message["tool_calls"] = [slot["tools"][i] for i in sorted(slot["tools"])]
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
