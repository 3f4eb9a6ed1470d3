"""Server-sent events for a streamed answer. ``SSEResponse`` sends the frames a door renders from the core's chunks
(``openai_frames``: each chunk one ``data:`` event, then ``data: [DONE]``, or an OpenAI-style error event when the
stream broke, which the official SDKs raise as an error rather than hang; the Messages and Responses doors render
their own events). The client's disconnect is watched without cancelling the frames mid-await (Starlette's own
StreamingResponse cancels them, which would leave the core no chance to drain and account): the frames are closed,
which closes the core's chunks, and the core accounts the stream as abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenomy.errors import StreamBrokenError
from tokenomy.gateway.results import Chunks
from tokenomy.providers.sse import DONE, encode_data

Frames = AsyncGenerator[bytes, None]


class SSEResponse(StreamingResponse):
    def __init__(self, frames: Frames, headers: dict[str, str]) -> None:
        super().__init__((), status_code=200, headers=headers, media_type="text/event-stream")
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        gone = asyncio.create_task(_disconnected(receive))
        try:
            async for frame in self._frames:
                if gone.done():
                    break
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            await self._frames.aclose()


async def openai_frames(chunks: Chunks) -> Frames:
    """Chat completion chunks as OpenAI's stream."""
    try:
        async for chunk in chunks:
            yield encode_data(chunk)
        yield DONE
    except StreamBrokenError as exc:
        yield encode_data(exc.to_body())
    finally:
        await chunks.aclose()


def encode_event(name: str, data: object) -> bytes:
    """One named event (``event:`` then ``data:``), as the Messages and Responses streams send them."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
