"""What one request would cost under each saving strategy: the per-request arithmetic of the audit.

Every figure is ``cost_usd`` over the catalogue's rates at the request's date, so alone and combined savings use
the same prices. Combined savings apply the strategies in sequence to the same request, so nothing is counted twice:
an exact-cache repeat costs nothing (nothing else applies); otherwise the request is routed (when it qualifies),
its repeated prefix is billed at the cached-input rate, and its batchable share at the batch rates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tokenomy.pricing.cost import TokenUsage, cost_usd
from tokenomy.pricing.price import Price
from tokenomy.wire.prompt import prompt_text

STRATEGIES = ("exact_cache", "routing", "prompt_caching", "batch")

# Routing heuristic (no trained router): a short last user message without code or maths markers.
SHORT_PROMPT_CHARS = 600
_HARD = re.compile(r"```|\bdef |\bclass |\bimport |\bfunction\b|[=+*/^]\s*\d|\d\s*[=*/^%]|\$\d|"
                   r"\b(solve|calculate|compute|prove|equation|integral|derivative|algorithm|code|python|sql|sum|average|"
                   r"percent|half|twice|probability|how many|how much|divides?|multipl\w*)\b",
                   re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Assumptions:
    exact_ttl_s: int = 86_400  # exact-cache TTL: a repeat within this window is a hit
    prefix_ttl_s: int = 3_600  # provider prompt cache lifetime assumed (OpenAI keeps prefixes up to 1 h off-peak)
    prefix_min_tokens: int = 1_024  # OpenAI and Anthropic cache prompts from 1,024 tokens
    batchable_share: float = 0.25  # of non-streamed requests without a batch marker, assumed latency-tolerant
    small_model: str | None = None  # routing target: the catalogue's cheapest mid-tier model
    days_per_month: int = 30


def routable(body: Mapping[str, Any] | None) -> bool:
    """The heuristic: the last user message is short (≤ 600 characters), has no code or maths markers and at most
    two numbers. A stated stand-in for a trained router (``--router DIR``)."""
    text = prompt_text(body)
    if text is None or len(text) > SHORT_PROMPT_CHARS:
        return False
    return not _HARD.search(text) and len(_NUMBER.findall(text)) <= 2


def batch_weight(stream: bool, tolerant: bool, already_batch: bool, share: float) -> float:
    """How much of a request may move to batch: all of it when metadata says so, none when it is already batched
    or streamed (a user is waiting), else the assumed share."""
    if already_batch:
        return 0.0
    if tolerant:
        return 1.0
    return 0.0 if stream else share


def cached_prefix(usage: TokenUsage, prefix_hit_tokens: int) -> TokenUsage:
    """``usage`` with ``prefix_hit_tokens`` more of its full-price input billed as cache reads."""
    moved = min(prefix_hit_tokens, usage.input_tokens)
    return replace(usage, input_tokens=usage.input_tokens - moved,
                   cached_read_tokens=usage.cached_read_tokens + moved)


@dataclass(frozen=True, slots=True)
class RequestCase:
    price: Price
    usage: TokenUsage
    cost: Decimal  # what it cost (as logged, or priced)
    batch: bool  # already at batch rates
    repeat: bool
    small: Price | None  # the routing target, when the request qualifies and it is cheaper
    prefix_hit_tokens: int
    batch_weight: float


def savings(case: RequestCase) -> tuple[dict[str, Decimal], Decimal]:
    """(each strategy's saving alone, the combined saving) for one request, in USD."""
    c, u, p = case.cost, case.usage, case.price
    w = Decimal(str(case.batch_weight))
    alone = {s: Decimal(0) for s in STRATEGIES}
    if case.repeat:
        alone["exact_cache"] = c
    if case.small is not None:
        alone["routing"] = max(Decimal(0), c - cost_usd(case.small, u, batch=case.batch))
    cached_u = cached_prefix(u, case.prefix_hit_tokens)
    alone["prompt_caching"] = max(Decimal(0), c - cost_usd(p, cached_u, batch=case.batch))
    if w:
        alone["batch"] = w * max(Decimal(0), c - cost_usd(p, u, batch=True))
    if case.repeat:
        return alone, c
    price = case.small or p
    routed = min(c, cost_usd(price, cached_u, batch=case.batch))
    final = routed - w * max(Decimal(0), routed - cost_usd(price, cached_u, batch=True)) if w else routed
    return alone, c - final
