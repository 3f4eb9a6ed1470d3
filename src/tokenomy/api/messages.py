"""POST /v1/messages (Anthropic's Messages API) and POST /v1/messages/count_tokens: parse the body, translate it
onto a chat request (``wire.messages.request``), hand that to the gateway core with the client's own request beside
it (an Anthropic deployment is sent that, untranslated), and render the answer in Anthropic's shapes (a ``message``,
or its SSE events). Errors answer in Anthropic's error body (``api.responses.error_response``). Clients authenticate
with ``x-api-key`` (or a bearer token); ``anthropic-version`` is accepted and not needed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy.api.responses import caller_of, gateway_of, json_response, read_body
from tokenomy.api.streaming import SSEResponse, encode_event
from tokenomy.errors import StreamBrokenError
from tokenomy.gateway.results import Answer
from tokenomy.wire.messages.answer import to_message
from tokenomy.wire.messages.events import MessageEvents
from tokenomy.wire.messages.request import count_tokens_chat, to_chat
from tokenomy.wire.validation import parse_json_object


async def create_message(request: Request) -> Response:
    gateway = gateway_of(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    chat = to_chat(body)
    native = {"request": {k: v for k, v in body.items() if k != "stream"},
              "beta": request.headers.get("anthropic-beta")}
    served = await gateway.chat(chat, replace(caller_of(request), endpoint="messages", anthropic=native))
    rid = served.headers["x-request-id"]
    if isinstance(served, Answer):
        return json_response(to_message(served.completion, rid), headers=served.headers)
    return SSEResponse(served.chunks, _MessageRender(MessageEvents(rid, str(body["model"]))), served.headers)


async def count_tokens(request: Request) -> Response:
    gateway = gateway_of(request)
    body = parse_json_object(await read_body(request, gateway.settings.server.max_body_bytes))
    tokens = await gateway.count_tokens(count_tokens_chat(body), caller_of(request))
    return json_response({"input_tokens": tokens})


class _MessageRender:
    """Chat chunks as Anthropic's Messages events (all the events one chunk makes, in one write)."""

    def __init__(self, events: MessageEvents) -> None:
        self._events = events

    def frame(self, item: dict[str, Any]) -> bytes:
        return b"".join(encode_event(name, data) for name, data in self._events.feed(item))

    def end(self) -> bytes:
        return b"".join(encode_event(name, data) for name, data in self._events.finish())

    def broken(self, exc: StreamBrokenError) -> bytes:
        return encode_event(*self._events.error(exc))
