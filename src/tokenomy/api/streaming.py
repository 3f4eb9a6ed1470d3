"""Relay a primed upstream stream to the client as SSE.

Usage is always requested upstream; it is passed on only if the client asked (``stream_options.include_usage``).
A stream that breaks after the first byte ends with an OpenAI-style error event, which the official SDKs raise as
an error, instead of hanging. A client that goes away closes the upstream stream (and so stops a local generation).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from tokenomy.dispatch.dispatcher import ServedStream
from tokenomy.errors import UpstreamError
from tokenomy.providers.sse import DONE, encode_data

log = logging.getLogger("tokenomy.api")


async def relay(served: ServedStream, *, include_usage: bool, request_id: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in _all(served):
            out = chunk if include_usage else _without_usage(chunk)
            if out is not None:
                yield encode_data(out)
        yield DONE
    except UpstreamError as exc:
        log.warning("stream %s from %s broke: %s", request_id, served.deployment.name, exc.message)
        yield encode_data({"error": {"message": f"upstream stream broke: {exc.message}", "type": exc.type,
                                     "param": None, "code": exc.code}})
    finally:
        await served.rest.aclose()


async def _all(served: ServedStream) -> AsyncIterator[dict[str, Any]]:
    yield served.first
    async for chunk in served.rest:
        yield chunk


def _without_usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk as a client that did not ask for usage sees it: no usage field, no usage-only chunk."""
    if "usage" not in chunk:
        return chunk
    if not chunk.get("choices"):
        return None
    return {k: v for k, v in chunk.items() if k != "usage"}
