"""A door's work, stopped when its client leaves: a non-streamed answer (or a stream's wait for its first chunk) is
awaited while the connection is watched, and a client that hangs up cancels the core's work. The core then stops the
upstream call (the in-process model at its next token) and records the request with ``client_disconnected`` (on
939b14d an abandoned request generated on for minutes and was recorded as delivered). A stream being sent is
watched by ``api.streaming`` instead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientGoneError(Exception):
    """The client left before its answer was ready; the core has recorded it."""


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; raises ``ClientGoneError`` (after cancelling ``work``) when the client hangs up first. Call it
    once the request's body has been read."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server gave up on the request (its graceful shutdown ran out)
        await _stop(task)
        raise
    finally:
        watch.cancel()
    if not task.done():
        await _stop(task)
        raise ClientGoneError
    return task.result()


async def _stop(task: asyncio.Future[T]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
