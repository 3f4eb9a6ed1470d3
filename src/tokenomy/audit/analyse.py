"""The one-pass accumulator: every record is priced, bucketed (model, UTC day, UTC clock hour, UTC hour of day, and
the busiest 60 seconds for the peak rate), checked for an exact repeat and a repeated prefix, and costed
under each strategy; only totals, those buckets and two bounded key maps are kept. A record no price covers is
counted (requests and tokens) as unpriced, never silently as $0.

Logs are assumed to be in time order (a repeat is a request whose cache key was seen earlier within the TTL).
Key maps are pruned of entries older than their TTL once they hold ``PRUNE_AT`` keys.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenomy.audit.paraphrase import ParaphraseSample, SampleItem
from tokenomy.audit.records import LogRecord
from tokenomy.audit.routing import RouterTargets
from tokenomy.audit.strategies import (
    STRATEGIES,
    Assumptions,
    RequestCase,
    batch_weight,
    routable,
    savings,
)
from tokenomy.cache.key import request_key
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.pricing.cost import TokenUsage, cost_usd
from tokenomy.pricing.price import Price
from tokenomy.promptcache.prefix import prefix_hash
from tokenomy.tokens.counter import TokenCounter
from tokenomy.wire.prompt import prompt_text, sole_prompt

PRUNE_AT = 200_000
MIN_WINDOW_S = 60.0  # a log shorter than a minute is scaled as one minute
_REPLY_PRIMING = 3  # the counter adds these to every prompt; a prefix alone does not carry them


@dataclass(slots=True)
class Totals:
    requests: int = 0
    cost_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Audit:
    catalogue: Catalogue
    assumptions: Assumptions
    router: RouterTargets | None = None
    paraphrases: ParaphraseSample | None = None
    counter: TokenCounter = field(default_factory=TokenCounter)
    total: Totals = field(default_factory=Totals)
    by_model: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_day: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_clock_hour: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))  # "YYYY-MM-DDTHH:00Z"
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)  # requests by UTC hour of day
    timed: int = 0  # requests with a timestamp
    peak_per_minute: int = 0  # the most requests in any 60 s (sliding; exact for a log in time order)
    peak_ends: float | None = None  # when that busiest minute ended
    _last_minute: deque[float] = field(default_factory=deque)
    usage_source: Counter[str] = field(default_factory=Counter)
    unpriced: Counter[str] = field(default_factory=Counter)  # requests per model no price covers
    unpriced_tokens: int = 0
    with_body: int = 0
    repeats: int = 0
    prefix_hits: int = 0
    prefix_hit_tokens: int = 0
    routable: int = 0
    batch_weight: float = 0.0
    alone: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(STRATEGIES, Decimal(0)))
    combined: Decimal = Decimal(0)
    fresh_cost_usd: Decimal = Decimal(0)  # requests with a prompt that are not exact repeats
    first_ts: float | None = None
    last_ts: float | None = None
    _keys: dict[str, float] = field(default_factory=dict)
    _prefixes: dict[str, tuple[float, int]] = field(default_factory=dict)

    def add(self, rec: LogRecord) -> None:
        at = datetime.fromtimestamp(rec.timestamp, UTC) if rec.timestamp is not None else None
        price = self.catalogue.find(rec.model, at or datetime.now(UTC))
        usage = self._usage(rec)
        cost = rec.cost_usd
        if cost is None:
            cost = cost_usd(price, usage, batch=rec.batch) if price else Decimal(0)
        if price is None and rec.cost_usd is None:
            self.unpriced[rec.model] += 1
            self.unpriced_tokens += usage.prompt_tokens + usage.output_tokens
        self._bucket(rec, at, usage, cost)
        if price is None:
            return
        ts = rec.timestamp or 0.0
        repeat, (hit_tokens, digest) = self._repeat(rec, ts), self._prefix(rec, ts, usage)
        small = self._small(rec, price, usage, at)
        w = batch_weight(rec.stream, rec.latency_tolerant, rec.batch, self.assumptions.batchable_share)
        self.batch_weight += w
        alone, combined = savings(RequestCase(price, usage, cost, rec.batch, repeat, small, hit_tokens, w))
        for name, usd in alone.items():
            self.alone[name] += usd
        self.combined += combined
        if rec.body is not None and not repeat:
            self.fresh_cost_usd += cost
            text = sole_prompt(rec.body)  # what the semantic cache would look up
            if self.paraphrases is not None and text:
                self.paraphrases.offer(SampleItem(ts, f"{rec.model}:{digest}", text, cost, cost - combined))

    def _usage(self, rec: LogRecord) -> TokenUsage:
        if rec.usage is not None:
            self.usage_source["reported"] += 1
            return rec.usage
        body = rec.body or {}
        raw = body.get("messages")
        messages = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        prompt = self.counter.count_messages(messages, rec.model, tools)
        if rec.output_text is None:
            self.usage_source["counted, output unknown"] += 1
            return TokenUsage(input_tokens=prompt)
        self.usage_source["counted"] += 1
        return TokenUsage(input_tokens=prompt, output_tokens=self.counter.count_text(rec.output_text, rec.model))

    def _bucket(self, rec: LogRecord, at: datetime | None, usage: TokenUsage, cost: Decimal) -> None:
        day = at.date().isoformat() if at else "unknown"
        hour = at.strftime("%Y-%m-%dT%H:00Z") if at else "unknown"
        for t in (self.total, self.by_model[rec.model], self.by_day[day], self.by_clock_hour[hour]):
            t.requests += 1
            t.cost_usd += cost
            t.input_tokens += usage.prompt_tokens
            t.output_tokens += usage.output_tokens
        if at is not None and rec.timestamp is not None:
            self.by_hour[at.hour] += 1
            self._count_rate(rec.timestamp)
            self.first_ts = rec.timestamp if self.first_ts is None else min(self.first_ts, rec.timestamp)
            self.last_ts = rec.timestamp if self.last_ts is None else max(self.last_ts, rec.timestamp)

    def _count_rate(self, ts: float) -> None:
        self.timed += 1
        recent = self._last_minute
        recent.append(ts)
        while recent and ts - recent[0] >= 60:
            recent.popleft()
        if len(recent) > self.peak_per_minute:
            self.peak_per_minute, self.peak_ends = len(recent), ts

    def _repeat(self, rec: LogRecord, ts: float) -> bool:
        if rec.body is None:
            return False
        self.with_body += 1
        key = request_key(rec.body, "audit")
        seen = self._keys.get(key)
        self._keys[key] = ts
        if len(self._keys) > PRUNE_AT:
            self._keys = {k: t for k, t in self._keys.items() if ts - t <= self.assumptions.exact_ttl_s}
        if seen is not None and ts - seen <= self.assumptions.exact_ttl_s:
            self.repeats += 1
            return True
        return False

    def _prefix(self, rec: LogRecord, ts: float, usage: TokenUsage) -> tuple[int, str]:
        """(prompt tokens in a prefix seen within the prefix TTL and not already billed as cache reads, the prefix
        hash)."""
        if rec.body is None:
            return 0, ""
        digest = prefix_hash(rec.body)
        seen = self._prefixes.get(digest)
        tokens = seen[1] if seen else self._prefix_tokens(rec.body, rec.model)
        self._prefixes[digest] = (ts, tokens)
        if len(self._prefixes) > PRUNE_AT:
            self._prefixes = {k: v for k, v in self._prefixes.items() if ts - v[0] <= self.assumptions.prefix_ttl_s}
        if seen is None or ts - seen[0] > self.assumptions.prefix_ttl_s or tokens < self.assumptions.prefix_min_tokens:
            return 0, digest
        hit = max(0, min(tokens - usage.cached_read_tokens, usage.input_tokens))
        self.prefix_hits += 1 if hit else 0
        self.prefix_hit_tokens += hit
        return hit, digest

    def _prefix_tokens(self, body: Any, model: str) -> int:
        messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages))
        if last_user == 0 and not body.get("tools"):
            return 0
        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        return self.counter.count_messages(messages[:last_user], model, tools) - _REPLY_PRIMING

    def _small(self, rec: LogRecord, price: Price, usage: TokenUsage, at: datetime | None) -> Price | None:
        """The routing target for this request, when it qualifies and is cheaper for this usage."""
        when = at or datetime.now(UTC)
        if rec.body is None:
            return None
        if self.router is not None:
            text = prompt_text(rec.body)  # what the router reads when it serves
            small = self.router.price(self.catalogue, price, text, when) if text else None
        elif self.assumptions.small_model is None or not routable(rec.body):
            return None
        else:
            small = self.catalogue.find(self.assumptions.small_model, when)
        if small is None or small.model == price.model:
            return None
        if cost_usd(small, usage, batch=rec.batch) >= cost_usd(price, usage, batch=rec.batch):
            return None
        self.routable += 1
        return small

    @property
    def span_s(self) -> float | None:
        """Seconds from the first to the last timestamp; None when the log has no timestamps."""
        if self.first_ts is None or self.last_ts is None:
            return None
        return self.last_ts - self.first_ts

    @property
    def window_s(self) -> float:
        """The time the log covers, for scaling to a day or a month: its span (at least a minute), or one day when
        it has no timestamps (an assumption the report states)."""
        span = self.span_s
        return 86_400.0 if span is None else max(span, MIN_WINDOW_S)

    @property
    def days(self) -> float:
        return self.window_s / 86_400
