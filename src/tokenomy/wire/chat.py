"""OpenAI chat-completions request shapes, as msgspec Structs used to validate a request body.

Validation only: the gateway forwards the client's own JSON object (so fields this file does not know still reach an
OpenAI-compatible upstream); these Structs prove the fields it does know are well formed. No logic lives here
beyond the checks that a field's own definition implies.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# The key under which a chat body carries the Anthropic Messages request it was translated from (set by the gateway
# core for the Messages door only; the dispatcher lifts it out into ``ChatCall.anthropic``, so no upstream sees it):
# ``{"request": <the client's Messages body>, "beta": <its anthropic-beta header>}``.
ANTHROPIC_REQUEST = "x-tokenomy-anthropic"


class _Base(msgspec.Struct, omit_defaults=True):
    pass


class TextPart(_Base, tag="text", tag_field="type"):
    text: str


class ImageURL(_Base):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Base, tag="image_url", tag_field="type"):
    image_url: ImageURL


class InputAudio(_Base):
    data: str
    format: str


class AudioPart(_Base, tag="input_audio", tag_field="type"):
    input_audio: InputAudio


class FilePart(_Base, tag="file", tag_field="type"):
    file: dict[str, Any]


class RefusalPart(_Base, tag="refusal", tag_field="type"):
    refusal: str


ContentPart = TextPart | ImagePart | AudioPart | FilePart | RefusalPart


class FunctionCall(_Base):
    name: str
    arguments: str


class ToolCall(_Base):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class Message(_Base):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class FunctionDef(_Base):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Base):
    function: FunctionDef
    type: Literal["function"] = "function"


class NamedFunction(_Base):
    name: str


class NamedToolChoice(_Base):
    function: NamedFunction
    type: Literal["function"] = "function"


class JSONSchemaFormat(_Base):
    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(_Base):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Base):
    include_usage: bool | None = None


class ChatCompletionRequest(_Base):
    model: str
    messages: list[Message]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
