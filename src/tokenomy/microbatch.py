"""Online micro-batching: concurrent callers' items are gathered and run as one call.

``MicroBatcher(run, max_batch=32, max_wait_ms=10)``: ``await batcher.submit_many(items)`` puts items in a queue and
waits for their results. A batch starts when ``max_batch`` items are waiting, or when the oldest has waited
``max_wait_ms``, and only while fewer than ``max_inflight`` batches are running: items that arrive while the model
is busy gather for the next batch for free, so under load batches fill without waiting and at low load an item
waits at most ``max_wait_ms``. ``run`` takes the items of one batch and returns one result per item, in order; if
it raises, every caller in that batch gets the error. A caller's items may be split across batches (never more
than ``max_batch`` per call); results come back in the caller's order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class BatcherStats:
    batches: int = 0
    items: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size -> how many batches had it

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


class MicroBatcher(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = 32,
                 max_wait_ms: float = 10.0, max_inflight: int = 1) -> None:
        if max_batch < 1 or max_wait_ms < 0 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be >= 1 and max_wait_ms >= 0")
        self._run = run
        self.max_batch, self.max_wait_s, self.max_inflight = max_batch, max_wait_ms / 1000, max_inflight
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None
        self.stats = BatcherStats()

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing running: the batcher may be dropped."""
        return not self._queue and self._inflight == 0

    async def submit(self, item: T) -> R:
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self._queue.extend(zip(items, futures, strict=True))
        self._schedule(loop)
        return list(await asyncio.gather(*futures))

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._inflight < self.max_inflight and (
                len(self._queue) >= self.max_batch or self.max_wait_s == 0):
            self._start(loop)
        if self._queue and self._inflight < self.max_inflight and self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._queue and self._inflight < self.max_inflight:
            self._start(loop)
        self._schedule(loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        self._inflight += 1
        self.stats.record(len(batch))
        loop.create_task(self._execute(batch, loop))

    async def _execute(self, batch: list[tuple[T, asyncio.Future[R]]], loop: asyncio.AbstractEventLoop) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items returned {len(results)} results")
        except BaseException as exc:  # every waiter of this batch sees the failure; none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._inflight -= 1
            self._drain(loop)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """After a batch: what gathered meanwhile runs at once (it has already waited for the model)."""
        if self._queue and self._inflight < self.max_inflight:
            self._start(loop)
        self._schedule(loop)
