"""Count tokens offline, for the ledger when an upstream reports no usage.

Encodings are tiktoken's own (cl100k_base, o200k_base), read from files shipped in ``tokens/data`` and checked
against the sha256 tiktoken expects; nothing is downloaded. Counts are exact for OpenAI models and an estimate
(cl100k_base) for every other vendor's model. Chat messages follow OpenAI's published recipe (3 tokens per
message, 1 more for a ``name``, 3 to prime the reply); tool definitions are counted as their JSON text, an
approximation (OpenAI does not publish how tools are rendered).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
_lock = threading.Lock()
_encodings: dict[str, Any] = {}


def encoding_for(model: str) -> str:
    name = model.rsplit("/", 1)[-1].lower()
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"


def _ranks(name: str) -> dict[bytes, int]:
    blob = (DATA / f"{name}.tiktoken").read_bytes()
    if hashlib.sha256(blob).hexdigest() != SHA256[name]:
        raise ValueError(f"{name}.tiktoken does not match tiktoken's expected sha256; reinstall tokenomy")
    ranks: dict[bytes, int] = {}
    for line in blob.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def encoding(name: str) -> Any:
    """The tiktoken Encoding ``name``, built once from the shipped file and tiktoken's own pattern/specials."""
    with _lock:
        if name not in _encodings:
            import tiktoken
            import tiktoken_ext.openai_public as public

            ranks = _ranks(name)
            original = public.load_tiktoken_bpe
            public.load_tiktoken_bpe = lambda *_args, **_kwargs: ranks  # the spec without its download
            try:
                spec = getattr(public, name)()
            finally:
                public.load_tiktoken_bpe = original
            _encodings[name] = tiktoken.Encoding(**spec)
        return _encodings[name]


class TokenCounter:
    """The ledger's fallback counter (the ``TokenCounter`` protocol of ledger.accounting)."""

    def count_text(self, text: str, model: str) -> int:
        return len(encoding(encoding_for(model)).encode(text, disallowed_special=()))

    def count_messages(self, messages: list[dict[str, Any]], model: str,
                       tools: list[dict[str, Any]] | None = None) -> int:
        enc = encoding(encoding_for(model))
        total = 3  # every reply is primed with <|start|>assistant<|message|>
        for message in messages:
            total += 3
            for key, value in message.items():
                if key == "content":
                    total += len(enc.encode(_content_text(value), disallowed_special=()))
                elif key == "tool_calls" and isinstance(value, list):
                    total += sum(len(enc.encode(_call_text(c), disallowed_special=())) for c in value)
                elif isinstance(value, str):
                    total += len(enc.encode(value, disallowed_special=()))
                    if key == "name":
                        total += 1
        if tools:
            total += len(enc.encode(json.dumps(tools, separators=(",", ":")), disallowed_special=()))
        return total

    def count_completion(self, text: str, tool_calls: list[dict[str, Any]] | None, model: str) -> int:
        joined = text + "".join(_call_text(c) for c in tool_calls or ())
        return self.count_text(joined, model) if joined else 0


def _content_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return ""


def _call_text(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    return str(function.get("name") or "") + str(function.get("arguments") or "")
