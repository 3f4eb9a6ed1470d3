"""The spill file: ledger entries the store could not take, appended as JSON lines and replayed later.

Replay renames the file first, writes its entries, then deletes it; a crash in between leaves the renamed file to
be replayed again at the next start, which is harmless because store writes are idempotent on row ids.

Several processes on one box (``serve --workers N``) share the data dir and so the file: appends and replays take
an exclusive ``flock`` on ``<file>.lock``, so no append lands in a file while another process replays it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from tokenomy.ledger.store import LedgerStore


class SpillFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._replaying = path.with_name(path.name + ".replaying")
        self._lock = threading.Lock()
        self._lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This thread's lock, then the file lock every process on the box takes."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append durably (fsync) before returning: a spilled entry survives a crash."""
        if not rows:
            return
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        with self._locked(), open(self.path, "ab+") as fh:
            if fh.tell() > 0:  # a torn line from a crash must not swallow the next entry
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def pending(self) -> bool:
        return self.path.exists() or self._replaying.exists()

    def replay(self, store: LedgerStore, batch_size: int = 1000) -> int:
        """Write every spilled entry to ``store``; returns how many. Raises (and keeps the file) if the store fails."""
        count = 0
        with self._locked():
            while True:
                if not self._replaying.exists():
                    if not self.path.exists():
                        return count
                    os.replace(self.path, self._replaying)
                count += self._replay_file(store, batch_size)
                self._replaying.unlink()

    def _replay_file(self, store: LedgerStore, batch_size: int) -> int:
        count = 0
        batch: list[dict[str, Any]] = []
        with open(self._replaying, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    batch.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a torn last line from a crash mid-append: its entry was never acknowledged
                if len(batch) >= batch_size:
                    store.write(batch)
                    count += len(batch)
                    batch = []
        store.write(batch)
        return count + len(batch)
