"""Chat completion chunks as the Responses API's semantic stream events, in their documented order. Pure, no I/O.

``response.created`` and ``response.in_progress`` open the stream. Text is one ``message`` item:
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta`` …,
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``. Each tool call is a
``function_call`` item: ``response.output_item.added``, ``response.function_call_arguments.delta`` …,
``response.function_call_arguments.done``, ``response.output_item.done``. The stream ends with
``response.completed`` (or ``response.incomplete`` when the token limit cut it off) carrying the whole response,
usage included, or with ``response.failed`` when the upstream broke. Every event has its ``sequence_number``.
"""

from __future__ import annotations

import time
from typing import Any

from tokenomy.errors import TokenomyError
from tokenomy.wire.responses.answer import call_item, message_item, output_text, response_object

Event = dict[str, Any]


class ResponseEvents:
    """Fed the chunks of one streamed answer in order. ``response`` is the final response object once ``finish``
    (or ``failed``) has run."""

    def __init__(self, request: dict[str, Any], request_id: str) -> None:
        self._request, self._rid = request, request_id
        self._model = str(request["model"])
        self._created = int(time.time())
        self._seq = 0
        self._done: list[dict[str, Any]] = []  # finished output items
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._open_call = -1  # the chat tool-call index of an open function_call item
        self._parts: list[str] = []  # its text, or its arguments
        self._usage: dict[str, Any] | None = None
        self._finish: str | None = None
        self.response: dict[str, Any] | None = None

    def start(self) -> list[Event]:
        snapshot = self._snapshot("in_progress")
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if chunk.get("model"):
            self._model = str(chunk["model"])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        events: list[Event] = []
        for choice in (chunk.get("choices") or ())[:1]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text(delta["content"])
            for call in delta.get("tool_calls") or ():
                events += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self) -> list[Event]:
        events = self._close()
        if not self._done:  # an empty answer is still one (empty) message, as a whole answer has
            events += self._text("") + self._close()
        self.response = response_object(self._request, self._rid, model=self._model, status="completed",
                                        output=self._done, chat_usage=self._usage, finish_reason=self._finish,
                                        created_at=self._created)
        kind = "response.completed" if self.response["status"] == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=self.response)]

    def failed(self, exc: TokenomyError) -> list[Event]:
        error = {"code": exc.code or "server_error", "message": exc.message}
        self.response = response_object(self._request, self._rid, model=self._model, status="failed",
                                        output=self._done, chat_usage=self._usage, error=error,
                                        created_at=self._created)
        return [self._event("response.failed", response=self.response)]

    def _snapshot(self, status: str) -> dict[str, Any]:
        return response_object(self._request, self._rid, model=self._model, status=status, output=[],
                               created_at=self._created)

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open["type"] != "message":
            events += self._close()
            self._open = message_item(self._rid, len(self._done), "", status="in_progress")
            events.append(self._event("response.output_item.added", output_index=len(self._done), item=self._open))
            events.append(self._event("response.content_part.added", item_id=self._open["id"],
                                      output_index=len(self._done), content_index=0, part=output_text("")))
        self._parts.append(text)
        if text:
            events.append(self._event("response.output_text.delta", item_id=self._open["id"],
                                      output_index=len(self._done), content_index=0, delta=text, logprobs=[]))
        return events

    def _call(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = int(call.get("index", 0))
        if self._open is None or self._open["type"] != "function_call" or self._open_call != index:
            events += self._close()
            self._open, self._open_call = call_item(self._rid, len(self._done), call, status="in_progress"), index
            events.append(self._event("response.output_item.added", output_index=len(self._done), item=self._open))
        arguments = (call.get("function") or {}).get("arguments")
        if arguments:
            self._parts.append(arguments)
            events.append(self._event("response.function_call_arguments.delta", item_id=self._open["id"],
                                      output_index=len(self._done), delta=arguments))
        return events

    def _close(self) -> list[Event]:
        """Finish the open item: its done events, and it joins the output."""
        item, at, whole = self._open, len(self._done), "".join(self._parts)
        if item is None:
            return []
        self._open, self._parts = None, []
        if item["type"] == "message":
            done = {**item, "status": "completed", "content": [output_text(whole)]}
            events = [self._event("response.output_text.done", item_id=item["id"], output_index=at,
                                  content_index=0, text=whole, logprobs=[]),
                      self._event("response.content_part.done", item_id=item["id"], output_index=at,
                                  content_index=0, part=output_text(whole))]
        else:
            done = {**item, "status": "completed", "arguments": whole}
            events = [self._event("response.function_call_arguments.done", item_id=item["id"], output_index=at,
                                  arguments=whole)]
        self._done.append(done)
        return [*events, self._event("response.output_item.done", output_index=at, item=done)]

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event
