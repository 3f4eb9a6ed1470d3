"""The ledger store of a gateway that started while its PostgreSQL was down (degraded start).

Every write first migrates and opens the real store; until the database answers it raises ``LedgerStoreError``, so
the writer spills each batch to its spill file and tries again every ``retry_s``. Once open, it is the real store,
and the writer replays the spill file into it (exactly once: store writes are idempotent on row ids).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from tokenomy.db.engine import Database
from tokenomy.ledger.store import LedgerStore


class LateStore:
    def __init__(self, url: str, database: Database | None) -> None:
        self._url, self._database = url, database
        self._store: LedgerStore | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        return self._store is not None

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write (an empty ``rows`` only opens the store): LedgerStoreError while the database is down."""
        from tokenomy.ledger.migrate import open_store

        with self._lock:
            if self._store is None:
                self._store = open_store(self._url, self._database)
        self._store.write(rows)
