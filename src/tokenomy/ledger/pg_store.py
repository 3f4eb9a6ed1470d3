"""The ledger on PostgreSQL: each batch is one transaction that COPYs the rows into temporary tables and inserts
them from there with ``ON CONFLICT (id) DO NOTHING``.

COPY alone would be the fastest way in, but it cannot skip rows that are already there, and the ledger relies on
idempotent inserts (a spill file replayed after a crash, a batch line run twice). COPY into a staging table plus
one ``INSERT … SELECT`` keeps that property and was the fastest method measured, several times psycopg's pipelined
``executemany`` and a multi-row ``INSERT … VALUES`` (bench/pg_insert_methods.py; figures in docs/scale.md). The
spend rollup is kept by the database's own statement triggers over the rows really inserted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tokenomy.db.engine import PostgresDatabase, reason
from tokenomy.ledger.store import LedgerStoreError

_RETRIES = 3  # deadlocks between replicas upserting the same rollup rows are retried, then reported


def copy_entries(conn: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ledger entries (``LedgerEntry.as_json()`` dicts) inside the caller's transaction on a psycopg
    connection; ids already present are left alone."""
    requests = [r["request"] for r in rows]
    calls = [c for r in rows for c in r["calls"]]
    with conn.cursor() as cur:
        for table, items in (("requests", requests), ("calls", calls)):
            if not items:
                continue
            columns = list(items[0])
            names = ", ".join(columns)
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY stage_{table} ({names}) FROM STDIN") as copy:
                for item in items:
                    copy.write_row([item[c] for c in columns])
            cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table} ORDER BY id "
                        "ON CONFLICT (id) DO NOTHING")


class PostgresLedgerStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        import psycopg

        for attempt in range(_RETRIES):
            try:
                with self.database.connection() as conn:
                    copy_entries(conn, rows)
                return
            except psycopg.errors.DeadlockDetected as exc:
                if attempt == _RETRIES - 1:
                    raise LedgerStoreError(f"ledger write deadlocked {_RETRIES} times: {reason(exc)}") from exc
                time.sleep(0.01 * (attempt + 1))
            except self.database.errors as exc:
                raise LedgerStoreError(f"ledger write to {self.database.describe()} failed: {reason(exc)}") from exc

    def close(self) -> None:
        self.database.close()
