"""Request and call ids from the buffered randomness (tokenomy.ids): distinct, the asked length, never repeated by a
forked child (a worker process must not hand out its parent's next ids)."""

from __future__ import annotations

import os

from tokenomy.ids import random_hex


def test_ids_are_distinct_across_refills() -> None:
    ids = [random_hex(12) for _ in range(5000)]  # about 15 refills of the 4 KiB buffer
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
    assert len(random_hex(5000)) == 10000  # more than one buffer at once


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    random_hex(12)  # the parent's buffer holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(random_hex(12) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {random_hex(12) for _ in range(50)}
    assert len(child) == 50
    assert not child & parent
