"""Where ledger rows live. One seam, ``LedgerStore.write(rows)``; SQLite is the embedded default, PostgreSQL
(``pg_store``) the scale-out one.

Writes are synchronous and batched (the writer calls them on a worker thread); a batch is one transaction, and
writing the same entries twice is harmless (``INSERT … ON CONFLICT DO NOTHING`` on the ids), which is what lets a
spill file be replayed without double counting.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import LedgerEntry


class LedgerStoreError(TokenomyError):
    """The ledger store could not be opened or written."""

    code = "ledger_store_error"


class LedgerStore(Protocol):
    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Persist entries given as ``LedgerEntry.as_json()`` dicts, atomically, idempotently."""


@functools.lru_cache(maxsize=8)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


def insert_entries(conn: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ledger entries (``LedgerEntry.as_json()`` dicts) inside the caller's transaction (a sqlite3
    connection or a ``database.Tx`` of either engine); ids already present are left alone, so writing an entry
    twice is harmless. Entries written by an older version (a spill file, a batch line's kept entry) may lack a
    column added since: it is written as NULL."""
    rows = _uniform(rows)
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from tokenomy.ledger.pg_store import copy_entries

        copy_entries(conn.connection, rows)
        return
    requests = [r["request"] for r in rows]
    calls = [c for r in rows for c in r["calls"]]
    if requests:
        conn.executemany(_insert_sql("requests", tuple(requests[0])), requests)
    if calls:
        conn.executemany(_insert_sql("calls", tuple(calls[0])), calls)


def _uniform(rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """The entries with the same request columns and the same call columns throughout (missing ones as None)."""
    requests = [r["request"] for r in rows]
    calls = [c for r in rows for c in r["calls"]]
    request_keys = set().union(*requests) if requests else set()
    call_keys = set().union(*calls) if calls else set()
    if all(len(r) == len(request_keys) for r in requests) and all(len(c) == len(call_keys) for c in calls):
        return rows
    return [{"request": {k: r["request"].get(k) for k in sorted(request_keys)},
             "calls": [{k: c.get(k) for k in sorted(call_keys)} for c in r["calls"]]} for r in rows]


class SQLiteLedgerStore:
    """The embedded ledger: one SQLite file in WAL mode, written from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as exc:
                raise LedgerStoreError(f"cannot open the ledger at {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")
                insert_entries(conn, rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise LedgerStoreError(f"ledger write to {self.path} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def entries_as_rows(entries: Sequence[LedgerEntry]) -> list[dict[str, Any]]:
    return [e.as_json() for e in entries]
