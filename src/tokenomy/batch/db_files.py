"""File contents in the ledger's PostgreSQL database (``file_chunks``, migration 0004), 1 MiB a row, so that every
replica reads every upload and every batch output without a shared volume (Kubernetes volumes that many pods may
write are the exception, not the rule; files here are at most ``batch.max_file_bytes``, 200 MB).

A file is written in one transaction (its old chunks deleted first), so it exists whole or not at all, and writing
a batch's output twice (a finalize run again after a crash, or two replicas at once: the writers of one file take
turns on a transaction-scoped advisory lock) leaves one copy. Reads fetch one chunk at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from tokenomy.batch.files import _ID, CHUNK
from tokenomy.batch.store import BatchStoreError
from tokenomy.db.engine import Database, reason
from tokenomy.errors import DatabaseError, NotFoundError


class _ChunkReader(io.RawIOBase):
    def __init__(self, blobs: DatabaseBlobs, file_id: str, chunks: int) -> None:
        self._blobs, self._file_id, self._chunks = blobs, file_id, chunks
        self._seq, self._buffer = 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if not self._buffer and self._seq < self._chunks:
            self._buffer = self._blobs.chunk(self._file_id, self._seq)
            self._seq += 1
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class DatabaseBlobs:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _check(self, file_id: str) -> None:
        if not _ID.fullmatch(file_id):
            raise NotFoundError(f"no such file: {file_id!r}", param="file_id")

    def _store(self, file_id: str, chunks: Iterable[bytes]) -> int:
        self._check(file_id)
        size = 0
        try:
            with self.database.transaction() as tx:
                # writers of one file take turns: two replicas finishing the same batch at once each deleted the
                # (still uncommitted) chunks the other had not yet written, then both inserted: a duplicate key
                tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ("file:" + file_id,))
                tx.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
                for seq, data in enumerate(chunks):
                    tx.execute("INSERT INTO file_chunks (file_id, seq, data) VALUES (?, ?, ?)", (file_id, seq, data))
                    size += len(data)
        except DatabaseError as exc:
            raise BatchStoreError(f"cannot store file {file_id}: {reason(exc)}") from exc
        return size

    def write(self, file_id: str, lines: Iterable[bytes]) -> int:
        """Write ``lines`` (a newline added to each that lacks one) as the file's content; returns bytes."""

        def chunks() -> Iterator[bytes]:
            pending = bytearray()
            for line in lines:
                pending += line if line.endswith(b"\n") else line + b"\n"
                if len(pending) >= CHUNK:
                    yield bytes(pending)
                    pending.clear()
            if pending:
                yield bytes(pending)

        return self._store(file_id, chunks())

    def copy_in(self, file_id: str, source: BinaryIO) -> int:
        return self._store(file_id, iter(lambda: source.read(CHUNK), b""))

    def chunk(self, file_id: str, seq: int) -> bytes:
        try:
            with self.database.read() as tx:
                row = tx.execute("SELECT data FROM file_chunks WHERE file_id = ? AND seq = ?", (file_id, seq)
                                 ).fetchone()
        except DatabaseError as exc:
            raise BatchStoreError(f"cannot read file {file_id}: {reason(exc)}") from exc
        if row is None:
            raise NotFoundError(f"the content of file {file_id} is gone", param="file_id")
        return bytes(row[0])

    def open(self, file_id: str) -> BinaryIO:
        self._check(file_id)
        try:
            with self.database.read() as tx:
                (count,) = tx.execute("SELECT COUNT(*) FROM file_chunks WHERE file_id = ?", (file_id,)).fetchone()
        except DatabaseError as exc:
            raise BatchStoreError(f"cannot read file {file_id}: {reason(exc)}") from exc
        return io.BufferedReader(_ChunkReader(self, file_id, int(count)), buffer_size=CHUNK)

    def lines(self, file_id: str) -> Iterator[bytes]:
        with self.open(file_id) as handle:
            yield from handle

    def delete(self, file_id: str) -> None:
        self._check(file_id)
        try:
            with self.database.transaction() as tx:
                tx.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
        except DatabaseError as exc:
            raise BatchStoreError(f"cannot delete file {file_id}: {reason(exc)}") from exc
