"""File contents on disk (``files/`` in the data dir; one process, or replicas sharing a volume), their metadata in the
batch store. On PostgreSQL the contents live in the database instead (``db_files``), which every replica reads.

Writes go to a temporary name, are fsynced and then renamed, so a file either exists whole or not at all — a
crash while writing a batch's output leaves nothing half-written behind its id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from tokenomy.errors import NotFoundError

_ID = re.compile(r"file-[A-Za-z0-9_]{1,64}")
CHUNK = 1 << 20


class Blobs(Protocol):
    """Where file contents live: ``FileBlobs`` (a directory) or ``db_files.DatabaseBlobs`` (PostgreSQL)."""

    def write(self, file_id: str, lines: Iterable[bytes]) -> int: ...
    def copy_in(self, file_id: str, source: BinaryIO) -> int: ...
    def open(self, file_id: str) -> BinaryIO: ...
    def lines(self, file_id: str) -> Iterator[bytes]: ...
    def delete(self, file_id: str) -> None: ...


class FileBlobs:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, file_id: str) -> Path:
        if not _ID.fullmatch(file_id):
            raise NotFoundError(f"no such file: {file_id!r}", param="file_id")
        return self.directory / f"{file_id}.jsonl"

    def write(self, file_id: str, lines: Iterable[bytes]) -> int:
        """Write ``lines`` (each ending in a newline or not: one is added) as the file's content; returns bytes."""
        return self._atomic(file_id, (line if line.endswith(b"\n") else line + b"\n" for line in lines))

    def copy_in(self, file_id: str, source: BinaryIO) -> int:
        """Store an uploaded stream as it came (already validated); returns bytes written."""
        return self._atomic(file_id, iter(lambda: source.read(CHUNK), b""))

    def _atomic(self, file_id: str, chunks: Iterable[bytes]) -> int:
        """Write to a temporary name, fsync, rename: the file exists whole or not at all."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(file_id)
        partial = final.with_suffix(".partial")
        size = 0
        with open(partial, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
        return size

    def lines(self, file_id: str) -> Iterator[bytes]:
        """The file's lines, read as they are needed."""
        with self.open(file_id) as handle:
            yield from handle

    def open(self, file_id: str) -> BinaryIO:
        try:
            return open(self.path(file_id), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"the content of file {file_id} is gone", param="file_id") from exc

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)
