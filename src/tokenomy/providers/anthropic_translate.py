"""OpenAI chat completions <-> Anthropic Messages API: the request, the response and the stream. Pure, no I/O.

Request (``to_messages_request``):
- ``system``/``developer`` messages, wherever they stand, join the top-level ``system``: one string when each is a
  string, else a list of text blocks. A part's ``cache_control`` is kept, here and on tools and message parts, so
  prompt-cache breakpoints a client sets survive the translation.
- ``tool`` messages become ``tool_result`` blocks in a user turn; consecutive messages of one role are merged into
  one turn, as Anthropic requires the roles to alternate.
- ``response_format`` ``json_object``/``json_schema``: this API version has no JSON mode, so an instruction (with
  the schema, for ``json_schema``) is appended to ``system``. It is a request to the model, not a guarantee: the
  answer is not validated.
- ``temperature`` is clamped (not scaled) to Anthropic's 0..1; when ``temperature`` and ``top_p`` are both set only
  ``temperature`` is sent, since current Claude models reject the pair.
- ``max_tokens`` is required by Anthropic: ``max_completion_tokens``, else ``max_tokens``, else 4096.
- Dropped, having no Anthropic counterpart: seed, presence_penalty, frequency_penalty, stream_options (usage always
  comes), store, service_tier, reasoning_effort, prediction, and ``metadata`` (only ``user`` maps, to ``user_id``).
- Refused with CapabilityError: n > 1, logprobs/top_logprobs, logit_bias, audio output, ``input_audio`` parts, file
  parts other than PDF data URLs, and the legacy ``functions``/``function_call``/``function`` role.

Thinking: Anthropic's thinking blocks travel in the chat shapes the way other gateways carry them: an answer's
``message.thinking_blocks`` (``{"type": "thinking", "thinking", "signature"}`` or ``{"type": "redacted_thinking",
"data"}``, in order) and ``message.reasoning_content`` (their text); in a stream, ``delta.thinking_blocks`` items carry
an ``index`` (the block's place among the thinking blocks) and the part that arrived. An assistant message sent back
with ``thinking_blocks`` has them put first in its turn, signatures intact, as Anthropic requires for tool use with
thinking.

Usage: Anthropic's ``input_tokens`` excludes cached tokens, so ``prompt_tokens`` = input + cache read + cache write
and ``prompt_tokens_details.cached_tokens`` = cache read. The raw numbers stay under ``usage["anthropic"]``
(``input_tokens``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``, always ints, and ``cache_creation``
with the 5m/1h split when the upstream sent it) so that cache writes can be priced exactly.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tokenomy.errors import (
    CapabilityError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamUnavailableError,
)

DEFAULT_MAX_TOKENS = 4096
_JSON_OBJECT_INSTRUCTION = "Respond with one JSON object only: no prose, no code fences."
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                   "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_TOOL_CHOICES = {"none": "none", "auto": "auto", "required": "any"}
_THINKING_FIELDS = {"thinking": ("type", "thinking", "signature"), "redacted_thinking": ("type", "data")}

Block = dict[str, Any]


# --- request ----------------------------------------------------------------------------------------------------


def to_messages_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat-completions body."""
    _refuse_unsupported(body)
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content"), f"messages[{i}].content"))
        elif role in ("user", "assistant", "tool"):
            _append_turn(turns, "assistant" if role == "assistant" else "user", _turn_blocks(message, i))
        else:
            raise CapabilityError(f"message role '{role}' is not supported by Anthropic", param=f"messages[{i}].role")
    system.extend(_response_format_instruction(body.get("response_format")))
    out: dict[str, Any] = {"model": body["model"], "max_tokens": _max_tokens(body),
                           "messages": [{"role": t["role"], "content": _compact(t["content"])} for t in turns]}
    if system:
        plain = all(set(b) == {"type", "text"} for b in system)
        out["system"] = "\n\n".join(b["text"] for b in system) if plain else system
    out.update(_sampling(body))
    out.update(_tools(body))
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if (body.get("n") or 1) > 1:
        raise CapabilityError("Anthropic returns one choice per request; n > 1 is not supported", param="n")
    for param in ("logprobs", "top_logprobs", "logit_bias", "audio", "functions", "function_call"):
        if body.get(param):
            raise CapabilityError(f"'{param}' is not supported by Anthropic", param=param)
    if "audio" in (body.get("modalities") or ()):
        raise CapabilityError("audio output is not supported by Anthropic", param="modalities")


def _max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else DEFAULT_MAX_TOKENS


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("temperature") is not None:
        out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    elif body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return out


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools")
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": [_tool(t, i) for i, t in enumerate(tools)]}
    choice = body.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise CapabilityError(f"tool_choice '{choice}' is not supported by Anthropic", param="tool_choice")
        mapped = {"type": _TOOL_CHOICES[choice]}
    elif isinstance(choice, dict):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    if body.get("parallel_tool_calls") is False:
        mapped = mapped or {"type": "auto"}
        if mapped["type"] != "none":
            mapped["disable_parallel_tool_use"] = True
    if mapped:
        out["tool_choice"] = mapped
    return out


def _tool(tool: dict[str, Any], i: int) -> Block:
    if tool.get("type", "function") != "function":
        raise CapabilityError(f"tool type '{tool.get('type')}' is not supported by Anthropic", param=f"tools[{i}]")
    fn = tool["function"]
    out: Block = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _response_format_instruction(fmt: dict[str, Any] | None) -> list[Block]:
    kind = (fmt or {}).get("type")
    if kind == "json_object":
        return [{"type": "text", "text": _JSON_OBJECT_INSTRUCTION}]
    if kind == "json_schema":
        schema = (fmt or {}).get("json_schema") or {}
        text = _JSON_OBJECT_INSTRUCTION + " It must validate against this JSON Schema:\n"
        return [{"type": "text", "text": text + orjson.dumps(schema.get("schema") or {}).decode()}]
    return []


def _turn_blocks(message: dict[str, Any], i: int) -> list[Block]:
    where = f"messages[{i}]"
    if message["role"] == "tool":
        result: Block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
        content = message.get("content")
        result["content"] = content if isinstance(content, str) else _blocks(content, f"{where}.content")
        return [result]
    blocks = [_thinking_block(b) for b in message.get("thinking_blocks") or () if isinstance(b, dict)]
    blocks += _blocks(message.get("content"), f"{where}.content")
    if message.get("refusal"):
        blocks.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        blocks.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                       "input": _arguments(call["function"].get("arguments"), f"{where}.tool_calls")})
    return blocks


def _thinking_block(block: dict[str, Any]) -> Block:
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}


def _arguments(raw: str | None, where: str) -> Any:
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CapabilityError(f"tool call arguments are not JSON: {raw[:80]!r}", param=where) from exc


def _blocks(content: str | list[dict[str, Any]] | None, where: str) -> list[Block]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = [_part(part, f"{where}[{j}]") for j, part in enumerate(content)]
    return [b for b in blocks if b.get("type") != "text" or b["text"]]  # Anthropic rejects empty text blocks


def _part(part: dict[str, Any], where: str) -> Block:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        block: Block = {"type": "text", "text": part.get("text") or part.get("refusal") or ""}
    elif kind == "image_url":
        block = {"type": "image", "source": _source(part["image_url"]["url"], "image/", where)}
    elif kind == "file" and str(part["file"].get("file_data", "")).startswith("data:application/pdf"):
        block = {"type": "document", "source": _source(part["file"]["file_data"], "application/pdf", where)}
    else:
        raise CapabilityError(f"content part type '{kind}' is not supported by Anthropic", param=where)
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _source(url: str, media_prefix: str, where: str) -> Block:
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    header, _, data = url.partition(",")
    media_type = header.removeprefix("data:").removesuffix(";base64")
    if not header.endswith(";base64") or not media_type.startswith(media_prefix) or not data:
        raise CapabilityError("only http(s) URLs and base64 data: URLs are supported by Anthropic", param=where)
    return {"type": "base64", "media_type": media_type, "data": data}


def _append_turn(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    if not blocks:  # an empty turn is invalid for Anthropic and says nothing
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _compact(blocks: list[Block]) -> str | list[Block]:
    """A turn of one plain text block as a string, the shape most requests have; anything else as blocks."""
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks


# --- response ---------------------------------------------------------------------------------------------------


def from_messages_response(msg: dict[str, Any], model: str, created: int | None = None) -> dict[str, Any]:
    """The ``chat.completion`` for a Messages API response; ``model`` names the model in the answer."""
    text = [b["text"] for b in msg.get("content") or [] if b.get("type") == "text"]
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": orjson.dumps(b.get("input") or {}).decode()}}
             for b in msg.get("content") or [] if b.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None,
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    thinking = [{k: b.get(k, "") for k in _THINKING_FIELDS[b["type"]]}
                for b in msg.get("content") or [] if b.get("type") in _THINKING_FIELDS]
    if thinking:
        message["thinking_blocks"] = thinking
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
    return {"id": msg.get("id", ""), "object": "chat.completion", "created": created or int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason(msg.get("stop_reason")) or "stop"}],
            "usage": openai_usage(msg.get("usage") or {})}


def finish_reason(stop_reason: str | None) -> str | None:
    return _FINISH_REASONS.get(stop_reason, "stop") if stop_reason else None


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage object for Anthropic's, keeping Anthropic's own numbers under ``anthropic``."""
    raw: dict[str, Any] = {key: int(usage.get(key) or 0)
           for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")}
    if isinstance(usage.get("cache_creation"), dict):
        raw["cache_creation"] = {key: int(usage["cache_creation"].get(key) or 0)
                                 for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")}
    prompt = raw["input_tokens"] + raw["cache_read_input_tokens"] + raw["cache_creation_input_tokens"]
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": raw["cache_read_input_tokens"]}, "anthropic": raw}


# --- stream -----------------------------------------------------------------------------------------------------


class StreamTranslator:
    """Turns Messages API stream events, one at a time, into ``chat.completion.chunk`` objects.

    The last chunk (on ``message_stop``) has ``choices: []`` and the usage, as OpenAI sends with
    ``stream_options.include_usage``. ``message_delta`` usage is cumulative and overrides ``message_start``'s.
    """

    def __init__(self, model: str, *, deployment: str = "", created: int | None = None) -> None:
        self.model = model
        self.deployment = deployment
        self.created = created or int(time.time())
        self.finished = False
        self._id = ""
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool call index
        self._thinking_index: dict[int, int] = {}  # content block index -> place among the thinking blocks

    def feed(self, event_type: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        if event_type == "message_start":
            message = data.get("message") or {}
            self._id = message.get("id", "")
            self._usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "content_block_start":
            return self._block_start(data.get("index", 0), data.get("content_block") or {})
        if event_type == "content_block_delta":
            return self._block_delta(data.get("index", 0), data.get("delta") or {})
        if event_type == "message_delta":
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            return [self._chunk({}, finish_reason((data.get("delta") or {}).get("stop_reason")))]
        if event_type == "message_stop":
            self.finished = True
            return [{**self._head(), "choices": [], "usage": openai_usage(self._usage)}]
        if event_type == "error":
            raise stream_error(data.get("error") or {}, self.deployment)
        return []  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block.get("type") == "tool_use":
            self._tool_index[index] = position = len(self._tool_index)
            call = {"index": position, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") in _THINKING_FIELDS:
            self._thinking_index[index] = len(self._thinking_index)
            if block["type"] == "redacted_thinking":
                return [self._thinking(index, {"type": "redacted_thinking", "data": block.get("data", "")})]
            if block.get("thinking"):
                return [self._thinking(index, {"type": "thinking", "thinking": block["thinking"]})]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json") and index in self._tool_index:
            call = {"index": self._tool_index[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        if index in self._thinking_index and delta.get("type") == "thinking_delta" and delta.get("thinking"):
            return [self._thinking(index, {"type": "thinking", "thinking": delta["thinking"]})]
        if index in self._thinking_index and delta.get("type") == "signature_delta":
            return [self._thinking(index, {"type": "thinking", "signature": delta.get("signature", "")})]
        return []

    def _thinking(self, index: int, part: Block) -> dict[str, Any]:
        delta: dict[str, Any] = {"thinking_blocks": [{"index": self._thinking_index[index], **part}]}
        if part.get("thinking"):
            delta["reasoning_content"] = part["thinking"]
        return self._chunk(delta)

    def _head(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**self._head(), "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def stream_error(error: dict[str, Any], deployment: str) -> UpstreamError:
    """The UpstreamError for an ``error`` event in a stream (the HTTP status was already 200)."""
    message = f"upstream stream error: {error.get('type', 'error')}: {error.get('message', '')}"
    if error.get("type") == "overloaded_error":
        return UpstreamUnavailableError(message, deployment=deployment)
    if error.get("type") == "rate_limit_error":
        return UpstreamRateLimitError(message, deployment=deployment)
    return UpstreamError(message, deployment=deployment)
