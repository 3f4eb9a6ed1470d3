"""Requests and tokens per minute, per key, per team and per deployment, on the ``limits`` library's sliding-window
counter: one atomic Lua call per limit in Redis (shared by every replica), or in process memory when the gateway
has no Redis. What it costs per request is measured in ``bench/ratelimit_overhead.py`` (docs/control.md).

Tokens are charged at admission: the request's counted prompt plus its ``max_tokens`` (OpenAI charges its own
limits the same way), so concurrent requests cannot slip past a limit together. Output beyond what was charged (a
request without ``max_tokens``) is charged after the call, against the next requests.

The counter weighs the previous minute's count by the share of it still inside the sliding minute. The library
admits a hit when ``floor(weighted) + cost`` fits, which just after a minute boundary lets a small limit through
again (``rpm: 1`` admitted a second request 0.5 s after the first when a boundary fell between them); each hit is
therefore checked first against the unrounded weighted count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tokenomy.errors import RateLimitError, StoreUnavailableError

Kind = Literal["requests", "tokens"]
_UNLIMITED = 2**62  # a charge that must land whatever the window holds (output tokens seen after the call)


class RateLimitStoreError(StoreUnavailableError):
    """The shared rate-limit counters (Redis) cannot be reached."""

    code = "rate_limit_store_unavailable"


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # key:<id>, team:<name>, deployment:<name>
    kind: Kind
    per_minute: int


@dataclass(frozen=True, slots=True)
class Window:
    """A limit's two minutes as the storage keeps them: the previous minute's count and how much of it is still
    inside the sliding minute (``previous_ttl`` seconds of ``expiry``), and the current minute's count (its key
    lives ``current_ttl`` seconds: the rest of this minute plus one)."""

    previous: int
    previous_ttl: float
    current: int
    current_ttl: float
    expiry: int

    @property
    def count(self) -> float:
        """The sliding minute's count, unrounded."""
        return self.previous * self.previous_ttl / self.expiry + self.current

    def reset_s(self) -> float:
        """Seconds until the count next drops, as the library reports its reset time: the sooner of the previous
        minute's next request sliding out and the end of the current minute (0 with nothing counted)."""
        soonest = math.inf
        if self.previous:
            soonest = self.previous_ttl % (self.expiry / self.previous)
        if self.current:
            soonest = min(soonest, self.current_ttl % self.expiry)
        return 0.0 if soonest == math.inf else soonest

    def wait_s(self, room: int) -> float:
        """Seconds until the count is at most ``room`` (the previous minute's weight decays linearly; a current
        minute over ``room`` first has to become the previous one), at most one minute: by then every request the
        count holds has left a true sliding minute (the counter's even spread may still count some; a retry then
        is told again)."""
        if self.current <= room:
            if self.previous <= 0:
                return 0.0
            wait = self.previous_ttl - (room - self.current) * self.expiry / self.previous
        else:
            wait = max(0.0, self.current_ttl - self.expiry) + self.expiry * (1 - room / self.current)
        return min(float(self.expiry), max(0.0, wait))


class RateLimiter:
    def __init__(self, redis_url: str | None, prefix: str) -> None:
        from limits.aio.strategies import SlidingWindowCounterRateLimiter
        from limits.storage import storage_from_string

        storage: Any = storage_from_string(f"async+{redis_url}", implementation="redispy", key_prefix=f"{prefix}rl",
                                           socket_timeout=1, socket_connect_timeout=1) \
            if redis_url else storage_from_string("async+memory://")
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[int, Any] = {}

    def _item(self, per_minute: int) -> Any:
        item = self._items.get(per_minute)
        if item is None:
            from limits import RateLimitItemPerMinute

            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def hit(self, limit: Limit, cost: int) -> bool:
        return bool(await self._limiter.hit(self._item(limit.per_minute), limit.scope, limit.kind, cost=cost))

    async def retry_after_s(self, limit: Limit) -> float:
        stats = await self._limiter.get_window_stats(self._item(limit.per_minute), limit.scope, limit.kind)
        return max(0.0, float(stats.reset_time) - time.time())

    async def remaining(self, limit: Limit) -> tuple[int, float]:
        """What the limit's window has left, and the seconds until it resets; ``RateLimitStoreError`` when Redis
        cannot be read. One read of the window: what is left is counted from the unrounded weighted count, as
        :meth:`admit` checks it (the library's own figure rounds the count down, and a provider batch admitted on
        it took a second line of ``rpm: 1`` just past a minute boundary)."""
        from redis.exceptions import RedisError

        try:
            window = await self._window(limit)
        except RedisError as exc:
            raise RateLimitStoreError(f"rate limits (redis) unavailable: {exc}") from exc
        return max(0, math.floor(limit.per_minute - window.count + 1e-9)), window.reset_s()

    async def charge(self, limit: Limit, cost: int) -> None:
        """Count ``cost`` whatever the window already holds (tokens learned after the call)."""
        from redis.exceptions import RedisError

        if cost > 0:
            item = self._item(limit.per_minute)
            try:
                await self._storage.acquire_sliding_window_entry(item.key_for(limit.scope, limit.kind), _UNLIMITED,
                                                                 item.get_expiry(), cost)
            except RedisError as exc:
                raise RateLimitStoreError(f"rate limits (redis) unavailable: {exc}") from exc

    async def admit(self, limits: Sequence[Limit], tokens: int) -> dict[str, str]:
        """Charge one request and ``tokens`` against every limit, or raise ``RateLimitError`` (429, with
        ``retry-after`` and the ``x-ratelimit-*`` headers). Returns the headers for a served response. An
        unreachable Redis is a ``RateLimitStoreError``."""
        from redis.exceptions import RedisError

        try:
            return await self._admit(limits, tokens)
        except RedisError as exc:
            raise RateLimitStoreError(f"rate limits (redis) unavailable: {exc}") from exc

    async def _admit(self, limits: Sequence[Limit], tokens: int) -> dict[str, str]:
        costs = [1 if limit.kind == "requests" else tokens for limit in limits]
        for limit, cost in zip(limits, costs, strict=True):
            if limit.kind == "tokens" and cost > limit.per_minute:
                raise RateLimitError(f"{_who(limit)}: this request needs {cost} tokens, more than its limit of "
                                     f"{limit.per_minute} tokens per minute", code="tokens_exceed_limit")
        windows = await asyncio.gather(*(self._window(limit) for limit in limits))
        for limit, cost, window in zip(limits, costs, windows, strict=True):
            if window.count + cost > limit.per_minute:  # the library rounds the count down; we do not
                await self._refuse(limits, limit, window.wait_s(limit.per_minute - cost))
        # every limit at once (one round trip to Redis, not one per limit); each hit is atomic on its own
        taken = await asyncio.gather(*(self.hit(limit, cost) for limit, cost in zip(limits, costs, strict=True)))
        for limit, ok in zip(limits, taken, strict=True):
            if not ok:
                await self._refuse(limits, limit)
        return await self.headers(limits)

    async def _window(self, limit: Limit) -> Window:
        item = self._item(limit.per_minute)
        previous, previous_ttl, current, current_ttl = await self._storage.get_sliding_window(
            item.key_for(limit.scope, limit.kind), item.get_expiry())
        return Window(int(previous), float(previous_ttl), int(current), float(current_ttl), item.get_expiry())

    async def _refuse(self, limits: Sequence[Limit], limit: Limit, wait_s: float | None = None) -> None:
        wait_s = await self.retry_after_s(limit) if wait_s is None else wait_s
        headers = await self.headers(limits)
        raise RateLimitError(f"{_who(limit)} is over its limit of {limit.per_minute} {limit.kind} per "
                             f"minute; retry in {math.ceil(wait_s)} s", retry_after_s=max(wait_s, 0.001),
                             headers=headers, code=f"{limit.kind}_rate_limited")

    async def headers(self, limits: Sequence[Limit]) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the first (narrowest) limit of each kind."""
        kinds = ("requests", "tokens")
        shown = [next(x for x in limits if x.kind == k) for k in kinds if any(x.kind == k for x in limits)]
        figures = await asyncio.gather(*(self.remaining(x) for x in shown))
        headers: dict[str, str] = {}
        for limit, (left, reset_s) in zip(shown, figures, strict=True):
            headers[f"x-ratelimit-limit-{limit.kind}"] = str(limit.per_minute)
            headers[f"x-ratelimit-remaining-{limit.kind}"] = str(left)
            headers[f"x-ratelimit-reset-{limit.kind}"] = duration(reset_s)
        return headers

    async def aclose(self) -> None:
        close = getattr(getattr(self._storage, "storage", None), "aclose", None)
        if close is not None:
            await close()


def _who(limit: Limit) -> str:
    kind, _, name = limit.scope.partition(":")
    return f"{kind} {name!r}"


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
