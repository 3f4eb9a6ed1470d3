"""OpenAI Responses API request shape (``POST /v1/responses``), as a msgspec Struct used to validate a body.

Validation only: the translation (``wire.responses.request``) reads the client's own object and checks each input
item itself (their shapes vary with ``type`` and ``role``, and a message item may omit ``type``). Top-level fields
this door does not know are refused, so a feature the gateway cannot honour (hosted tools, background runs, stored
prompts, conversations) is never dropped in silence.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Base(msgspec.Struct, omit_defaults=True):
    pass


class TextFormat(_Base):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Base):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Base):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(_Base, forbid_unknown_fields=True):
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: Reasoning | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    background: Literal[False] | None = None
