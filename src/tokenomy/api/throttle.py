"""Login throttling for ``POST /ui/login``: wrong master-key guesses are limited per client address and in total, so
the key cannot be guessed at full speed (on 939b14d it took unlimited guesses).

A token bucket per address (``PER_CLIENT`` guesses at once, one more every ``REFILL_S``) and one for every address
together (``TOTAL`` at once, one more per second). Only wrong guesses spend tokens; while either bucket is empty every
attempt, right or wrong, is refused with 429 and ``Retry-After``. Addresses are kept in a bounded LRU
(``MAX_CLIENTS``), so a flood of addresses costs a fixed amount of memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

PER_CLIENT = 5
REFILL_S = 12.0  # five guesses a minute per address, after the first burst
TOTAL = 60
TOTAL_REFILL_S = 1.0
MAX_CLIENTS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float

    def level(self, now: float, size: int, refill_s: float) -> float:
        self.tokens, self.at = min(float(size), self.tokens + (now - self.at) / refill_s), now
        return self.tokens


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._total = _Bucket(float(TOTAL), clock())

    def wait_s(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        now = self._clock()
        bucket = self._clients.get(client)
        own = bucket.level(now, PER_CLIENT, REFILL_S) if bucket is not None else float(PER_CLIENT)
        total = self._total.level(now, TOTAL, TOTAL_REFILL_S)
        return max((1 - own) * REFILL_S if own < 1 else 0.0, (1 - total) * TOTAL_REFILL_S if total < 1 else 0.0)

    def failed(self, client: str) -> None:
        """A wrong guess from ``client``."""
        now = self._clock()
        bucket = self._clients.pop(client, None) or _Bucket(float(PER_CLIENT), now)
        bucket.level(now, PER_CLIENT, REFILL_S)
        bucket.tokens -= 1
        self._clients[client] = bucket
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        self._total.level(now, TOTAL, TOTAL_REFILL_S)
        self._total.tokens -= 1
