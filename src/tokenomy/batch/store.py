"""Where files' metadata, batches and their lines live: the ledger's database (migration 0002), SQLite or PostgreSQL.

Every method is synchronous and atomic; async callers run them in a worker thread. ``complete_lines`` is the heart
of "exactly once": a line's result, its usage and its ledger rows are written in one transaction, and only while
the line is still pending, so a line finished twice (it cannot be, but a crash between the upstream's answer and
this commit re-runs it) is recorded once — on PostgreSQL too, where replicas may finish lines of one batch at once:
the ``UPDATE … AND state = 'pending'`` row lock lets exactly one of them write the line and its ledger rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from tokenomy.batch.objects import TIMESTAMPS, BatchRecord, BatchStatus, FileRecord, LineCounts, LineState, LineUsage
from tokenomy.db.engine import Database, SQLiteDatabase, Tx, reason
from tokenomy.errors import DatabaseError, StoreUnavailableError
from tokenomy.ledger.store import insert_entries


class BatchStoreError(StoreUnavailableError):
    """The batch store could not be read or written: 503, as every store that does not answer (a client may retry;
    the soak saw a 500 for each batch submitted while PostgreSQL restarted)."""

    code = "batch_store_error"
    outage = False  # no OutageLog watches the batch store: each failure is logged where the door answers it


@dataclass(frozen=True, slots=True)
class PendingLine:
    line_no: int
    custom_id: str
    body: bytes  # the request body, JSON


@dataclass(frozen=True, slots=True)
class LineResult:
    """What one finished line leaves: its state, the output/error file line, usage, ledger rows."""

    line_no: int
    state: LineState
    result: dict[str, Any]
    usage: LineUsage
    ledger: dict[str, Any] | None = None  # LedgerEntry.as_json()


class BatchStore(Protocol):
    def add_file(self, record: FileRecord) -> None: ...
    def get_file(self, file_id: str) -> FileRecord | None: ...
    def list_files(self, purpose: str | None, after: str | None, limit: int, order: str,
                   owner: str | None = None) -> list[FileRecord]: ...
    def delete_file(self, file_id: str) -> bool: ...
    def add_batch(self, record: BatchRecord) -> None: ...
    def get_batch(self, batch_id: str) -> BatchRecord | None: ...
    def list_batches(self, after: str | None, limit: int, owner: str | None = None) -> list[BatchRecord]: ...
    def active_batches(self) -> list[BatchRecord]: ...
    def update_batch(self, batch_id: str, expect: Sequence[BatchStatus] = (), **fields: Any) -> bool: ...
    def add_lines(self, batch_id: str, lines: Iterable[tuple[int, str, bytes]]) -> None: ...
    def pending_lines(self, batch_id: str, after_line: int, limit: int) -> list[PendingLine]: ...
    def complete_lines(self, batch_id: str, results: Sequence[LineResult]) -> int: ...
    def close_pending(self, batch_id: str, state: LineState, result_for: Any) -> int: ...
    def counts(self, batch_id: str) -> LineCounts: ...
    def usage(self, batch_id: str) -> LineUsage: ...
    def results(self, batch_id: str, states: Sequence[LineState]) -> Iterator[bytes]: ...


_BATCH_COLUMNS = ("id", "endpoint", "input_file_id", "completion_window", "via", "status", "metadata", "errors",
                  "model", "output_file_id", "error_file_id", "max_concurrency", "key_id", "remote", "created_at",
                  "expires_at", *TIMESTAMPS)
_JSON_COLUMNS = frozenset({"metadata", "errors", "remote"})
_FILE_COLUMNS = ("id", "purpose", "filename", "bytes", "lines", "created_at", "expires_at", "status", "key_id")


def _file_record(row: Sequence[Any]) -> FileRecord:
    """A ``files`` row (``_FILE_COLUMNS`` order) as a record, by column name: the table's column order and the
    record's field order differ."""
    return FileRecord(**dict(zip(_FILE_COLUMNS, row, strict=True)))


class SQLBatchStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            with self.database.read() as tx:
                return tx.execute(sql, args).fetchall()
        except DatabaseError as exc:
            raise BatchStoreError(f"batch store read failed ({self.database.describe()}): {reason(exc)}") from exc

    def _write(self, work: Any) -> Any:
        """Run ``work(tx)`` in one transaction."""
        try:
            with self.database.transaction() as tx:
                return work(tx)
        except DatabaseError as exc:
            raise BatchStoreError(f"batch store write failed ({self.database.describe()}): {reason(exc)}") from exc

    def close(self) -> None:
        self.database.close()

    # --- files ----------------------------------------------------------------------------------------------------

    def add_file(self, record: FileRecord) -> None:
        values = [getattr(record, c) for c in _FILE_COLUMNS]
        marks = ", ".join("?" for _ in values)
        self._write(lambda conn: conn.execute(
            f"INSERT INTO files ({', '.join(_FILE_COLUMNS)}, deleted) VALUES ({marks}, 0) "
            "ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, lines = excluded.lines, deleted = 0", values))

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._read(f"SELECT {', '.join(_FILE_COLUMNS)} FROM files WHERE id = ? AND deleted = 0", (file_id,))
        return _file_record(rows[0]) if rows else None

    def list_files(self, purpose: str | None, after: str | None, limit: int, order: str,
                   owner: str | None = None) -> list[FileRecord]:
        """``owner``: only that key's files (None: everyone's)."""
        direction, compare = ("ASC", ">") if order == "asc" else ("DESC", "<")
        where, args = ["deleted = 0"], []
        if owner is not None:
            where.append("key_id = ?")
            args.append(owner)
        if purpose:
            where.append("purpose = ?")
            args.append(purpose)
        if after:
            where.append(f"(created_at, id) {compare} (SELECT created_at, id FROM files WHERE id = ?)")
            args.append(after)
        sql = (f"SELECT {', '.join(_FILE_COLUMNS)} FROM files WHERE {' AND '.join(where)} "
               f"ORDER BY created_at {direction}, id {direction} LIMIT ?")
        return [_file_record(row) for row in self._read(sql, [*args, limit])]

    def delete_file(self, file_id: str) -> bool:
        return bool(self._write(lambda conn: conn.execute(
            "UPDATE files SET deleted = 1 WHERE id = ? AND deleted = 0", (file_id,)).rowcount))

    # --- batches --------------------------------------------------------------------------------------------------

    def add_batch(self, record: BatchRecord) -> None:
        row = _batch_row(record)
        marks = ", ".join("?" for _ in _BATCH_COLUMNS)
        self._write(lambda conn: conn.execute(
            f"INSERT INTO batches ({', '.join(_BATCH_COLUMNS)}) VALUES ({marks})", [row[c] for c in _BATCH_COLUMNS]))

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._read(f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE id = ?", (batch_id,))
        return _batch_record(rows[0]) if rows else None

    def list_batches(self, after: str | None, limit: int, owner: str | None = None) -> list[BatchRecord]:
        """Newest first; ``owner``: only that key's batches (None: everyone's)."""
        where, args = ["1 = 1"], []
        if owner is not None:
            where.append("key_id = ?")
            args.append(owner)
        if after:
            where.append("(created_at, id) < (SELECT created_at, id FROM batches WHERE id = ?)")
            args.append(after)
        sql = (f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE {' AND '.join(where)} "
               "ORDER BY created_at DESC, id DESC LIMIT ?")
        return [_batch_record(row) for row in self._read(sql, [*args, limit])]

    def active_batches(self) -> list[BatchRecord]:
        terminal = [str(s) for s in BatchStatus if s.terminal]
        marks = ", ".join("?" for _ in terminal)
        sql = f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE status NOT IN ({marks}) ORDER BY created_at"
        return [_batch_record(row) for row in self._read(sql, terminal)]

    def update_batch(self, batch_id: str, expect: Sequence[BatchStatus] = (), **fields: Any) -> bool:
        """Set ``fields``; with ``expect``, only while the batch's status is one of them (compare-and-set).
        Returns whether the row changed."""
        unknown = set(fields) - set(_BATCH_COLUMNS)
        if unknown:
            raise ValueError(f"unknown batch fields {sorted(unknown)}")
        values = [_encode(name, value) for name, value in fields.items()]
        sets = ", ".join(f"{name} = ?" for name in fields)
        where, args = "id = ?", [batch_id]
        if expect:
            where += f" AND status IN ({', '.join('?' for _ in expect)})"
            args += [str(s) for s in expect]
        return bool(self._write(lambda conn: conn.execute(f"UPDATE batches SET {sets} WHERE {where}",
                                                          [*values, *args]).rowcount))

    # --- lines ----------------------------------------------------------------------------------------------------

    def add_lines(self, batch_id: str, lines: Iterable[tuple[int, str, bytes]]) -> None:
        """Insert the lines of a batch (idempotent: a restarted ``validating`` step inserts nothing twice)."""
        rows = [(batch_id, n, cid, body.decode()) for n, cid, body in lines]
        self._write(lambda conn: conn.executemany(
            "INSERT INTO batch_lines (batch_id, line_no, custom_id, state, body, input_tokens, cached_tokens, "
            "output_tokens, reasoning_tokens) VALUES (?, ?, ?, 'pending', ?, 0, 0, 0, 0) "
            "ON CONFLICT (batch_id, line_no) DO NOTHING", rows))

    def pending_lines(self, batch_id: str, after_line: int, limit: int) -> list[PendingLine]:
        rows = self._read("SELECT line_no, custom_id, body FROM batch_lines WHERE batch_id = ? AND state = 'pending' "
                          "AND line_no > ? ORDER BY line_no LIMIT ?", (batch_id, after_line, limit))
        return [PendingLine(n, cid, body.encode()) for n, cid, body in rows]

    def complete_lines(self, batch_id: str, results: Sequence[LineResult]) -> int:
        """Record finished lines and their ledger rows in one transaction; returns how many were still pending
        (only those are written, ledger rows included)."""

        def work(conn: Tx) -> int:
            written = 0
            entries = []
            for r in results:
                u = r.usage
                cursor = conn.execute(
                    "UPDATE batch_lines SET state = ?, result = ?, input_tokens = ?, cached_tokens = ?, "
                    "output_tokens = ?, reasoning_tokens = ? WHERE batch_id = ? AND line_no = ? AND state = 'pending'",
                    (str(r.state), orjson.dumps(r.result).decode(), u.input_tokens, u.cached_tokens,
                     u.output_tokens, u.reasoning_tokens, batch_id, r.line_no))
                if cursor.rowcount:
                    written += 1
                    if r.ledger is not None:
                        entries.append(r.ledger)
            insert_entries(conn, entries)
            return written

        return int(self._write(work))

    def close_pending(self, batch_id: str, state: LineState, result_for: Any) -> int:
        """Move every pending line to ``state`` (expired / cancelled), its result ``result_for(custom_id)``."""

        def work(conn: Tx) -> int:
            rows = conn.execute("SELECT line_no, custom_id FROM batch_lines WHERE batch_id = ? AND state = 'pending'",
                                (batch_id,)).fetchall()
            conn.executemany("UPDATE batch_lines SET state = ?, result = ? WHERE batch_id = ? AND line_no = ?",
                             [(str(state), orjson.dumps(result_for(n, cid)).decode(), batch_id, n) for n, cid in rows])
            return len(rows)

        return int(self._write(work))

    def counts(self, batch_id: str) -> LineCounts:
        by_state = dict(self._read("SELECT state, COUNT(*) FROM batch_lines WHERE batch_id = ? GROUP BY state",
                                   (batch_id,)))
        total = sum(by_state.values())
        done = by_state.get(str(LineState.DONE), 0)
        pending = by_state.get(str(LineState.PENDING), 0)
        return LineCounts(total=total, completed=done, failed=total - done - pending, pending=pending)

    def usage(self, batch_id: str) -> LineUsage:
        (row,) = self._read("SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_tokens), 0), "
                            "COALESCE(SUM(output_tokens), 0), COALESCE(SUM(reasoning_tokens), 0) FROM batch_lines "
                            "WHERE batch_id = ?", (batch_id,))
        return LineUsage(*(int(v) for v in row))

    def results(self, batch_id: str, states: Sequence[LineState]) -> Iterator[bytes]:
        """The result lines of ``states``, in input order, a page at a time (bounded memory)."""
        marks = ", ".join("?" for _ in states)
        after = 0
        while True:
            rows = self._read(f"SELECT line_no, result FROM batch_lines WHERE batch_id = ? AND line_no > ? AND "
                              f"state IN ({marks}) ORDER BY line_no LIMIT 1000",
                              (batch_id, after, *[str(s) for s in states]))
            if not rows:
                return
            for line_no, result in rows:
                after = line_no
                yield result.encode()


class SQLiteBatchStore(SQLBatchStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(SQLiteDatabase(path))


def _encode(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if name == "status":
        return str(value)
    return value


def _batch_row(record: BatchRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _BATCH_COLUMNS if name not in TIMESTAMPS}
    row.update({name: record.times.get(name) for name in TIMESTAMPS})
    return {name: _encode(name, value) for name, value in row.items()}


def _batch_record(row: tuple[Any, ...]) -> BatchRecord:
    values = dict(zip(_BATCH_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        values[name] = None if values[name] is None else orjson.loads(values[name])
    times = {name: values.pop(name) for name in TIMESTAMPS}
    values["status"] = BatchStatus(values["status"])
    return BatchRecord(**values, times=times)
