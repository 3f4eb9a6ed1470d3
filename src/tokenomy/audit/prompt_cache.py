"""Replay a chat workload through a provider's prompt-caching rules, with and without tokenomy's shaping, and count
what each would bill (``tokenomy cache simulate``).

Rules modelled:
- **Anthropic**: only explicit ``cache_control`` breakpoints cache. A request reads the longest prefix still cached,
  looked up at each of its breakpoints and up to 20 blocks before it (a read refreshes the entry), writes up to its
  last breakpoint beyond that (billed as cache writes, 5 m or 1 h), and pays input for the rest. Unshaped = the
  client's own breakpoints (none in a plain OpenAI-style log); shaped = tokenomy's ``BreakpointPlanner``.
- **OpenAI**: automatic prefix caching for prompts of at least 1,024 tokens, in 128-token steps, for prefixes seen
  in the last 10 minutes. tokenomy's ``prompt_cache_key`` only changes which cache machine a request reaches, which
  this single-cache model cannot show, so shaped and unshaped are the same here (an upper bound for unshaped).
Prefixes are matched at message granularity (a later turn's prompt extends the earlier turn's prompt), and tokens
are counted offline (an estimate for Claude).

"Cacheable prefix tokens" are the tokens before each request's last user turn when they reach the model's minimum
cacheable length: what a perfect cache could serve at the cache-read price.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.cost import TokenUsage, cost_usd
from tokenomy.promptcache.breakpoints import BreakpointPlanner, TextCounter, minimum_cacheable
from tokenomy.providers.anthropic_translate import to_messages_request

OPENAI_MIN, OPENAI_STEP, OPENAI_TTL_S = 1024, 128, 600.0
LOOKBACK_BLOCKS = 20


@dataclass
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    cacheable_prefix_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    uncached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0  # no price of the model was in force on the request's date: not in cost_usd

    def report(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = format(self.cost_usd.normalize(), "f")
        out["cacheable_read_share"] = round(self.cache_read_tokens / self.cacheable_prefix_tokens, 4) \
            if self.cacheable_prefix_tokens else 0.0
        return out


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Simulator:
    def __init__(self, provider: str, model: str, counter: TextCounter, catalogue: Catalogue) -> None:
        self.provider, self.model, self._counter, self._catalogue = provider, model, counter, catalogue

    def run(self, workload: Iterable[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
        requests = sorted(workload, key=lambda item: item[0])
        unshaped = self._replay(requests, shaped=False)
        shaped = self._replay(requests, shaped=True)
        return {"provider": self.provider, "model": self.model, "unshaped": unshaped.report(),
                "shaped": shaped.report(), "saving_usd": format((unshaped.cost_usd - shaped.cost_usd).normalize(), "f")}

    def _replay(self, requests: list[tuple[float, dict[str, Any]]], *, shaped: bool) -> Totals:
        totals = Totals()
        clock = _Clock()
        planner = BreakpointPlanner(self._counter, clock=clock)
        cache: dict[str, float] = {}
        for at, body in requests:
            clock.now = at
            body = {**body, "model": self.model}
            if self.provider == "anthropic":
                usage = self._anthropic(at, body, cache, planner if shaped else None)
            else:
                usage = self._openai(at, body, cache)
            self._add(totals, at, usage, self._cacheable(body))
        return totals

    def _count(self, text: str) -> int:
        return self._counter.count_text(text, self.model) if text else 0

    def _cacheable(self, body: dict[str, Any]) -> int:
        messages = list(body.get("messages") or ())
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
        prefix = json.dumps(body.get("tools")) if body.get("tools") else ""
        size = self._count(prefix) + sum(self._count(_text(m.get("content"))) for m in messages[:last_user])
        floor = minimum_cacheable(self.model) if self.provider == "anthropic" else OPENAI_MIN
        return size if size >= floor else 0

    def _anthropic(self, at: float, body: dict[str, Any], cache: dict[str, float],
                   planner: BreakpointPlanner | None) -> TokenUsage:
        request = to_messages_request(body)
        if planner is not None:
            request = planner.apply(request)
        blocks = [part for _, part in _segments(request)]
        cumulative: list[int] = []  # tokens up to and including each block
        keys: list[str] = []  # prefix hash up to each block
        total, seen = 0, []
        for part in blocks:
            total += self._count(part["text"])
            seen.append(part["key"])
            cumulative.append(total)
            keys.append(_hash(seen))
        marks = [(i, 3600.0 if b["cache_control"].get("ttl") == "1h" else 300.0)
                 for i, b in enumerate(blocks) if b.get("cache_control")]
        hit = self._lookup(at, [i for i, _ in marks], keys, cache)
        read = cumulative[hit] if hit is not None else 0
        if hit is not None:
            cache[keys[hit]] = max(cache[keys[hit]], at + 300.0)  # a read refreshes the entry
        w5m = w1h = 0
        longest = max((m for m in marks if cumulative[m[0]] > read), default=None)
        for i, ttl in marks:
            if cumulative[i] > read:
                cache[keys[i]] = at + ttl
        if longest is not None:
            written = cumulative[longest[0]] - read
            w1h, w5m = (written, 0) if longest[1] > 300 else (0, written)
        return TokenUsage(input_tokens=total - read - w5m - w1h, cached_read_tokens=read,
                          cache_write_5m_tokens=w5m, cache_write_1h_tokens=w1h)

    @staticmethod
    def _lookup(at: float, breakpoints: list[int], keys: list[str], cache: dict[str, float]) -> int | None:
        """The longest cached prefix, checked at each breakpoint and up to 20 blocks before it (Anthropic's
        automatic look-back), latest breakpoint first."""
        for point in reversed(breakpoints):
            for j in range(point, max(-1, point - LOOKBACK_BLOCKS), -1):
                if cache.get(keys[j], -1.0) >= at:
                    return j
        return None

    def _openai(self, at: float, body: dict[str, Any], cache: dict[str, float]) -> TokenUsage:
        messages = list(body.get("messages") or ())
        head = json.dumps(body.get("tools")) if body.get("tools") else ""
        total = self._count(head)
        cumulative = []
        for i, message in enumerate(messages):
            total += self._count(_text(message.get("content"))) + 4
            cumulative.append((total, _hash([head, messages[: i + 1]])))
        matched = max((size for size, key in cumulative if cache.get(key, -1.0) >= at), default=0)
        read = (matched // OPENAI_STEP) * OPENAI_STEP if matched >= OPENAI_MIN and total >= OPENAI_MIN else 0
        for _, key in cumulative:
            cache[key] = at + OPENAI_TTL_S
        return TokenUsage(input_tokens=total - read, cached_read_tokens=read)

    def _add(self, totals: Totals, at: float, usage: TokenUsage, cacheable: int) -> None:
        totals.requests += 1
        totals.prompt_tokens += usage.prompt_tokens
        totals.cacheable_prefix_tokens += min(cacheable, usage.prompt_tokens)
        totals.cache_read_tokens += usage.cached_read_tokens
        totals.cache_write_5m_tokens += usage.cache_write_5m_tokens
        totals.cache_write_1h_tokens += usage.cache_write_1h_tokens
        totals.uncached_input_tokens += usage.input_tokens
        price = self._catalogue.find(self.model, datetime.fromtimestamp(at, tz=UTC))
        if price is not None:
            totals.cost_usd += cost_usd(price, usage)
        else:
            totals.unpriced_requests += 1


def _segments(request: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """The request's prompt in order (tools, system blocks, message blocks), each with its cache_control."""
    for tool in request.get("tools") or ():
        yield "tools", {"text": json.dumps({k: v for k, v in tool.items() if k != "cache_control"}),
                        "key": tool.get("name"), "cache_control": tool.get("cache_control")}
    system = request.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system or ())
    for block in blocks:
        yield "system", {"text": _text([block]), "key": _text([block]), "cache_control": block.get("cache_control")}
    for i, message in enumerate(request.get("messages") or ()):
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or ())
        for part in parts:
            key = [i, message.get("role"), _text([part])]
            yield "messages", {"text": _text([part]) or json.dumps(part), "key": key,
                               "cache_control": part.get("cache_control")}
