"""Anthropic Messages API request shapes (``POST /v1/messages``), as msgspec Structs used to validate a body.

Validation only, as ``wire.chat`` is for chat completions: the translation (``wire.messages.request``) reads the
client's own object, and an Anthropic deployment is sent that object untranslated. Top-level fields this door does not
know are refused (so a feature the gateway cannot honour is never dropped in silence); fields inside blocks that are
not modelled here pass through to an Anthropic deployment and are ignored by the translation.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Base(msgspec.Struct, omit_defaults=True):
    pass


class CacheControl(_Base):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class Base64Source(_Base, tag="base64", tag_field="type"):
    media_type: str
    data: str


class URLSource(_Base, tag="url", tag_field="type"):
    url: str


class PlainTextSource(_Base, tag="text", tag_field="type"):
    data: str
    media_type: Literal["text/plain"] = "text/plain"


class TextBlock(_Base, tag="text", tag_field="type"):
    text: str
    cache_control: CacheControl | None = None


class ImageBlock(_Base, tag="image", tag_field="type"):
    source: Base64Source | URLSource
    cache_control: CacheControl | None = None


class DocumentBlock(_Base, tag="document", tag_field="type"):
    source: Base64Source | URLSource | PlainTextSource
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl | None = None


class ToolUseBlock(_Base, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolResultBlock(_Base, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlock(_Base, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class RedactedThinkingBlock(_Base, tag="redacted_thinking", tag_field="type"):
    data: str


Block = (TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock
         | RedactedThinkingBlock)


class Message(_Base):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Base):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    cache_control: CacheControl | None = None
    type: Literal["custom"] | None = None


class ToolChoice(_Base):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Base):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None


class Metadata(_Base):
    user_id: str | None = None


class OutputFormat(_Base):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfig(_Base):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: OutputFormat | None = None


class MessagesRequest(_Base, forbid_unknown_fields=True):
    model: str
    max_tokens: int
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None  # the structured-outputs beta's name for output_config.format
    cache_control: CacheControl | None = None  # automatic caching: Anthropic marks the last cacheable block
    service_tier: Literal["auto", "standard_only"] | None = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = None


class CountTokensRequest(_Base, forbid_unknown_fields=True):
    """``POST /v1/messages/count_tokens``: a Messages request without the output settings."""

    model: str
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None
    cache_control: CacheControl | None = None
    speed: Literal["standard", "fast"] | None = None
