"""The non-blocking ledger writer.

``submit`` never blocks the response path and never drops an entry: entries wait in memory and a background task
writes them in batches (one transaction each). When the store fails, the batch is spilled to an append-only file
and the writer retries the store every ``retry_s``, replaying the spill file first. When the in-memory queue is
full, entries go straight to the spill file. ``stop`` flushes everything.

``acknowledged(request_id)`` waits until that entry is durable (in the store, or fsynced in the spill file): a
response that waits for it can no longer be lost with its process. Waiting makes the writer flush at once, so the
entries of concurrent requests share one commit (group commit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.spill import SpillFile
from tokenomy.ledger.store import LedgerStore, LedgerStoreError

log = logging.getLogger("tokenomy.ledger")


class LedgerWriter:
    def __init__(self, store: LedgerStore, spill: SpillFile, *, max_queue: int = 100_000, batch_size: int = 1000,
                 flush_interval_s: float = 0.05, retry_s: float = 5.0, store_down: bool = False) -> None:
        """``store_down``: the store did not answer at start (a degraded start): spill until it does."""
        self._store = store
        self._spill = spill
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retry_s = retry_s
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._store_down_since: float | None = time.monotonic() if store_down else None
        self._last_attempt = time.monotonic() if store_down else 0.0
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self._unacked: set[str] = set()  # request ids queued, not yet durable
        self._acks: dict[str, asyncio.Future[None]] = {}

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def store_down(self) -> bool:
        return self._store_down_since is not None

    @property
    def caught_up(self) -> bool:
        """The store answers and holds every entry (nothing waits in the spill file)."""
        return not self.store_down and not self._spill.pending()

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self._queue), "written": self.written, "spilled": self.spilled,
                "replayed": self.replayed, "store": "down" if self.store_down else "up",
                "caught_up": self.caught_up}

    def submit(self, entry: LedgerEntry) -> None:
        row = entry.as_json()
        if len(self._queue) >= self._max_queue:
            self._spill.append([row])
            self.spilled += 1
            return
        self._queue.append(row)
        self._unacked.add(entry.request.id)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    async def acknowledged(self, request_id: str) -> None:
        """Return once the entry of ``request_id`` is durable (at once if it already is)."""
        if request_id not in self._unacked:
            return
        future = self._acks.get(request_id)
        if future is None:
            future = self._acks[request_id] = asyncio.get_running_loop().create_future()
        self._wake.set()
        await asyncio.shield(future)

    def _durable(self, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            rid = row["request"]["id"]
            self._unacked.discard(rid)
            future = self._acks.pop(rid, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def start(self) -> None:
        if self._spill.pending() and self._store_down_since is None:
            try:
                await self._replay()
            except LedgerStoreError as exc:
                log.error("ledger store failed, spilling to %s until it recovers: %s", self._spill.path, exc.message)
                self._store_down_since = self._last_attempt = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        while self._queue:
            await self._flush_once(force=True)

    async def flush(self) -> None:
        """Write everything queued so far (tests and shutdown)."""
        while self._queue:
            await self._flush_once(force=True)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._queue and (self._store_down_since is not None or self._spill.pending()):
                await self._probe()
            while self._queue:
                await self._flush_once(force=False)
                if self._store_down_since is not None:
                    break

    async def _probe(self) -> None:
        """With nothing queued, replay the spill file: entries spilled while the store was down (tried again every
        ``retry_s``) or while the queue was full."""
        if self._store_down_since is not None and time.monotonic() - self._last_attempt < self._retry_s:
            return
        self._last_attempt = time.monotonic()
        try:
            await asyncio.to_thread(self._store.write, [])  # a store opened late opens now, or raises
            await self._replay()
        except LedgerStoreError as exc:
            if self._store_down_since is None:
                log.error("ledger store failed, spilling to %s until it recovers: %s", self._spill.path, exc.message)
                self._store_down_since = time.monotonic()
            return
        if self._store_down_since is not None:
            log.warning("ledger store is back after %.0f s", time.monotonic() - self._store_down_since)
            self._store_down_since = None

    async def _flush_once(self, *, force: bool) -> None:
        batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        if self._store_down_since is not None and not force and time.monotonic() - self._last_attempt < self._retry_s:
            await asyncio.to_thread(self._spill.append, batch)
            self.spilled += len(batch)
            self._durable(batch)
            return
        self._last_attempt = time.monotonic()
        try:
            if self._store_down_since is not None and self._spill.pending():
                await self._replay()
            await asyncio.to_thread(self._store.write, batch)
        except LedgerStoreError as exc:
            if self._store_down_since is None:
                log.error("ledger store failed, spilling to %s until it recovers: %s", self._spill.path, exc.message)
                self._store_down_since = time.monotonic()
            await asyncio.to_thread(self._spill.append, batch)
            self.spilled += len(batch)
            self._durable(batch)
            return
        self._durable(batch)
        if self._store_down_since is not None:
            log.warning("ledger store is back after %.0f s", time.monotonic() - self._store_down_since)
            self._store_down_since = None
        self.written += len(batch)

    async def _replay(self) -> None:
        count = await asyncio.to_thread(self._spill.replay, self._store)
        self.replayed += count
        if count:
            log.warning("replayed %d spilled ledger entries into the store", count)
