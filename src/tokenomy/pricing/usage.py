"""Token usage, split the way prices are, from each provider's own usage object."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class TokenUsage:
    """Tokens of one call (or a sum of calls). ``input`` excludes cached and cache-written tokens."""

    input: int = 0
    cached_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0
    reasoning: int = 0  # part of output

    def add(self, other: TokenUsage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def prompt_total(self) -> int:
        return self.input + self.cached_read + self.cache_write_5m + self.cache_write_1h


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def normalise_usage(usage: dict[str, Any]) -> TokenUsage:
    """Recognise the usage shape by its fields (a provider's shape is unambiguous) and split it.

    - Anthropic (``usage["anthropic"]`` from our translation, or the raw Messages usage): ``input_tokens`` EXCLUDES
      cache reads and writes; writes split 5 m / 1 h by ``cache_creation``, all 5 m when the split is absent.
    - DeepSeek: ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``.
    - Gemini native: ``promptTokenCount`` includes ``cachedContentTokenCount``; output is candidates + thoughts.
    - OpenAI and compatibles: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``; reasoning tokens
      are part of ``completion_tokens``.
    """
    raw = usage.get("anthropic") if isinstance(usage.get("anthropic"), dict) else None
    if raw is None and "input_tokens" in usage and "prompt_tokens" not in usage:
        raw = usage
    if raw is not None:
        return _anthropic(raw, usage)
    if "prompt_cache_hit_tokens" in usage:
        hit = _int(usage.get("prompt_cache_hit_tokens"))
        miss = usage.get("prompt_cache_miss_tokens")
        total = _int(usage.get("prompt_tokens"))
        return TokenUsage(input=_int(miss) if miss is not None else max(total - hit, 0), cached_read=hit,
                          output=_int(usage.get("completion_tokens")), reasoning=_reasoning(usage))
    if "promptTokenCount" in usage:
        cached = _int(usage.get("cachedContentTokenCount"))
        thoughts = _int(usage.get("thoughtsTokenCount"))
        return TokenUsage(input=max(_int(usage.get("promptTokenCount")) - cached, 0), cached_read=cached,
                          output=_int(usage.get("candidatesTokenCount")) + thoughts, reasoning=thoughts)
    details = usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return TokenUsage(input=max(_int(usage.get("prompt_tokens")) - cached, 0), cached_read=cached,
                      output=_int(usage.get("completion_tokens")), reasoning=_reasoning(usage))


def _reasoning(usage: dict[str, Any]) -> int:
    details = usage.get("completion_tokens_details")
    return _int(details.get("reasoning_tokens")) if isinstance(details, dict) else 0


def _anthropic(raw: dict[str, Any], usage: dict[str, Any]) -> TokenUsage:
    writes = _int(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation")
    if isinstance(split, dict):
        w5m, w1h = _int(split.get("ephemeral_5m_input_tokens")), _int(split.get("ephemeral_1h_input_tokens"))
    else:
        w5m, w1h = writes, 0
    output = _int(raw.get("output_tokens")) or _int(usage.get("completion_tokens"))
    return TokenUsage(input=_int(raw.get("input_tokens")), cached_read=_int(raw.get("cache_read_input_tokens")),
                      cache_write_5m=w5m, cache_write_1h=w1h, output=output)
