"""Stored responses in the ledger's database, on SQLite and on PostgreSQL: a conversation read back oldest first in
one query, every read scoped to its owner, deletion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.scale.parts import fresh_database

from tokenomy.conversations.store import ResponseStore, StoredResponse
from tokenomy.db.engine import open_database
from tokenomy.ledger.migrate import upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResponseStore]:
    if request.param == "sqlite":
        url = str(tmp_path / "ledger.db")
        upgrade(url)
        database = open_database(url)
        yield ResponseStore(database)
        database.close()
        return
    with fresh_database() as url:
        upgrade(url)
        database = open_database(url)
        yield ResponseStore(database)
        database.close()


def turn(i: int, owner: str = "key_a", previous: str | None = None) -> StoredResponse:
    return StoredResponse(id=f"resp_{i}", owner=owner, created_us=1000 + i, previous_id=previous,
                          input_items=[{"id": f"msg_{i}", "type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": f"question {i}"}]}],
                          response={"id": f"resp_{i}", "output": [{"id": f"out_{i}", "type": "message",
                                                                   "role": "assistant", "content": []}]})


def test_a_conversation_reads_back_oldest_first(store: ResponseStore) -> None:
    for i in range(1, 4):
        store.save(turn(i, previous=f"resp_{i - 1}" if i > 1 else None))
    found = store.conversation("resp_3", "key_a")
    assert found is not None and [r.id for r in found] == ["resp_1", "resp_2", "resp_3"]
    assert [item["id"] for item in found[0].items] == ["msg_1", "out_1"]  # its input, then its output
    assert [r.id for r in store.conversation("resp_2", "key_a") or []] == ["resp_1", "resp_2"]
    again = store.get("resp_2", "key_a")
    assert again is not None and again.previous_id == "resp_1" and again.input_items == turn(2).input_items


def test_another_owner_finds_nothing(store: ResponseStore) -> None:
    store.save(turn(1))
    store.save(turn(2, owner="key_b", previous="resp_1"))  # another key cannot continue key_a's conversation
    assert store.get("resp_1", "key_b") is None and store.conversation("resp_1", "key_b") is None
    assert [r.id for r in store.conversation("resp_2", "key_b") or []] == ["resp_2"]
    assert store.delete("resp_1", "key_b") is False and store.get("resp_1", "key_a") is not None


def test_deleting_a_turn_ends_the_conversation_there(store: ResponseStore) -> None:
    for i in range(1, 4):
        store.save(turn(i, previous=f"resp_{i - 1}" if i > 1 else None))
    assert store.delete("resp_2", "key_a") is True and store.delete("resp_2", "key_a") is False
    assert [r.id for r in store.conversation("resp_3", "key_a") or []] == ["resp_3"]
    assert store.get("resp_2", "key_a") is None
