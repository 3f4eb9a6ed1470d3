"""Semantic-cache entries kept across restarts of one embedded gateway: a table in the exact cache's SQLite file
(``cache.db``), written as entries are added and removed, loaded into the in-process index on start.

It fills the same seam as ``SharedEntries`` (``EntryLog`` in ``layer.py``): the layer calls ``publish_add`` /
``publish_remove`` and neither knows which is behind it. The table lives beside the exact cache's ``responses``
because an entry is only worth keeping while the answer it points at (an exact-cache key) is kept; on load, entries
whose answer has expired or been evicted are dropped, and the newest ``max_entries`` are loaded (the table is
trimmed to that bound on every write, oldest first, the order the in-memory cache evicts in: a refreshed entry keeps
its age).

The verified policy's evidence (``evidence.py``) is kept here too: every label is appended to ``semantic_labels``
(the newest :data:`LABELS_KEPT` kept) and the labels are replayed in their order on start, before any entry loads.

Writes never touch a request's path: ``publish_*`` only queue the change, and one task writes what has queued, in a
transaction, on a worker thread (like ``SQLiteStore``). A failing write is skipped with one log line per outage; a
full queue (the disk far behind) drops the change. On close the queue is written out.

Loading: a table of up to :data:`LOAD_BEFORE_SERVING` entries is loaded before the gateway serves (a few seconds at
most). A larger one loads in the background, in chunks of :data:`LOAD_CHUNK` so that lookups interleave with it
(building the ANN graph is the slow part: ~27 s for 100,000 entries of one context on 2 cores); until it is done
those requests see fewer entries. An entry added or removed by live traffic while it loads is not overwritten or
brought back by the saved copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evidence import Label
from tokenomy.cache.semantic.features import normalise
from tokenomy.outage import OutageLog

log = logging.getLogger("tokenomy.cache.semantic")

SCHEMA = ("CREATE TABLE IF NOT EXISTS semantic_entries (context TEXT NOT NULL, text TEXT NOT NULL, "
          "answer_key TEXT NOT NULL, vector BLOB NOT NULL, added_at REAL NOT NULL, PRIMARY KEY (context, text))",
          "CREATE INDEX IF NOT EXISTS semantic_entries_added ON semantic_entries (added_at)",
          # the verified policy's evidence (evidence.py), replayed in order on start
          "CREATE TABLE IF NOT EXISTS semantic_labels (seq INTEGER PRIMARY KEY AUTOINCREMENT, score REAL NOT NULL, "
          "wrong INTEGER NOT NULL, exact INTEGER NOT NULL, kind INTEGER NOT NULL, added_at REAL NOT NULL)")
LABELS_KEPT = 50_000  # newest labels kept and replayed (each band of the evidence keeps at most 2,000)
# An entry whose answer is gone (expired, or evicted by the exact cache's byte bound) is a miss at lookup anyway.
PRUNE = ("DELETE FROM semantic_entries WHERE NOT EXISTS (SELECT 1 FROM responses r "
         "WHERE r.key = semantic_entries.answer_key AND r.expires >= ?)")
TRIM = ("DELETE FROM semantic_entries WHERE rowid IN "
        "(SELECT rowid FROM semantic_entries ORDER BY added_at, rowid LIMIT ?)")
LOAD_BEFORE_SERVING = 10_000
LOAD_CHUNK = 32
Change = tuple[str, str, str, str, bytes, float]  # op ("add" | "remove" | "label"), context, text, answer key,
# vector, time; a label: ("label", "", "", "<score> <wrong> <exact> <kind>", b"", time)


class SQLiteEntries:
    def __init__(self, path: Path, cache: SemanticCache, *, max_entries: int, dimensions: int = 384,
                 queue_limit: int = 10_000, load_before_serving: int = LOAD_BEFORE_SERVING) -> None:
        self._path, self._cache = path, cache
        self._max_entries, self._dimensions, self._queue_limit = max_entries, dimensions, queue_limit
        self._load_before_serving = load_before_serving
        self._touched: dict[tuple[str, str], str] | None = None  # (context, text) → last live op while loading
        self.loading: asyncio.Task[None] | None = None  # a background load, while it runs
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._count: int | None = None  # rows in the table; None: count again
        self._pending: list[Change] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.outage = OutageLog("saved semantic cache entries (sqlite)", log)
        self.loaded = 0
        self.written = 0

    async def start(self) -> None:
        """Load the saved entries into the index (a large table in the background), then write changes as they
        come."""
        try:
            rows = await asyncio.to_thread(self._saved)
            for label in await asyncio.to_thread(self._labels):
                self._cache.observe(label)
        except (OSError, sqlite3.Error) as exc:
            self.outage.failed(" ".join(str(exc).split()), "starting with no saved entries")
            rows = []
        if len(rows) <= self._load_before_serving:
            self.loaded = await asyncio.to_thread(self._insert, rows)
        else:
            log.info("loading %d saved semantic cache entries in the background", len(rows))
            self._touched = {}
            self.loading = asyncio.create_task(self._load_in_background(rows), name="semantic-entries-load")
        self._task = asyncio.create_task(self._write_loop(), name="semantic-entries-sqlite")

    async def _load_in_background(self, rows: list[tuple[str, str, str, bytes]]) -> None:
        try:
            for start in range(0, len(rows), LOAD_CHUNK):
                self.loaded += await asyncio.to_thread(self._insert, rows[start : start + LOAD_CHUNK])
            log.info("loaded %d saved semantic cache entries", self.loaded)
        except Exception:  # never a failed request: serve with what is in
            log.exception("loading the saved semantic cache entries stopped after %d", self.loaded)
        finally:
            self._touched = None

    async def aclose(self) -> None:
        """Stop a load still running, write what is queued, then close the file."""
        if self.loading is not None and not self.loading.done():
            self.loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loading
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await asyncio.to_thread(self._close)

    async def publish_add(self, context: str, text: str, vector: Any, answer_key: str) -> None:
        import numpy as np

        blob = np.asarray(vector, dtype="<f4").tobytes()
        self._queue(("add", context, normalise(text), answer_key, blob, time.time()))

    async def publish_remove(self, context: str, text: str) -> None:
        self._queue(("remove", context, normalise(text), "", b"", 0.0))

    async def publish_label(self, label: Label) -> None:
        fields = f"{label.score!r} {int(label.wrong)} {int(label.exact)} {label.kind}"
        self._queue(("label", "", "", fields, b"", time.time()))

    def _queue(self, change: Change) -> None:
        touched = self._touched
        if touched is not None and change[0] != "label":  # a load is running: its saved copy of this entry is stale now
            touched[(change[1], change[2])] = change[0]
        if len(self._pending) >= self._queue_limit:
            self.outage.failed(f"{len(self._pending)} changes waiting to be written", "the newest are not saved")
            return
        self._pending.append(change)
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await asyncio.to_thread(self._write, batch)
                except (OSError, sqlite3.Error) as exc:
                    self.outage.failed(" ".join(str(exc).split()), f"{len(batch)} changes not saved")
                else:
                    self.outage.recovered()
            if self._closing and not self._pending:
                return

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def _saved(self) -> list[tuple[str, str, str, bytes]]:
        """The saved entries to load, oldest first (entries whose answer is gone pruned, the table trimmed)."""
        with self._lock:
            db = self._db()
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone():
                db.execute(PRUNE, (time.time(),))
            self._trim(db)
            rows = db.execute("SELECT context, text, answer_key, vector FROM semantic_entries "
                              "ORDER BY added_at, rowid").fetchall()
        return [row for row in rows if len(row[3]) == 4 * self._dimensions]  # a damaged vector is skipped

    def _labels(self) -> list[Label]:
        """The saved evidence, oldest first (replayed in the order it was made)."""
        with self._lock:
            rows = self._db().execute("SELECT score, wrong, exact, kind FROM semantic_labels ORDER BY seq DESC "
                                      "LIMIT ?", (LABELS_KEPT,)).fetchall()
        return [Label(float(score), bool(wrong), bool(exact), int(kind))
                for score, wrong, exact, kind in reversed(rows)]

    def _insert(self, rows: list[tuple[str, str, str, bytes]]) -> int:
        """Put ``rows`` into the index, a run of one context at a time, in age order (the cache evicts oldest
        first); entries changed live since the load began are left as they are."""
        import numpy as np

        touched = self._touched
        if touched:
            rows = [row for row in rows if (row[0], row[1]) not in touched]
        loaded, start = 0, 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or rows[end][0] != rows[start][0]:
                run = rows[start:end]
                vectors = np.frombuffer(b"".join(r[3] for r in run), dtype="<f4").reshape(len(run), -1)
                loaded += self._cache.insert_many(run[0][0], [r[1] for r in run], vectors, [r[2] for r in run])
                start = end
        if touched:  # removed live while this chunk went in (after the filter above): removed again
            for context, text, _, _ in rows:
                if touched.get((context, text)) == "remove":
                    self._cache.remove_text(context, text)
        return loaded

    def _write(self, batch: list[Change]) -> None:
        with self._lock:
            db = self._db()
            if self._count is None:
                self._count = int(db.execute("SELECT COUNT(*) FROM semantic_entries").fetchone()[0])
            db.execute("BEGIN")
            try:
                labels = 0
                for op, context, text, answer_key, vector, added_at in batch:
                    if op == "label":
                        score, wrong, exact, kind = answer_key.split()
                        db.execute("INSERT INTO semantic_labels (score, wrong, exact, kind, added_at) "
                                   "VALUES (?, ?, ?, ?, ?)",
                                   (float(score), int(wrong), int(exact), int(kind), added_at))
                        labels += 1
                    elif op == "add":
                        new = db.execute("INSERT OR IGNORE INTO semantic_entries VALUES (?, ?, ?, ?, ?)",
                                         (context, text, answer_key, vector, added_at)).rowcount
                        if not new:  # a refresh: the new answer and vector, the entry's age kept
                            db.execute("UPDATE semantic_entries SET answer_key = ?, vector = ? "
                                       "WHERE context = ? AND text = ?", (answer_key, vector, context, text))
                        self._count += new
                    else:
                        self._count -= db.execute("DELETE FROM semantic_entries WHERE context = ? AND text = ?",
                                                  (context, text)).rowcount
                self._trim(db)
                if labels:
                    db.execute("DELETE FROM semantic_labels WHERE seq <= (SELECT MAX(seq) FROM semantic_labels) - ?",
                               (LABELS_KEPT,))
            except sqlite3.Error:
                db.execute("ROLLBACK")
                self._count = None
                raise
            db.execute("COMMIT")
            self.written += len(batch)

    def _trim(self, db: sqlite3.Connection) -> None:
        if self._count is None:
            self._count = int(db.execute("SELECT COUNT(*) FROM semantic_entries").fetchone()[0])
        if self._count > self._max_entries:
            self._count -= db.execute(TRIM, (self._count - self._max_entries,)).rowcount

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
