"""Server-sent events for a streamed answer: each chunk the gateway core yields becomes one ``data:`` event, then
``data: [DONE]``; a stream that broke ends with an OpenAI-style error event instead, which the official SDKs raise as
an error rather than hang. The client's disconnect is watched without cancelling the chunks mid-await (Starlette's own
StreamingResponse cancels them, which would leave the core no chance to drain and account): the chunks are closed,
and the core accounts the stream as abandoned."""

from __future__ import annotations

import asyncio

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenomy.errors import StreamBrokenError
from tokenomy.gateway.results import Chunks
from tokenomy.providers.sse import DONE, encode_data


class SSEResponse(StreamingResponse):
    def __init__(self, chunks: Chunks, headers: dict[str, str]) -> None:
        super().__init__((), status_code=200, headers=headers, media_type="text/event-stream")
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        gone = asyncio.create_task(_disconnected(receive))
        try:
            try:
                async for chunk in self._chunks:
                    if gone.done():
                        break
                    await send({"type": "http.response.body", "body": encode_data(chunk), "more_body": True})
                else:
                    await send({"type": "http.response.body", "body": DONE, "more_body": False})
            except StreamBrokenError as exc:
                await send({"type": "http.response.body", "body": encode_data(exc.to_body()), "more_body": False})
        finally:
            gone.cancel()
            await self._chunks.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
