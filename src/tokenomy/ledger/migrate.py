"""Numbered schema migrations (yoyo-migrations; SQL files in ``ledger/migrations``), and the store for a URL."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from tokenomy.errors import ConfigError
from tokenomy.ledger.store import LedgerStoreError, SQLiteLedgerStore

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_path(database_url: str) -> Path:
    """The file behind a ``sqlite:///…`` URL or a plain path; other schemes are not supported yet."""
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).expanduser()
    if "://" in database_url:
        scheme = database_url.split("://", 1)[0]
        raise ConfigError(f"TOKENOMY_DATABASE_URL scheme '{scheme}' is not supported yet (only SQLite: "
                          "sqlite:///PATH or a file path)")
    return Path(database_url).expanduser()


def upgrade(database_url: str) -> list[str]:
    """Apply every pending migration; returns the ids applied."""
    from yoyo import get_backend, read_migrations
    from yoyo.exceptions import BadMigration, LockTimeout, MigrationConflict

    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per migration step is noise in a server log
    path = sqlite_path(database_url).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = get_backend(f"sqlite:///{path}")
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    except (OSError, sqlite3.Error, BadMigration, LockTimeout, MigrationConflict) as exc:
        raise LedgerStoreError(f"cannot migrate the ledger at {path}: {exc}") from exc


def open_store(database_url: str) -> SQLiteLedgerStore:
    upgrade(database_url)
    return SQLiteLedgerStore(sqlite_path(database_url))
