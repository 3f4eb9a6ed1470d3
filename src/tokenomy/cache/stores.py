"""Where cached responses live, behind one seam: in-process memory, SQLite (persistent; the embedded default) and
Redis (shared across replicas). Values are opaque bytes; every store honours a TTL, and the local ones a byte bound
with least-recently-used eviction (Redis is bounded by its own ``maxmemory`` policy)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from tokenomy.errors import TokenomyError


class CacheStoreError(TokenomyError):
    code = "cache_store_error"


class ResponseStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...


class MemoryStore:
    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.time():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max:
            return
        self._drop(key)
        self._items[key] = (time.time() + ttl_s, value)
        self._bytes += len(value)
        while self._bytes > self._max:
            self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1])


class SQLiteStore:
    """A table in its own SQLite file; reads and writes run on a worker thread."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path, self._max = path, max_bytes
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                             "size INTEGER NOT NULL, expires REAL NOT NULL, used REAL NOT NULL)")
                conn.execute("CREATE INDEX IF NOT EXISTS responses_used ON responses (used)")
            except (OSError, sqlite3.Error) as exc:
                raise CacheStoreError(f"cannot open the response cache at {self._path}: {exc}") from exc
            self._conn = conn
        return self._conn

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._get, key)
        except sqlite3.Error as exc:
            raise CacheStoreError(f"response cache read failed: {exc}") from exc

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await asyncio.to_thread(self._put, key, value, ttl_s)
        except sqlite3.Error as exc:
            raise CacheStoreError(f"response cache write failed: {exc}") from exc

    def _get(self, key: str) -> bytes | None:
        now = time.time()
        with self._lock:
            db = self._db()
            row = db.execute("SELECT value, expires FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[1] < now:
                db.execute("DELETE FROM responses WHERE key = ?", (key,))
                return None
            db.execute("UPDATE responses SET used = ? WHERE key = ?", (now, key))
            value: bytes = row[0]
            return value

    def _put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max:
            return
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                           (key, value, len(value), now + ttl_s, now))
                total = db.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()[0]
                if total > self._max:
                    db.execute("DELETE FROM responses WHERE expires < ?", (now,))
                    total = db.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()[0]
                    self._evict(db, total)
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _evict(self, db: sqlite3.Connection, total: int) -> None:
        for key, size in db.execute("SELECT key, size FROM responses ORDER BY used").fetchall():
            if total <= self._max:
                break
            db.execute("DELETE FROM responses WHERE key = ?", (key,))
            total -= size


class RedisStore:
    """Shared across replicas: plain SET with an expiry under a key prefix."""

    def __init__(self, url: str, prefix: str = "tokenomy:exact:") -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        from redis.exceptions import RedisError

        try:
            value = await self._redis.get(self._prefix + key)
        except RedisError as exc:
            raise CacheStoreError(f"redis cache read failed: {exc}") from exc
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except RedisError as exc:
            raise CacheStoreError(f"redis cache write failed: {exc}") from exc

    async def aclose(self) -> None:
        await self._redis.aclose()
