"""Turn a raw request body into a validated chat request, or one clear ``InvalidRequestError``.

Pure functions: bytes in, a ``ValidChat`` out. Every rejection names the offending field in ``param`` (OpenAI's
dotted style, e.g. ``messages[2].content``) and says what was expected, in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import orjson

from tokenomy.errors import InvalidRequestError
from tokenomy.wire.chat import ChatCompletionRequest, NamedToolChoice

T = TypeVar("T")

_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


@dataclass(frozen=True, slots=True)
class ValidChat:
    """A chat request that passed validation: the client's own object plus the typed view of it."""

    body: dict[str, Any]
    typed: ChatCompletionRequest

    @property
    def stream(self) -> bool:
        return bool(self.typed.stream)

    @property
    def include_usage(self) -> bool:
        opts = self.typed.stream_options
        return bool(opts and opts.include_usage)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON request body that must be an object."""
    if not raw.strip():
        raise InvalidRequestError("request body is empty; send a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequestError(f"request body must be a JSON object, not {type(value).__name__}")
    return value


def typed_view(body: dict[str, Any], shape: type[T]) -> T:
    """Convert a decoded body into ``shape``, mapping msgspec's message to a one-line error with ``param``."""
    try:
        return msgspec.convert(body, shape)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        param = match.group("path") if match else None
        message = _PATH.sub("", text)
        missing = _MISSING.search(message)
        if missing:
            param = f"{param}.{missing.group('field')}" if param else missing.group("field")
        where = f" at '{param}'" if param else ""
        raise InvalidRequestError(f"invalid request{where}: {message}", param=param) from exc


_INTEGERS = ("n", "max_tokens", "max_completion_tokens", "seed", "top_logprobs")


def integral(body: dict[str, Any], names: tuple[str, ...]) -> None:
    """JSON counts 2.0 as the integer 2 (JSON Schema does); so do we, for these fields of ``body``."""
    for name in names:
        value = body.get(name)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:  # exact as a float
            body[name] = int(value)


def validate_chat(body: dict[str, Any]) -> ValidChat:
    """Validate a chat-completions body (shape, then the rules between fields)."""
    integral(body, _INTEGERS)
    typed = typed_view(body, ChatCompletionRequest)
    _check_ranges(typed)
    _check_messages(typed)
    _check_tools(typed)
    return ValidChat(body=body, typed=typed)


def _require(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)


def _check_ranges(req: ChatCompletionRequest) -> None:
    _require(bool(req.model.strip()), "'model' must be a non-empty string", "model")
    if req.temperature is not None:
        _require(0 <= req.temperature <= 2, f"'temperature' must be in [0, 2], got {req.temperature}", "temperature")
    if req.top_p is not None:
        _require(0 <= req.top_p <= 1, f"'top_p' must be in [0, 1], got {req.top_p}", "top_p")
    if req.n is not None:
        _require(1 <= req.n <= 128, f"'n' must be in [1, 128], got {req.n}", "n")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(req, name)
        if value is not None:
            _require(value >= 1, f"'{name}' must be at least 1, got {value}", name)
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(req, name)
        if value is not None:
            _require(-2 <= value <= 2, f"'{name}' must be in [-2, 2], got {value}", name)
    if isinstance(req.stop, list):
        _require(len(req.stop) <= 4, f"'stop' may hold at most 4 sequences, got {len(req.stop)}", "stop")
    if req.top_logprobs is not None:
        _require(0 <= req.top_logprobs <= 20, "'top_logprobs' must be in [0, 20]", "top_logprobs")
    if req.stream_options is not None:
        _require(bool(req.stream), "'stream_options' is only allowed when 'stream' is true", "stream_options")
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema":
        _require(fmt.json_schema is not None, "response_format type 'json_schema' needs 'json_schema'",
                 "response_format.json_schema")


def _check_messages(req: ChatCompletionRequest) -> None:
    _require(len(req.messages) > 0, "'messages' must hold at least one message", "messages")
    offered: set[str] = set()
    for i, msg in enumerate(req.messages):
        where = f"messages[{i}]"
        if msg.role == "assistant":
            _require(msg.content is not None or bool(msg.tool_calls) or msg.refusal is not None,
                     f"{where}: an assistant message needs 'content' or 'tool_calls'", f"{where}.content")
            offered.update(call.id for call in msg.tool_calls or ())
        elif msg.role == "tool":
            _require(msg.tool_call_id is not None, f"{where}: a tool message needs 'tool_call_id'",
                     f"{where}.tool_call_id")
            _require(msg.content is not None, f"{where}: a tool message needs 'content'", f"{where}.content")
            _require(msg.tool_call_id in offered,
                     f"{where}: 'tool_call_id' {msg.tool_call_id!r} answers no earlier assistant tool call",
                     f"{where}.tool_call_id")
        else:
            _require(msg.content is not None, f"{where}: a {msg.role} message needs 'content'", f"{where}.content")
        _require(msg.role != "tool" or not msg.tool_calls, f"{where}: only assistant messages carry 'tool_calls'",
                 f"{where}.tool_calls")


def _check_tools(req: ChatCompletionRequest) -> None:
    names = [tool.function.name for tool in req.tools or ()]
    for i, name in enumerate(names):
        _require(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) is not None,
                 f"tools[{i}].function.name {name!r} must be 1-64 letters, digits, '_' or '-'",
                 f"tools[{i}].function.name")
    _require(len(set(names)) == len(names), "tool names must be unique", "tools")
    choice = req.tool_choice
    if choice is None:
        return
    _require(bool(names) or choice == "none", "'tool_choice' needs 'tools'", "tool_choice")
    if isinstance(choice, NamedToolChoice):
        _require(choice.function.name in names,
                 f"'tool_choice' names function {choice.function.name!r}, which is not in 'tools'",
                 "tool_choice.function.name")
