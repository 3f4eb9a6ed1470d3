"""The Responses door's entry into the core: an OpenAI Responses request is translated onto the one chat path
(``serve_chat``, through ``Gateway.chat``), so routing, caches, budgets, rate limits and the ledger apply as to any
chat request; what this adds is the conversation state. A request that names ``previous_response_id`` continues
that stored conversation (the caller's own: another key's is not found); an answer with ``store`` (the default) is
stored, whole or at the end of its stream, before the client reads its last event, so the next turn finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tokenomy.control.auth import Principal
from tokenomy.conversations.store import StoredResponse
from tokenomy.errors import NotFoundError, StreamBrokenError, TokenomyError
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer, ResponsesAnswer, ResponsesStream, StreamAnswer
from tokenomy.ids import random_hex
from tokenomy.ledger.trace import now_us
from tokenomy.wire.responses.answer import completed
from tokenomy.wire.responses.events import ResponseEvents
from tokenomy.wire.responses.request import input_items, to_chat, validate

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


def owner_of(principal: Principal) -> str:
    """Who a stored response belongs to: the virtual key, else the master key or anonymous (an open gateway)."""
    return principal.key_id or principal.kind


async def serve_responses(gw: Gateway, body: dict[str, Any], caller: Caller) -> ResponsesAnswer | ResponsesStream:
    request = validate(body)
    owner = owner_of(caller.principal)
    history: list[StoredResponse] = []
    if request.previous_response_id is not None:
        history = await conversation(gw, request.previous_response_id, owner)
    items = input_items(body, random_hex(12))
    chat = to_chat(body, [item for turn in history for item in turn.items] + items)
    served = await gw.chat(chat, replace(caller, endpoint="responses"))
    rid = served.headers["x-request-id"]
    turn = _Turn(gw, owner, request.previous_response_id, items, store=request.store is not False)
    if isinstance(served, Answer):
        response = completed(body, rid, served.completion)
        await turn.save(response)
        return ResponsesAnswer(response, served.headers)
    return ResponsesStream(_events(served, ResponseEvents(body, rid), turn), served.headers)


async def conversation(gw: Gateway, response_id: str, owner: str) -> list[StoredResponse]:
    found = await asyncio.to_thread(gw.conversations.conversation, response_id, owner)
    if found is None:
        raise NotFoundError(f"no stored response {response_id!r}", param="previous_response_id")
    return found


async def stored(gw: Gateway, response_id: str, owner: str) -> StoredResponse:
    found = await asyncio.to_thread(gw.conversations.get, response_id, owner)
    if found is None:
        raise NotFoundError(f"no stored response {response_id!r}", param="response_id")
    return found


async def delete(gw: Gateway, response_id: str, owner: str) -> None:
    if not await asyncio.to_thread(gw.conversations.delete, response_id, owner):
        raise NotFoundError(f"no stored response {response_id!r}", param="response_id")


class _Turn:
    """Where a finished response goes: the caller's store, unless the request said ``store: false``."""

    def __init__(self, gw: Gateway, owner: str, previous_id: str | None, items: list[dict[str, Any]], *,
                 store: bool) -> None:
        self._gw, self._owner, self._previous, self._items, self._store = gw, owner, previous_id, items, store

    async def save(self, response: dict[str, Any]) -> None:
        if self._store:
            record = StoredResponse(response["id"], self._owner, now_us(), self._previous, self._items, response)
            await asyncio.to_thread(self._gw.conversations.save, record)


async def _events(served: StreamAnswer, events: ResponseEvents,
                  turn: _Turn) -> AsyncGenerator[dict[str, Any], None]:
    chunks = served.chunks
    try:
        for event in events.start():
            yield event
        async for chunk in chunks:
            for event in events.feed(chunk):
                yield event
        last = events.finish()
        assert events.response is not None
        try:
            await turn.save(events.response)
        except TokenomyError as exc:  # answered and accounted, but not stored: the next turn could not find it
            last = events.failed(exc)
        for event in last:
            yield event
    except StreamBrokenError as exc:
        for event in events.failed(exc):
            yield event
    finally:
        await chunks.aclose()
