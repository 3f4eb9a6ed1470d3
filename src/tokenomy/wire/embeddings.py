"""OpenAI embeddings request shape (validation only)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class EmbeddingRequest(msgspec.Struct, omit_defaults=True):
    # text, a list of texts, or token ids (list[int] / list[list[int]]); msgspec allows one list type in a union,
    # so the items are checked by the endpoint
    input: str | list[Any]
    model: str
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
