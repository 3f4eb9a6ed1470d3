"""A door's work, stopped when its client leaves: a non-streamed answer (or a stream's wait for its first chunk) is
awaited while the connection is watched, and a client that hangs up cancels the core's work. The core then stops the
upstream call (the in-process model at its next token) and records the request with ``client_disconnected`` (on
939b14d an abandoned request generated on for minutes and was recorded as delivered). A stream being sent is
watched by ``api.streaming`` instead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


WATCH_AFTER_S = 0.05  # the connection is watched from this long after the body is read: a client gone sooner is seen
# then (its work has run 50 ms more at most)


class ClientGoneError(Exception):
    """The client left before its answer was ready; the core has recorded it."""


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; raises ``ClientGoneError`` (after cancelling ``work``) when the client hangs up first. Call it
    once the request's body has been read. ``work`` runs in the door's own task (a stream it opens is read on in the
    same task); a watcher cancels that task when the connection drops."""
    door = asyncio.current_task()
    assert door is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(request)
        gone = True
        door.cancel()

    watcher: asyncio.Future[None] | None = None

    def start() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    # most answers are back before the watch would start: a timer handle costs less than a task per request
    later = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start)
    try:
        result = await work
    except asyncio.CancelledError:
        if not gone:  # the server gave up on the request (its graceful shutdown ran out)
            raise
        door.uncancel()
        raise ClientGoneError from None
    finally:
        later.cancel()
        if watcher is not None:
            watcher.cancel()
    if gone:  # it left as the answer was finished: the answer goes nowhere, but it was recorded as served
        door.uncancel()
    return result


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
