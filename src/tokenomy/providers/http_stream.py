"""Read a streaming aiohttp response line by line, converting transport failures into our error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from tokenomy.errors import UpstreamConnectionError, UpstreamTimeoutError


async def response_lines(resp: aiohttp.ClientResponse, deployment: str) -> AsyncIterator[bytes]:
    """The body line by line. Each read is bounded by the session's ``sock_read`` timeout (the stream idle timeout):
    a stall becomes UpstreamTimeoutError, a broken connection UpstreamConnectionError."""
    while True:
        try:
            line = await resp.content.readline()
        except TimeoutError as exc:
            raise UpstreamTimeoutError("stream stalled: no bytes within the idle timeout",
                                       deployment=deployment) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"stream broke: {type(exc).__name__}: {exc}",
                                          deployment=deployment) from exc
        if not line:
            return
        yield line
