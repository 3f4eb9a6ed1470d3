"""Relay a primed upstream stream to the client as SSE, and account for it.

Usage is always requested upstream; it is passed on only if the client asked (``stream_options.include_usage``).
A stream that breaks after the first byte ends with an OpenAI-style error event, which the official SDKs raise as
an error, instead of hanging.

A client that goes away is noticed at the next chunk. The rest of an HTTP upstream's stream is then drained (up to
``drain_s``) without forwarding it, so the ledger gets the upstream's own usage figures for what it generated and
billed; the in-process local tier is stopped at once instead (nothing is billed, and its compute is better spent on
the next request), its tokens counted from what was generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenomy.cache.stream_shape import StreamAssembler
from tokenomy.dispatch.dispatcher import ServedStream
from tokenomy.errors import UpstreamError
from tokenomy.providers.sse import DONE, encode_data

log = logging.getLogger("tokenomy.api")


class SSEResponse(StreamingResponse):
    """Streams an SSE body, watching for the client's disconnect without cancelling the body mid-await (Starlette's
    own StreamingResponse cancels it, which would leave no chance to drain and account)."""

    def __init__(self, body: AsyncGenerator[bytes, None], headers: dict[str, str]) -> None:
        super().__init__(body, status_code=200, headers=headers, media_type="text/event-stream")
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        gone = asyncio.create_task(_disconnected(receive))
        try:
            async for chunk in self._body:
                if gone.done():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            await self._body.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def relay(served: ServedStream, *, include_usage: bool, drain_s: float, on_done: Callable[[bool], None],
                on_complete: Callable[[StreamAssembler], Awaitable[None]] | None = None,
                before_done: Callable[[], Awaitable[None]] | None = None) -> AsyncGenerator[bytes, None]:
    """The client's SSE bytes. ``on_done(client_disconnected)`` is called once, when the upstream side is over;
    ``on_complete`` gets the whole answer of a stream that ended well (the exact cache stores it); with
    ``before_done``, a stream that ended well is accounted first and ``data: [DONE]`` waits for it (the ledger's
    durable acknowledgement)."""
    call = served.call
    assembler = StreamAssembler() if on_complete is not None else None
    accounted = False
    try:
        if assembler is not None:
            assembler.feed(served.first)
        first = served.first if include_usage else _without_usage(served.first)
        if first is not None:
            yield encode_data(first)
        async for chunk in served.rest:
            call.chunk(chunk)
            if assembler is not None:
                assembler.feed(chunk)
            out = chunk if include_usage else _without_usage(chunk)
            if out is not None:
                yield encode_data(out)
        call.end_stream("ok")
        if on_complete is not None and assembler is not None:
            await on_complete(assembler)
        if before_done is not None:
            accounted = True
            on_done(False)
            await before_done()
        yield DONE
    except UpstreamError as exc:
        call.end_stream("error", exc)
        log.warning("stream from %s broke: %s", served.deployment.name, exc.message)
        yield encode_data({"error": {"message": f"upstream stream broke: {exc.message}", "type": exc.type,
                                     "param": None, "code": exc.code}})
    finally:
        disconnected = call.outcome == "open"
        if disconnected:
            local = served.deployment.config.provider == "local"
            await _drain(served, 0.0 if local else drain_s)
        await served.rest.aclose()
        if not accounted:
            on_done(disconnected)


async def _drain(served: ServedStream, drain_s: float) -> None:
    """Read (and drop) the rest of the upstream stream for its usage, for at most ``drain_s`` seconds."""
    call = served.call

    async def consume() -> None:
        async for chunk in served.rest:
            call.chunk(chunk)

    if drain_s > 0:
        try:
            await asyncio.wait_for(consume(), timeout=drain_s)
        except (TimeoutError, UpstreamError) as exc:
            log.info("drain of %s after client disconnect stopped: %s", served.deployment.name, exc)
    with contextlib.suppress(Exception):
        await served.rest.aclose()
    call.end_stream("disconnected")


def _without_usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk as a client that did not ask for usage sees it: no usage field, no usage-only chunk."""
    if "usage" not in chunk:
        return chunk
    if not chunk.get("choices"):
        return None
    return {k: v for k, v in chunk.items() if k != "usage"}
