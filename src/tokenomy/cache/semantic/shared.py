"""Semantic-cache entries shared by every replica: a Redis stream is the log of entries (added, removed), and each
replica replays it into its own in-process ANN index (the same ``SemanticCache`` as one process uses).

Why a log and local indexes, not a vector index in the store: the Redis we run on (7, no modules) has no vector
search, and a lookup must stay an in-process call (it is on every eligible request's path); an index rebuilt from
the log costs memory per replica, which is bounded by ``max_entries`` (the stream is trimmed to about that many).
Answers themselves are not in the stream: an entry points at its exact-cache key, and the exact cache is shared
(Redis) too. Propagation delay and catch-up speed are measured in bench/semantic_shared.py (docs/scale.md).

Failures never reach a request: publishing to a Redis that is down is skipped (one log line per outage), and the
reader reconnects and resumes from the last entry it saw. What a replica learns online under the calibrated policy
(its threshold) stays its own; the verified policy's evidence (labels) is shared through a second stream
(``<key>:labels``, trimmed to about :data:`LABELS_KEPT`), which every replica replays in the same order, skipping
the labels it made itself (it counted them when it made them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evidence import Label
from tokenomy.outage import OutageLog

log = logging.getLogger("tokenomy.cache.semantic")

PAGE = 1000
LABELS_KEPT = 50_000


class SharedEntries:
    def __init__(self, url: str, key: str, cache: SemanticCache, *, max_entries: int, block_ms: int = 1000) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=max(2.0, block_ms / 1000 + 1), socket_connect_timeout=1)
        self.key = key
        self.labels_key = f"{key}:labels"
        self._origin = uuid.uuid4().hex.encode()
        self._last_label_id = "0-0"
        self._cache = cache
        self._max_entries = max_entries
        self._block_ms = block_ms
        self._last_id = "0-0"
        self._task: asyncio.Task[None] | None = None
        self.outage = OutageLog("shared semantic cache (redis)", log)
        self.applied = 0

    async def start(self) -> None:
        """Load what the stream holds now (a replica joining sees every entry), then follow it."""
        try:
            await self._catch_up()
        except Exception as exc:  # Redis down at start: serve with an empty index, follow once it is back
            self.outage.failed(" ".join(str(exc).split()), "starting with no shared entries")
        self._task = asyncio.create_task(self._follow(), name="semantic-entries")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def publish_add(self, context: str, text: str, vector: Any, answer_key: str) -> None:
        import numpy as np

        fields = {"op": "add", "context": context, "text": text, "key": answer_key,
                  "vector": np.asarray(vector, dtype="<f4").tobytes()}
        await self._publish(fields)

    async def publish_remove(self, context: str, text: str) -> None:
        await self._publish({"op": "remove", "context": context, "text": text})

    async def publish_label(self, label: Label) -> None:
        await self._publish({"score": repr(label.score), "wrong": int(label.wrong), "exact": int(label.exact),
                             "kind": label.kind, "origin": self._origin}, self.labels_key, LABELS_KEPT)

    async def _publish(self, fields: dict[str, Any], key: str | None = None, maxlen: int | None = None) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.xadd(key or self.key, fields, maxlen=maxlen or self._max_entries, approximate=True)
        except RedisError as exc:
            self.outage.failed(" ".join(str(exc).split()), "entries stay on this replica")
            return
        self.outage.recovered()

    async def _catch_up(self) -> None:
        while True:
            rows = await self._redis.xrange(self.key, min=f"({self._last_id}", max="+", count=PAGE)
            if not rows:
                break
            self._apply(rows)
        while True:
            rows = await self._redis.xrange(self.labels_key, min=f"({self._last_label_id}", max="+", count=PAGE)
            if not rows:
                return
            self._apply_labels(rows)

    async def _follow(self) -> None:
        from redis.exceptions import RedisError

        delay = 0.5
        while True:
            try:
                found = await self._redis.xread({self.key: self._last_id, self.labels_key: self._last_label_id},
                                                count=PAGE, block=self._block_ms)
                for stream, rows in found or ():
                    name = stream.decode() if isinstance(stream, bytes) else str(stream)
                    if name == self.labels_key:
                        self._apply_labels(rows)
                    else:
                        self._apply(rows)
                self.outage.recovered()
                delay = 0.5
            except RedisError as exc:
                self.outage.failed(" ".join(str(exc).split()), "entries from other replicas wait")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _apply(self, rows: list[tuple[Any, dict[bytes, bytes]]]) -> None:
        import numpy as np

        for entry_id, fields in rows:
            self._last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            op = fields.get(b"op")
            context = fields.get(b"context", b"").decode()
            text = fields.get(b"text", b"").decode()
            if op == b"add":
                vector = np.frombuffer(fields[b"vector"], dtype="<f4")
                self._cache.insert(context, text, vector, fields[b"key"].decode())
            elif op == b"remove":
                self._cache.remove_text(context, text)
            self.applied += 1

    def _apply_labels(self, rows: list[tuple[Any, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in rows:
            self._last_label_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if fields.get(b"origin") == self._origin:
                continue  # made here, counted then
            try:
                label = Label(float(fields[b"score"]), fields[b"wrong"] == b"1", fields.get(b"exact", b"1") == b"1",
                              int(fields.get(b"kind", b"0")))
            except (KeyError, ValueError):
                continue
            self._cache.observe(label)
