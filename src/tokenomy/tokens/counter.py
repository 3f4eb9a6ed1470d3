"""Count tokens offline, for the ledger when an upstream reports no usage (a stream cut short, a body without it).

Encodings are tiktoken's ``o200k_base`` and ``cl100k_base``, read from files shipped in ``tokens/data`` (see its
README). Each is built on first use, once per counter, by tiktoken's own constructor (its regex and special tokens)
with the download swapped for a read of the shipped file, which must have the sha256 that constructor expects.
Nothing is downloaded, nothing is written to tiktoken's cache, and importing this module imports no tiktoken.

How exact the counts are:
- text: exact for OpenAI models. Other vendors' models are counted with ``cl100k_base``: an *estimate*, since
  their tokenisers differ.
- chat prompts: OpenAI's published recipe (cookbook "How to count tokens with tiktoken"): 3 tokens per message,
  1 more for a ``name``, 3 that prime the reply; it matches the API's ``prompt_tokens`` on the cookbook's examples.
  Multi-part content counts its text parts; image and audio parts are not counted (their price depends on size).
  An assistant message's tool calls count their name and arguments, an approximation.
- tool definitions: the cookbook's recipe (per-function and per-property constants, ``name:description`` and
  ``key:type:description`` lines, enum items); nested object schemas and non-function tools are approximations.
- completions: the text plus each tool call's name and arguments, without the call's hidden framing tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import TokenomyError

if TYPE_CHECKING:
    import tiktoken

DATA_DIR = Path(__file__).parent / "data"
O200K = "o200k_base"
CL100K = "cl100k_base"

# Matched against the model name without a routing prefix ("openai/") or a fine-tune prefix ("ft:").
_CL100K_MODELS = re.compile(r"gpt-3\.5|gpt-35|gpt-4(?:[-:]|$)|text-embedding-(?:3|ada-002)|davinci-002|babbage-002")
_OPENAI_MODELS = re.compile(r"gpt-|chatgpt-|o\d+(?:[-:]|$)|codex-|computer-use-|omni-moderation")

# The cookbook's constants: per message, per name, the reply's priming; then the tool-definition recipe.
_PER_MESSAGE, _PER_NAME, _REPLY_PRIMING = 3, 1, 3
_FUNCTION_START = {O200K: 7, CL100K: 10}
_PROPERTIES_START, _PROPERTY, _ENUM_START, _ENUM_ITEM, _FUNCTIONS_END = 3, 3, -3, 3, 12


def encoding_for(model: str) -> str:
    """The encoding to count ``model``'s tokens with: exact for OpenAI models, ``cl100k_base`` as others' estimate.

    ``o200k_base``: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series, gpt-oss and any other OpenAI-looking name
    (``gpt-*``, ``o<n>``), assumed modern. ``cl100k_base``: gpt-3.5, gpt-4 (incl. -turbo), text-embedding-3 and
    ada-002, and every other vendor's model.
    """
    name = model.rsplit("/", 1)[-1].lower().removeprefix("ft:")
    if _CL100K_MODELS.match(name):
        return CL100K
    return O200K if _OPENAI_MODELS.match(name) else CL100K


class TokenCounter:
    """Counts with the shipped encodings, loaded lazily and kept (thread-safe) for this counter's lifetime.

    Satisfies the ``TokenCounter`` protocol of ``tokenomy.ledger.accounting``. Malformed message or tool shapes
    (they come from clients) are skipped, never raised on.
    """

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self._encodings: dict[str, tiktoken.Encoding] = {}

    def encoding(self, name: str) -> tiktoken.Encoding:
        """The tiktoken ``Encoding`` called ``name`` (``o200k_base`` or ``cl100k_base``), built on first use."""
        found = self._encodings.get(name)
        if found is None:
            with self._lock:  # one build per encoding, even when several requests need it first at once
                found = self._encodings.get(name)
                if found is None:
                    found = self._encodings[name] = _build(name, self._data_dir)
        return found

    def count_text(self, text: str, model: str) -> int:
        return len(self.encoding(encoding_for(model)).encode_ordinary(text)) if text else 0

    def count_messages(self, messages: Iterable[Mapping[str, Any]], model: str,
                       tools: Iterable[Mapping[str, Any]] | None = None) -> int:
        """Prompt tokens of a chat request: its messages by OpenAI's recipe, plus its tool definitions."""
        name = encoding_for(model)
        enc = self.encoding(name)
        total = _REPLY_PRIMING
        for message in messages:
            if isinstance(message, Mapping):
                total += _PER_MESSAGE + sum(_field_tokens(enc, key, value) for key, value in message.items())
        return total + (_tools_tokens(enc, _FUNCTION_START[name], tools) if tools else 0)

    def count_completion(self, text: str, tool_calls: Iterable[Mapping[str, Any]] | None, model: str) -> int:
        """Completion tokens: the text and the tool calls (whole calls or streamed deltas, concatenated)."""
        return self.count_text(text + _calls_text(tool_calls or ()), model)


def _build(name: str, data_dir: Path) -> tiktoken.Encoding:
    """tiktoken's constructor for ``name`` with ``load_tiktoken_bpe`` swapped for a read of the shipped file.

    The swap is made in a private copy of the constructor's globals, so tiktoken itself is left as it is.
    """
    import tiktoken
    from tiktoken_ext import openai_public

    if name not in _FUNCTION_START:
        raise ValueError(f"no shipped encoding {name!r}; shipped: {sorted(_FUNCTION_START)}")

    def load_shipped(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        return _read_ranks(data_dir / url.rsplit("/", 1)[-1], expected_hash)

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]
    offline = types.FunctionType(constructor.__code__, {**vars(openai_public), "load_tiktoken_bpe": load_shipped})
    spec: dict[str, Any] = offline()
    return tiktoken.Encoding(**spec)


def _read_ranks(path: Path, expected_sha256: str | None) -> dict[bytes, int]:
    """A ``.tiktoken`` file's ranks, if its sha256 is the one tiktoken expects (the same parse as tiktoken's)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise TokenomyError(f"encoding file {path} cannot be read ({exc}); reinstall tokenomy",
                            code="encoding_file_missing") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected_sha256:
        raise TokenomyError(f"encoding file {path} has sha256 {digest}, tiktoken expects {expected_sha256}; "
                            "reinstall tokenomy", code="encoding_file_damaged")
    ranks: dict[bytes, int] = {}
    for line in blob.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _n(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text)) if text else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _field_tokens(enc: tiktoken.Encoding, key: str, value: Any) -> int:
    if key == "content":
        return _n(enc, _content_text(value))
    if key == "tool_calls":
        return _n(enc, _calls_text(value))
    if key == "function_call":  # the legacy single call, {"name", "arguments"}
        return _n(enc, _calls_text([value]))
    if isinstance(value, str):
        return _n(enc, value) + (_PER_NAME if key == "name" else 0)
    return 0


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(_str(part.get("text")) for part in content if isinstance(part, Mapping))
    return _str(content)


def _calls_text(calls: Any) -> str:
    """Name and arguments of each call, concatenated: streamed deltas rejoin into the calls they are pieces of."""
    if not isinstance(calls, list | tuple):
        return ""
    functions = (call.get("function", call) for call in calls if isinstance(call, Mapping))
    return "".join(_str(f.get("name")) + _str(f.get("arguments")) for f in functions if isinstance(f, Mapping))


def _tools_tokens(enc: tiktoken.Encoding, function_start: int, tools: Iterable[Any]) -> int:
    total = 0
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        if isinstance(function, Mapping):
            total += function_start + _function_tokens(enc, function)
        else:  # not a function tool (custom, hosted): its JSON text, an approximation
            total += _n(enc, json.dumps(tool, separators=(",", ":"), ensure_ascii=False, default=str))
    return total + _FUNCTIONS_END if total else 0


def _function_tokens(enc: tiktoken.Encoding, function: Mapping[str, Any]) -> int:
    total = _n(enc, f"{_str(function.get('name'))}:{_str(function.get('description')).removesuffix('.')}")
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping) or not properties:
        return total
    total += _PROPERTIES_START
    for key, prop in properties.items():
        spec = prop if isinstance(prop, Mapping) else {}
        kind = spec.get("type")
        kind_text = kind if isinstance(kind, str) else json.dumps(kind, separators=(",", ":")) if kind else ""
        total += _PROPERTY + _n(enc, f"{key}:{kind_text}:{_str(spec.get('description')).removesuffix('.')}")
        enum = spec.get("enum")
        if isinstance(enum, list):
            total += _ENUM_START + sum(_ENUM_ITEM + _n(enc, str(item)) for item in enum)
    return total
