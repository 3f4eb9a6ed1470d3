"""Numbered schema migrations (yoyo-migrations; files in ``ledger/migrations``), one set for SQLite and PostgreSQL,
and the ledger store for a URL.

The SQL files are portable; the Python steps (``0004.scale``, ``0005.jobs``) do their work on PostgreSQL only: the
spend rollup (tables kept by statement triggers), file contents in the database, and the job engine's schema.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from tokenomy.db.engine import (
    Database,
    PostgresDatabase,
    is_postgres,
    masked_url,
    open_database,
    reason,
    sqlite_path,
)
from tokenomy.ledger.store import LedgerStore, LedgerStoreError, SQLiteLedgerStore

__all__ = ["MIGRATIONS", "open_store", "sqlite_path", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def _backend_url(database_url: str) -> str:
    if is_postgres(database_url):
        rest = database_url.split("://", 1)[1]
        return f"postgresql+psycopg://{rest}"
    return f"sqlite:///{sqlite_path(database_url).resolve()}"


def upgrade(database_url: str) -> list[str]:
    """Apply every pending migration; returns the ids applied."""
    from yoyo import get_backend, read_migrations
    from yoyo.exceptions import BadMigration, LockTimeout, MigrationConflict

    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per migration step is noise in a server log
    errors: tuple[type[Exception], ...] = (OSError, sqlite3.Error, BadMigration, LockTimeout, MigrationConflict)
    if is_postgres(database_url):
        import psycopg

        errors += (psycopg.Error,)
    else:
        sqlite_path(database_url).resolve().parent.mkdir(parents=True, exist_ok=True)
    try:
        backend = get_backend(_backend_url(database_url))
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    except errors as exc:
        raise LedgerStoreError(f"cannot migrate the ledger at {masked_url(database_url)}: {reason(exc)}") from exc


def open_store(database_url: str, database: Database | None = None) -> LedgerStore:
    """Migrate, then the ledger store for the URL (``database``: an already opened one to share)."""
    upgrade(database_url)
    if is_postgres(database_url):
        from tokenomy.ledger.pg_store import PostgresLedgerStore

        db = database if isinstance(database, PostgresDatabase) else open_database(database_url)
        assert isinstance(db, PostgresDatabase)
        return PostgresLedgerStore(db)
    return SQLiteLedgerStore(sqlite_path(database_url))
