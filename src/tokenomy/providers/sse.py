"""Server-sent events: read them off an upstream byte stream, write them for a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str | None = None


async def read_events(lines: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Group ``field: value`` lines into events (blank line ends one); comments and ids are ignored."""
    data: list[str] = []
    event: str | None = None
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield Event("\n".join(data), event)
            data, event = [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield Event("\n".join(data), event)


def encode_data(obj: Any) -> bytes:
    """One ``data:`` event holding a JSON object."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"
