"""The HTTP server's own limits, set by ``tokenomy serve`` rather than left to the server's defaults.

uvicorn's httptools protocol has no limit on header size and no deadline for headers or bodies: on 939b14d a 1 MB
header was accepted, partial headers were held open and a body sent a byte at a time held its connection for minutes.
``LimitedHttpTools`` adds them, read from ``LimitedConfig.limits`` (so they travel to worker processes with the
config):

- the request line and headers must arrive within ``header_timeout_s`` of the connection opening or of the first
  byte of the next request on it (a connection that sends nothing is closed after the same time), else ``408``;
- they may take at most ``max_header_bytes``, else ``431``;
- once the headers are in, the body must keep coming: ``body_idle_timeout_s`` at most between two pieces of it,
  else the connection is closed (the app sees the client leave).

granian has the first two (``header_read_timeout``, ``max_buffer_size``) and no body deadline.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uvicorn import Config as _Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Protocol
else:  # the real bases join in ``_classes``, so importing this module imports no server
    _Config = _Protocol = object

_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_CLASSES = ("LimitedConfig", "LimitedHttpTools")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    body_idle_timeout_s: float = 30.0


def __getattr__(name: str) -> Any:
    """``LimitedConfig`` and ``LimitedHttpTools``, made on first use: nothing imports uvicorn until a server runs
    (they are found here by name, so a worker process unpickles them as usual)."""
    if name in _CLASSES:
        return dict(zip(_CLASSES, _classes(), strict=True))[name]
    raise AttributeError(name)


class ConfigLimits(_Config):
    """uvicorn's Config with our limits, served by ``LimitedHttpTools`` (``LimitedConfig``)."""

    def __init__(self, app: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, http=_classes()[1], **kwargs)
        self.limits = limits


class ProtocolLimits(_Protocol):
    """uvicorn's httptools protocol with our limits (``LimitedHttpTools``)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._limits: ServerLimits = getattr(config, "limits", ServerLimits())
        self._deadline: asyncio.TimerHandle | None = None  # wakes at or before ``_due``; re-armed lazily
        self._due: float | None = None  # loop time the current phase must end by (None: no deadline)
        self._answer: bytes | None = None  # what to send when it passes (None: just close)
        self._in_headers = True  # reading a request line and headers (or waiting for them)
        self._header_bytes = 0
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.header_timeout_s, _408)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers and self._due is None:
            self._arm(self._limits.header_timeout_s, _408)  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        if self._too_large and not self.transport.is_closing():
            self._disarm()
            self.transport.write(_431)
            self.transport.close()

    def on_message_begin(self) -> None:
        self._in_headers, self._header_bytes = True, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._too_large:
            return  # no request is started; data_received answers 431
        self._in_headers = False
        self._arm(self._limits.body_idle_timeout_s, None)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._arm(self._limits.body_idle_timeout_s, None)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._too_large:
            return
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._in_headers = True  # the keep-alive timer now runs; the next request's first byte arms the deadline
        super().on_response_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._limits.max_header_bytes:
            self._too_large = True

    def _arm(self, seconds: float, answer: bytes | None) -> None:
        """Set the phase's deadline. Lazy: one timer per connection, moved only when the new deadline is earlier than
        its wake-up; a later deadline is found when it wakes (``_wake``). Three timer handles per request (made and
        cancelled at every phase) cost the p99 at 500 requests/s; a float does not."""
        self._due, self._answer = self.loop.time() + seconds, answer
        if self._deadline is not None and self._deadline.when() <= self._due:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_at(self._due, self._wake)

    def _disarm(self) -> None:
        self._due = None  # a pending wake-up finds nothing due and stops

    def _wake(self) -> None:
        self._deadline = None
        if self._due is None:
            return
        if self.loop.time() < self._due:  # the deadline moved on since the timer was set
            self._deadline = self.loop.call_at(self._due, self._wake)
            return
        self._due = None
        self._expire(self._answer)

    def _expire(self, answer: bytes | None) -> None:
        """Headers late: 408 and close. A body stalled: close (the app reads the client's leaving)."""
        if self.transport.is_closing():
            return
        if answer is not None and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(answer)
        self.transport.close()


@functools.cache
def _classes() -> tuple[type, type]:
    from uvicorn import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = type("LimitedConfig", (ConfigLimits, Config), {"__module__": __name__})
    protocol = type("LimitedHttpTools", (ProtocolLimits, HttpToolsProtocol), {"__module__": __name__})
    return config, protocol
