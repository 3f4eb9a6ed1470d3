"""Server-sent events for a streamed answer. ``SSEResponse`` sends what a door's :class:`Render` makes of the core's
items: ``OPENAI`` (each chat chunk one ``data:`` event, then ``data: [DONE]``, or an OpenAI-style error event when the
stream broke, which the official SDKs raise as an error rather than hang); the Messages and Responses doors render
their own events. Rendering is a call per item inside the response's own loop, not one more async generator around
the core's: a generator layer costs every chunk of every stream. The client's disconnect is watched without
cancelling the items mid-await (Starlette's own StreamingResponse cancels them, which would leave the core no chance
to drain and account): the items are closed, and the core accounts the stream as abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, Generic, Protocol, TypeVar

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenomy.errors import StreamBrokenError
from tokenomy.providers.sse import DONE, encode_data

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Render(Protocol[T_contra]):
    """A door's SSE rendering of the core's stream items (``b""``: nothing to send for this one)."""

    def frame(self, item: T_contra) -> bytes: ...

    def end(self) -> bytes:
        """What follows the last item of a stream that ended well."""

    def broken(self, exc: StreamBrokenError) -> bytes:
        """The error event of a stream that broke after its first byte."""


class _OpenAIRender:
    """Chat completion chunks as OpenAI's stream."""

    def frame(self, item: dict[str, Any]) -> bytes:
        return encode_data(item)

    def end(self) -> bytes:
        return DONE

    def broken(self, exc: StreamBrokenError) -> bytes:
        return encode_data(exc.to_body())


OPENAI = _OpenAIRender()


class SSEResponse(StreamingResponse, Generic[T]):
    def __init__(self, items: AsyncGenerator[T, None], render: Render[T], headers: dict[str, str]) -> None:
        super().__init__((), status_code=200, headers=headers, media_type="text/event-stream")
        self._items, self._render = items, render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        gone = asyncio.create_task(_disconnected(receive))
        render = self._render
        try:
            try:
                async for item in self._items:
                    if gone.done():
                        return
                    frame = render.frame(item)
                    if frame:
                        await send({"type": "http.response.body", "body": frame, "more_body": True})
                tail = render.end()
            except StreamBrokenError as exc:
                tail = render.broken(exc)
            if tail:
                await send({"type": "http.response.body", "body": tail, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            await self._items.aclose()


def encode_event(name: str, data: object) -> bytes:
    """One named event (``event:`` then ``data:``), as the Messages and Responses streams send them."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
