"""The collector's view of the heap while serving: what start-up built is frozen out of it.

Everything built once at start (imported modules, the config, the gateway's parts, tokenizers' tables) lives for the
whole process, yet CPython's cyclic collector rescans it on every full collection: a pause that grows with what the
gateway has loaded (83k tracked objects at start, a 40 ms full pass on the 2-core box) and lands on whichever requests
are in flight, i.e. on the p99. ``gc.freeze()`` moves those objects to a permanent generation the collector skips;
objects made while serving are collected as before. ``thawed()`` undoes it at shutdown, so a process that starts and
stops many apps (the tests) does not keep their garbage forever.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def start_up_frozen() -> Iterator[None]:
    """Within: the heap as it is at start is out of the cyclic collector's sight (collected once first)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
