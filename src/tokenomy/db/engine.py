"""The ledger's database by URL: SQLite (the embedded default, one file) or PostgreSQL (scale-out, pooled).

Every store that lives in the ledger's database (ledger rows, batch jobs, keys, budget counters) writes its SQL once,
in SQLite's placeholder style (``?`` and ``:name``), and runs it through ``Database.transaction()`` or
``Database.read()``; on PostgreSQL the placeholders become psycopg's (``%s``, ``%(name)s``) and the few functions that
differ come from ``Database.sql``. Rows are tuples that can also be read by column name (``Row``).

PostgreSQL goes through psycopg 3 and its connection pool (synchronous: every store call already runs on a worker
thread; the measurement behind the choice is in docs/scale.md). A broken connection (a restarted server) is dropped
by the pool and replaced on the next checkout.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from tokenomy.errors import ConfigError, DatabaseError

Dialect = Literal["sqlite", "postgresql"]
PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class Row(tuple[Any, ...]):
    """A result row: a tuple that also answers ``row["column"]``."""

    names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Tx(Protocol):
    """One connection inside a transaction (or a read), taking SQLite-style SQL on either engine."""

    dialect: Dialect

    def execute(self, sql: str, args: Any = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Any]) -> Cursor: ...


# Functions that differ between the engines, by name: ``db.sql["greatest"]``.
SQLITE_SQL = {"greatest": "MAX", "day_of_us": "strftime('%Y-%m-%d', {} / 1000000, 'unixepoch')"}
PG_SQL = {"greatest": "GREATEST",
          "day_of_us": "to_char(to_timestamp({} / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"}


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """SQLite placeholders as psycopg's: ``?`` → ``%s``, ``:name`` → ``%(name)s`` (``::casts`` are left alone)."""
    sql = sql.replace("%", "%%")
    sql = re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)
    return sql.replace("?", "%s")


class Database:
    dialect: Dialect
    url: str
    errors: tuple[type[Exception], ...]
    sql: dict[str, str]

    @contextlib.contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[Tx]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so writers queue instead of deadlocking);
        ``exclusive``: no other exclusive transaction runs until it ends, on any replica (SQLite: already so; on
        PostgreSQL an advisory lock). A driver error, in the block or around it, is a ``DatabaseError``."""
        try:
            with self._transaction(exclusive=exclusive) as tx:
                yield tx
        except self.errors as exc:
            raise DatabaseError(reason(exc)) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        """A read; a driver error is a ``DatabaseError``."""
        try:
            with self._read() as tx:
                yield tx
        except self.errors as exc:
            raise DatabaseError(reason(exc)) from exc

    def _transaction(self, *, exclusive: bool) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def exists(self) -> bool:
        return True

    def close(self) -> None:
        """Release connections (a later call opens them again)."""

    def describe(self) -> str:
        return self.url


class _SQLiteTx:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Any = ()) -> Cursor:
        return self._conn.execute(sql, args)  # type: ignore[return-value]

    def executemany(self, sql: str, rows: Sequence[Any]) -> Cursor:
        return self._conn.executemany(sql, rows)  # type: ignore[return-value]


def _sqlite_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return Row({d[0]: i for i, d in enumerate(cursor.description)}, values)


class SQLiteDatabase(Database):
    """One SQLite file in WAL mode, one connection shared under a lock (the embedded default)."""

    dialect: Dialect = "sqlite"
    errors = (sqlite3.Error,)
    sql = SQLITE_SQL

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.url = str(path)
        self._timeout_s = timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self._timeout_s)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = _sqlite_row
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, *, exclusive: bool) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[Tx]:
        with self._lock:
            yield _SQLiteTx(self._connection())

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _PgTx:
    dialect: Dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Any = ()) -> Cursor:
        cursor: Cursor = self._conn.execute(pg_sql(sql), args or None)
        return cursor

    def executemany(self, sql: str, rows: Sequence[Any]) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(pg_sql(sql), rows)
        result: Cursor = cursor
        return result

    @property
    def connection(self) -> Any:
        """The psycopg connection itself (COPY, and the ledger's bulk insert)."""
        return self._conn


def _pg_row(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    names = {d.name: i for i, d in enumerate(description)}
    return lambda values: Row(names, values)


# An advisory lock id for "exclusive" transactions (budget counters): one number, the same on every replica.
EXCLUSIVE_LOCK = 0x70C0_0001


class PostgresDatabase(Database):
    """A psycopg 3 connection pool (opened on first use); ``pooled=False``: one connection per call (a command that
    runs one query, and should fail with the server's own reason at once)."""

    dialect: Dialect = "postgresql"
    sql = PG_SQL

    def __init__(self, url: str, *, max_size: int = 8, timeout_s: float = 5.0, connect_timeout_s: int = 3,
                 pooled: bool = True) -> None:
        import logging

        import psycopg
        import psycopg_pool

        # the pool logs every failed reconnection; the stores say once per outage that the database is down
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        self.url = url
        self._pooled = pooled
        self.errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self._conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._max_size, self._timeout_s, self._connect_timeout_s = max_size, timeout_s, connect_timeout_s
        self._pool: Any = None
        self._lock = threading.Lock()

    def pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self._conninfo, min_size=1, max_size=self._max_size, open=False, timeout=self._timeout_s,
                    check=ConnectionPool.check_connection, name="tokenomy",
                    kwargs={"connect_timeout": self._connect_timeout_s, "row_factory": _pg_row})
                self._pool.open(wait=False)
            return self._pool

    def connection(self) -> contextlib.AbstractContextManager[Any]:
        """A psycopg connection that commits when the block ends (rolls back on an exception)."""
        if self._pooled:
            return self.pool().connection()  # type: ignore[no-any-return]
        import psycopg

        return psycopg.connect(self._conninfo, connect_timeout=self._connect_timeout_s, row_factory=_pg_row)

    @contextlib.contextmanager
    def _transaction(self, *, exclusive: bool) -> Iterator[Tx]:
        with self.connection() as conn:
            if exclusive:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE_LOCK,))
            yield _PgTx(conn)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Tx]:
        with self.connection() as conn:
            yield _PgTx(conn)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def describe(self) -> str:
        return masked_url(self.url)


def scheme(url: str) -> str | None:
    return url.split("://", 1)[0].lower() if "://" in url else None


def is_postgres(url: str) -> bool:
    return scheme(url) in PG_SCHEMES


def sqlite_path(database_url: str) -> Path:
    """The file behind a ``sqlite:///…`` URL or a plain path."""
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).expanduser()
    found = scheme(database_url)
    if found is not None:
        raise ConfigError(f"TOKENOMY_DATABASE_URL scheme '{found}' is not supported (SQLite: sqlite:///PATH or a "
                          "file path; PostgreSQL: postgresql://USER@HOST:PORT/DB)")
    return Path(database_url).expanduser()


def open_database(database_url: str, *, pooled: bool = True) -> Database:
    """The database behind ``TOKENOMY_DATABASE_URL`` (not yet connected)."""
    if is_postgres(database_url):
        return PostgresDatabase(database_url, pooled=pooled)
    return SQLiteDatabase(sqlite_path(database_url))


def masked_url(url: str) -> str:
    """The URL with its password hidden, for logs and errors."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def ledger_source(database_url: str) -> Path | Database:
    """What a report reads: the SQLite file (opened read-only per report) or the PostgreSQL database."""
    return PostgresDatabase(database_url, pooled=False) if is_postgres(database_url) else sqlite_path(database_url)


class DatabaseOpener:
    """The stores of one gateway in the ledger's database: on PostgreSQL they share one pool; on SQLite each gets
    its own connection to the file, as each store had before (so one slow writer never holds up another)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.postgres = is_postgres(database_url)
        self._shared: PostgresDatabase | None = PostgresDatabase(database_url, max_size=12, timeout_s=2.0) \
            if self.postgres else None
        self._opened: list[Database] = []

    def __call__(self) -> Database:
        if self._shared is not None:
            return self._shared
        db = SQLiteDatabase(sqlite_path(self.url))
        self._opened.append(db)
        return db

    def report_source(self) -> Path | Database:
        return self._shared if self._shared is not None else sqlite_path(self.url)

    def close(self) -> None:
        for db in [*self._opened, *([self._shared] if self._shared else [])]:
            db.close()


def reason(exc: BaseException) -> str:
    """A driver's error as one line (psycopg's connection errors span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
