"""Exact cost of one call: each provider's usage object split the way prices are, times the rates, in Decimal USD.

``normalise_usage(provider_kind, usage)`` turns a usage object into ``TokenUsage``, whose ``input_tokens`` are only
the tokens billed at the full input rate:

- OpenAI and every OpenAI-compatible server: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``. The Responses API shape
  (``input_tokens`` + ``input_tokens_details.cached_tokens``) is read the same way.
- Anthropic (``usage["anthropic"]`` as our translation keeps it, or a raw Messages usage): ``input_tokens`` EXCLUDES
  cache reads and writes; writes split by ``cache_creation.ephemeral_5m/1h_input_tokens``, all 5-minute when no
  split is given, and any part of ``cache_creation_input_tokens`` the split does not cover counts as 5-minute.
- Gemini native: ``promptTokenCount`` includes ``cachedContentTokenCount``; ``toolUsePromptTokenCount`` is extra
  input; output is ``candidatesTokenCount`` + ``thoughtsTokenCount``. Gemini's OpenAI-compatible shape is read as
  OpenAI's, except that output is ``total_tokens - prompt_tokens`` when that is larger (some layers leave the
  thinking tokens out of ``completion_tokens`` but not out of the total).
- DeepSeek: ``prompt_cache_hit_tokens`` are cache reads, ``prompt_cache_miss_tokens`` full-price input (also
  recognised on any OpenAI-compatible kind, since DeepSeek is often reached through one).

Fields that are absent count as 0; a field that is present but not a non-negative integer, or counts that
contradict each other, are a ``UsageError`` (an upstream protocol error): the caller should count tokens offline
rather than bill a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from tokenomy.errors import UpstreamProtocolError
from tokenomy.pricing.catalogue import Price

MTOK = Decimal(1_000_000)


class UsageError(UpstreamProtocolError):
    """An upstream's usage object is malformed or self-contradictory; ``param`` names the field."""

    code = "invalid_usage"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one call split by price. ``reasoning_tokens`` are part of ``output_tokens``, not extra."""

    input_tokens: int = 0  # billed at the input rate: cache reads and writes are not in here
    cached_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TokenUsage.{f.name} must be an integer >= 0, got {value!r}")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(f"reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens ({self.output_tokens})")

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt: full-price input, cache reads and cache writes (what long-context tiers count)."""
        return self.input_tokens + self.cached_read_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The cost of a call by kind of token, in USD; ``long_context`` and ``batch`` say which rates applied."""

    input_usd: Decimal
    cached_read_usd: Decimal
    cache_write_5m_usd: Decimal
    cache_write_1h_usd: Decimal
    output_usd: Decimal
    long_context: bool
    batch: bool

    @property
    def total_usd(self) -> Decimal:
        return (self.input_usd + self.cached_read_usd + self.cache_write_5m_usd + self.cache_write_1h_usd
                + self.output_usd)


def cost_breakdown(price: Price, usage: TokenUsage, *, batch: bool = False) -> CostBreakdown:
    """Every token kind at its rate. The long-context tier applies to the whole call when the prompt (cache reads
    and writes included, as Anthropic and Google count it) is over its threshold. With ``batch`` the batch rates
    apply, and cache reads and writes get the same discount as input (batch_input ÷ input), as published."""
    rates = price.rates_for(usage.prompt_tokens)
    input_rate, output_rate = (rates.batch_input, rates.batch_output) if batch else (rates.input, rates.output)

    def usd(tokens: int, rate: Decimal) -> Decimal:
        if batch and rates.input and rates.batch_input != rates.input:
            return tokens * rate * rates.batch_input / rates.input / MTOK
        return tokens * rate / MTOK

    return CostBreakdown(
        input_usd=usage.input_tokens * input_rate / MTOK,
        cached_read_usd=usd(usage.cached_read_tokens, rates.cached_input),
        cache_write_5m_usd=usd(usage.cache_write_5m_tokens, rates.cache_write_5m),
        cache_write_1h_usd=usd(usage.cache_write_1h_tokens, rates.cache_write_1h),
        output_usd=usage.output_tokens * output_rate / MTOK,
        long_context=rates is not price, batch=batch)


def cost_usd(price: Price, usage: TokenUsage, *, batch: bool = False) -> Decimal:
    """The exact cost of ``usage`` at ``price`` in USD (see ``cost_breakdown``)."""
    return cost_breakdown(price, usage, batch=batch).total_usd


# --- usage objects -> TokenUsage -------------------------------------------------------------------------------


def normalise_usage(provider_kind: str, usage: Mapping[str, Any]) -> TokenUsage:
    """``usage`` as the provider kind (``openai``, ``anthropic``, ``gemini``, ``deepseek``, any OpenAI-compatible
    kind) reports it, split by price. See the module docstring for each shape."""
    if not isinstance(usage, Mapping):
        raise UsageError(f"{provider_kind} usage must be an object, got {type(usage).__name__}", param="usage")
    parse = _PARSERS.get(provider_kind.lower(), _openai)
    return parse(_Reader(provider_kind, usage))


class _Reader:
    """Reads token counts from a usage object: absent is 0, anything but a non-negative integer is an error."""

    def __init__(self, kind: str, usage: Mapping[str, Any]) -> None:
        self.kind = kind
        self.usage = usage

    def has(self, *path: str) -> bool:
        return self._get(path) is not None

    def int(self, *path: str) -> int:
        value = self._get(path)
        if value is None:
            return 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(f"'{'.'.join(path)}' must be an integer >= 0, got {value!r}", ".".join(path))
        return value

    def error(self, message: str, param: str) -> UsageError:
        return UsageError(f"{self.kind} usage: {message}", param=f"usage.{param}")

    def _get(self, path: tuple[str, ...]) -> Any:
        node: Any = self.usage
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node


def _openai(u: _Reader) -> TokenUsage:
    if isinstance(u.usage.get("anthropic"), Mapping):
        return _anthropic(u)
    if u.has("prompt_cache_hit_tokens"):
        return _deepseek(u)
    responses = not u.has("prompt_tokens") and u.has("input_tokens")  # the Responses API names
    prompt_key, output_key = ("input_tokens", "output_tokens") if responses else ("prompt_tokens", "completion_tokens")
    uncached, cached = _prompt_split(u, prompt_key)
    output, reasoning = u.int(output_key), u.int(f"{output_key}_details", "reasoning_tokens")
    if reasoning > output:
        raise u.error(f"reasoning_tokens ({reasoning}) exceed {output_key} ({output})",
                      f"{output_key}_details.reasoning_tokens")
    return TokenUsage(input_tokens=uncached, cached_read_tokens=cached, output_tokens=output,
                      reasoning_tokens=reasoning)


def _prompt_split(u: _Reader, prompt_key: str) -> tuple[int, int]:
    """(full-price, cached) prompt tokens where the prompt count includes the cached ones."""
    prompt, cached = u.int(prompt_key), u.int(f"{prompt_key}_details", "cached_tokens")
    if cached > prompt:
        raise u.error(f"cached_tokens ({cached}) exceed {prompt_key} ({prompt})", f"{prompt_key}_details.cached_tokens")
    return prompt - cached, cached


def _anthropic(u: _Reader) -> TokenUsage:
    nested = isinstance(u.usage.get("anthropic"), Mapping)
    if not nested and u.has("prompt_tokens"):
        return _openai(u)  # Anthropic's OpenAI-compatible endpoint
    raw = _Reader(u.kind, u.usage["anthropic"]) if nested else u
    writes = raw.int("cache_creation_input_tokens")
    w5m = raw.int("cache_creation", "ephemeral_5m_input_tokens")
    w1h = raw.int("cache_creation", "ephemeral_1h_input_tokens")
    w5m += max(writes - w5m - w1h, 0)  # no split (or a partial one): the rest was written with the default 5m TTL
    output = raw.int("output_tokens") if raw.has("output_tokens") else u.int("completion_tokens")
    return TokenUsage(input_tokens=raw.int("input_tokens"), cached_read_tokens=raw.int("cache_read_input_tokens"),
                      cache_write_5m_tokens=w5m, cache_write_1h_tokens=w1h, output_tokens=output)


def _gemini(u: _Reader) -> TokenUsage:
    if not u.has("promptTokenCount"):
        return _gemini_openai_shape(u)
    prompt, cached = u.int("promptTokenCount"), u.int("cachedContentTokenCount")
    if cached > prompt:
        raise u.error(f"cachedContentTokenCount ({cached}) exceeds promptTokenCount ({prompt})",
                      "cachedContentTokenCount")
    thoughts = u.int("thoughtsTokenCount")
    return TokenUsage(input_tokens=prompt - cached + u.int("toolUsePromptTokenCount"), cached_read_tokens=cached,
                      output_tokens=u.int("candidatesTokenCount") + thoughts, reasoning_tokens=thoughts)


def _gemini_openai_shape(u: _Reader) -> TokenUsage:
    """Gemini through an OpenAI-compatible layer, where thinking tokens may be missing from ``completion_tokens``:
    billed output is the largest of what the counts allow, never less than what the total implies."""
    uncached, cached = _prompt_split(u, "prompt_tokens")
    completion, reasoning = u.int("completion_tokens"), u.int("completion_tokens_details", "reasoning_tokens")
    output = completion + reasoning if reasoning > completion else completion
    output = max(output, u.int("total_tokens") - uncached - cached)
    return TokenUsage(input_tokens=uncached, cached_read_tokens=cached, output_tokens=output,
                      reasoning_tokens=reasoning)


def _deepseek(u: _Reader) -> TokenUsage:
    if not u.has("prompt_cache_hit_tokens") and not u.has("prompt_cache_miss_tokens"):
        return _openai(u)
    hit = u.int("prompt_cache_hit_tokens")
    if u.has("prompt_cache_miss_tokens"):
        miss = u.int("prompt_cache_miss_tokens")
    elif (prompt := u.int("prompt_tokens")) >= hit:
        miss = prompt - hit
    else:
        raise u.error(f"prompt_cache_hit_tokens ({hit}) exceed prompt_tokens ({prompt})", "prompt_cache_hit_tokens")
    output, reasoning = u.int("completion_tokens"), u.int("completion_tokens_details", "reasoning_tokens")
    if reasoning > output:
        raise u.error(f"reasoning_tokens ({reasoning}) exceed completion_tokens ({output})",
                      "completion_tokens_details.reasoning_tokens")
    return TokenUsage(input_tokens=miss, cached_read_tokens=hit, output_tokens=output, reasoning_tokens=reasoning)


_PARSERS: dict[str, Callable[[_Reader], TokenUsage]] = {
    "anthropic": _anthropic, "gemini": _gemini, "google": _gemini, "deepseek": _deepseek,
}
