"""A fair queue for one worker: the in-process model runs one request at a time, and the keys waiting for it take
turns (round robin), each key's own requests in order.

On 939b14d requests queued first come, first served: one key's long requests made another key's one-token request
wait for minutes. Here a key waits for at most one request of each other waiting key per turn. The queue is bounded:
``max_waiting`` in all, ``max_per_key`` for one key (requests of no key share one turn and only the overall bound);
a request that does not fit is refused at once with ``UpstreamBusyError``, whose ``retry_after_s`` estimates when the
queue will have room (the mean service time so far times the requests ahead), so a fallback can take it, or the
client is told when to come back (``Retry-After`` on the 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator

from tokenomy.errors import UpstreamBusyError

_SMOOTHING = 0.2  # weight of the latest service time in the running mean
_MAX_RETRY_AFTER_S = 300


class FairQueue:
    def __init__(self, deployment: str, *, max_waiting: int, max_per_key: int) -> None:
        self._deployment = deployment
        self._max_waiting, self._max_per_key = max_waiting, max_per_key
        self._busy = False
        self._waiting: dict[str | None, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str | None] = deque()  # keys with someone waiting, in the order of their next turn
        self._count = 0
        self._service_s = 1.0

    @property
    def depth(self) -> int:
        """Requests waiting for or holding the worker."""
        return self._count + int(self._busy)

    def retry_after_s(self) -> int:
        return min(_MAX_RETRY_AFTER_S, max(1, math.ceil(self._service_s * self.depth)))

    @contextlib.asynccontextmanager
    async def turn(self, key: str | None) -> AsyncIterator[None]:
        """Hold the worker while the block runs; waits for this key's turn first."""
        await self._acquire(key)
        began = time.monotonic()
        try:
            yield
        finally:
            self._service_s += _SMOOTHING * (time.monotonic() - began - self._service_s)
            self._release(key)

    async def _acquire(self, key: str | None) -> None:
        if not self._busy and not self._count:
            self._busy = True
            return
        queue = self._waiting.get(key)
        if self._count >= self._max_waiting or (key is not None and queue and len(queue) >= self._max_per_key):
            whose = "" if self._count >= self._max_waiting else " for this key"
            raise UpstreamBusyError(f"local model queue is full{whose} ({self._count} waiting)",
                                    deployment=self._deployment, retry_after_s=self.retry_after_s())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if queue is None:
            queue = self._waiting[key] = deque()
            self._turns.append(key)
        queue.append(future)
        self._count += 1
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # handed the worker as it was cancelled: pass it on
                self._release(key)
            else:
                self._forget(key, future)
            raise

    def _forget(self, key: str | None, future: asyncio.Future[None]) -> None:
        queue = self._waiting[key]
        queue.remove(future)
        self._count -= 1
        if not queue:
            del self._waiting[key]
            self._turns.remove(key)

    def _release(self, last: str | None) -> None:
        """Hand the worker to the next key in turn (it stays busy), or free it. The key that just had it (``last``)
        goes after every other key waiting."""
        if not self._turns:
            self._busy = False
            return
        if self._turns[0] == last and len(self._turns) > 1:
            self._turns.rotate(-1)
        key = self._turns.popleft()
        queue = self._waiting[key]
        future = queue.popleft()
        self._count -= 1
        if queue:
            self._turns.append(key)
        else:
            del self._waiting[key]
        future.set_result(None)
