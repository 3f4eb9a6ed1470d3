"""The provider seam: one method, ``chat``, in OpenAI's chat-completions shape on both sides.

A provider receives the client's (validated) chat body with ``model`` already set to the upstream's own model
name, and returns either a whole ``chat.completion`` object or, for ``stream: true``, an async generator of
``chat.completion.chunk`` objects. A request that came in through the Anthropic Messages door also carries the
client's own Messages request (``ChatCall.anthropic``, see ``wire.chat.ANTHROPIC_REQUEST``): an Anthropic provider
sends that, untranslated; every other provider answers the chat body it was translated into. It converts every
failure of its upstream into an ``UpstreamError`` at its boundary; nothing above it sees aiohttp, llama.cpp or a
vendor's error shapes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

Completion = dict[str, Any]
Chunk = dict[str, Any]
ChunkStream = AsyncGenerator[Chunk, None]


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One upstream call. ``timeout_s`` bounds a whole call, or the first byte of a stream. ``anthropic``: the
    Anthropic Messages request the body was translated from (see ``ANTHROPIC_REQUEST``), or None. ``key_id``: the
    virtual key asking (None: the master key or an open gateway), for a provider that shares itself fairly among
    keys."""

    body: dict[str, Any]
    request_id: str
    timeout_s: float
    stream_idle_timeout_s: float = 60.0
    anthropic: dict[str, Any] | None = None
    key_id: str | None = None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class Provider(Protocol):
    """Anything that can answer a chat call. ``stream`` in the body picks the return shape."""

    async def chat(self, call: ChatCall) -> Completion | ChunkStream: ...


class Closeable(Protocol):
    async def aclose(self) -> None: ...
