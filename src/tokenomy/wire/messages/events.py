"""Chat completion chunks as the Anthropic Messages stream: ``message_start``, then per content block
``content_block_start`` / ``content_block_delta`` (``thinking_delta`` and ``signature_delta``, ``text_delta``,
``input_json_delta``) / ``content_block_stop``, one ``ping`` after the first block opens, then ``message_delta`` (the
stop reason and the whole usage) and ``message_stop``. Pure, no I/O: the door frames the events as SSE.

``message_start`` carries zero usage (a chat stream reports its usage at the end); ``message_delta`` carries every
figure, which the Anthropic SDKs take over (its usage counts are cumulative and overwrite).
"""

from __future__ import annotations

from typing import Any

from tokenomy.errors import TokenomyError
from tokenomy.wire.messages.answer import message_id, stop_reason, usage
from tokenomy.wire.messages.errors import error_body

Event = tuple[str, dict[str, Any]]
_NONE: tuple[str, int] = ("", -1)


class MessageEvents:
    """Fed the chunks of one streamed answer in order; ``finish`` when they end well."""

    def __init__(self, request_id: str, model: str) -> None:
        self._id = message_id(request_id)
        self._model = model
        self._started = False
        self._pinged = False
        self._open: tuple[str, int] = _NONE  # the open block: (kind, its index among the chat parts of that kind)
        self._index = -1  # the open block's index in the message
        self._stop = "end_turn"
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events = self._start(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in (chunk.get("choices") or ())[:1]:
            delta = choice.get("delta") or {}
            for part in delta.get("thinking_blocks") or ():
                events += self._thinking(part)
            if delta.get("content"):
                events += self._switch(("text", 0), {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                events += self._tool(call)
            if choice.get("finish_reason"):
                self._stop = stop_reason(choice["finish_reason"])
        return events

    def finish(self) -> list[Event]:
        events = self._start(None) + self._close()
        if not self._pinged:
            events.append(("ping", {"type": "ping"}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": self._stop, "stop_sequence": None},
                                         "usage": usage(self._usage)}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    @staticmethod
    def error(exc: TokenomyError) -> Event:
        """The event that ends a stream that broke after it began."""
        return "error", error_body(exc)

    def _start(self, model: str | None) -> list[Event]:
        if self._started:
            return []
        self._started = True
        zero = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
        message: dict[str, Any] = {"id": self._id, "type": "message", "role": "assistant",
                                   "model": model or self._model, "content": [], "stop_reason": None,
                                   "stop_sequence": None, "usage": zero}
        return [("message_start", {"type": "message_start", "message": message})]

    def _thinking(self, part: dict[str, Any]) -> list[Event]:
        key = ("thinking", int(part.get("index", 0)))
        if part.get("type") == "redacted_thinking":
            return self._switch(key, {"type": "redacted_thinking", "data": part.get("data", "")})
        events = self._switch(key, {"type": "thinking", "thinking": "", "signature": ""})
        if part.get("thinking"):
            events.append(self._delta({"type": "thinking_delta", "thinking": part["thinking"]}))
        if part.get("signature"):
            events.append(self._delta({"type": "signature_delta", "signature": part["signature"]}))
        return events

    def _tool(self, call: dict[str, Any]) -> list[Event]:
        function = call.get("function") or {}
        events = self._switch(("tool", int(call.get("index", 0))), {
            "type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "", "input": {}})
        if function.get("arguments"):
            events.append(self._delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
        return events

    def _switch(self, key: tuple[str, int], block: dict[str, Any]) -> list[Event]:
        """Open the block ``key`` (closing the one open) unless it is the open one."""
        if self._open == key:
            return []
        events = self._close()
        self._open, self._index = key, self._index + 1
        events.append(("content_block_start", {"type": "content_block_start", "index": self._index,
                                               "content_block": block}))
        if not self._pinged:
            self._pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _close(self) -> list[Event]:
        if self._open == _NONE:
            return []
        self._open = _NONE
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _delta(self, delta: dict[str, Any]) -> Event:
        return "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}
