"""File contents in PostgreSQL (batch.db_files): two replicas writing the same file at once (both finishing one batch)
leave one whole copy and no error. Before the writers took turns, the second one's insert hit a duplicate key."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.scale.parts import fresh_database

from tokenomy.batch.db_files import DatabaseBlobs
from tokenomy.db.engine import open_database
from tokenomy.ledger.migrate import upgrade


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        upgrade(url)
        yield url


def test_two_writers_of_one_file_leave_one_whole_copy(database_url: str) -> None:
    contents = {name: [f"{name} line {i}".encode() * 40 for i in range(3000)] for name in ("a", "b")}
    errors: list[BaseException] = []
    for attempt in range(8):
        file_id = f"file-race{attempt}"
        start = threading.Barrier(2)

        def write(name: str, file_id: str = file_id, start: threading.Barrier = start) -> None:
            blobs = DatabaseBlobs(open_database(database_url, pooled=False))
            start.wait()
            try:
                blobs.write(file_id, contents[name])
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(name,)) for name in contents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        lines = [line.rstrip(b"\n") for line in DatabaseBlobs(open_database(database_url, pooled=False)).lines(file_id)]
        assert lines in (contents["a"], contents["b"])  # one writer's whole file, not a mix
