"""Random ids made on the request path (request and call ids), from a buffer of the OS's randomness.

``os.urandom`` releases the GIL around its system call. Called on the event loop's thread once or twice per request,
it hands the interpreter to whichever thread is waiting for it (the ledger writer, a worker thread), and the request
waits until that thread lets go: 1.5 µs alone, 45 µs per call measured in the gateway under load at 500 requests/s.
Here one 4 KiB read serves 341 ids of 12 bytes; the ids are as unpredictable as ``os.urandom``'s own. A forked child
starts with an empty buffer (it must never repeat its parent's ids).
"""

from __future__ import annotations

import os
import threading

_REFILL = 4096


class _Randomness:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def hex(self, nbytes: int) -> str:
        with self._lock:
            if self._at + nbytes > len(self._buffer):
                self._buffer, self._at = os.urandom(max(_REFILL, nbytes)), 0
            start = self._at
            self._at += nbytes
            return self._buffer[start:self._at].hex()

    def forget(self) -> None:
        self._lock = threading.Lock()  # a lock held by another thread at fork time would stay held in the child
        self._buffer, self._at = b"", 0


_RANDOMNESS = _Randomness()
os.register_at_fork(after_in_child=_RANDOMNESS.forget)


def random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes from the OS, as hex."""
    return _RANDOMNESS.hex(nbytes)
