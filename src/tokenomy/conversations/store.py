"""The Responses API's stored responses, in the ledger's database (SQLite or PostgreSQL; migration 0010): what
``previous_response_id`` continues, what ``GET``/``DELETE /v1/responses/{id}`` and its ``input_items`` read.

Every row has an owner (the caller that made it: a virtual key's id, ``master`` or ``anonymous``) and every read is
scoped to it: another key's response is not found (404), the same as one that never existed. A conversation is
read back in one query, walking ``previous_id`` links (a recursive CTE both engines run) up to ``MAX_TURNS``.
Calls block: the gateway runs them on a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from tokenomy.db.engine import Database, Tx, reason
from tokenomy.errors import DatabaseError

MAX_TURNS = 1000  # responses a conversation is read back through (older ones are left out of the prompt)

_CHAIN = """
WITH RECURSIVE chain(id, previous_id, input_items, response, depth) AS (
    SELECT id, previous_id, input_items, response, 0 FROM responses WHERE id = ? AND owner = ?
    UNION ALL
    SELECT r.id, r.previous_id, r.input_items, r.response, chain.depth + 1
    FROM responses r JOIN chain ON r.id = chain.previous_id
    WHERE r.owner = ? AND chain.depth < ?
)
SELECT id, previous_id, input_items, response FROM chain ORDER BY depth DESC
"""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    created_us: int
    previous_id: str | None
    input_items: list[dict[str, Any]]
    response: dict[str, Any]

    @property
    def items(self) -> list[dict[str, Any]]:
        """The conversation turn it holds: its input items, then its output items."""
        return [*self.input_items, *(self.response.get("output") or [])]


class ResponseStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def _doing(self, what: str) -> Iterator[None]:
        try:
            yield
        except DatabaseError as exc:
            raise DatabaseError(f"cannot {what}: {reason(exc)}") from exc

    def save(self, stored: StoredResponse) -> None:
        with self._doing(f"store response {stored.id}"), self.database.transaction() as tx:
            tx.execute("INSERT INTO responses (id, owner, created_us, previous_id, input_items, response) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (stored.id, stored.owner, stored.created_us, stored.previous_id,
                        orjson.dumps(stored.input_items).decode(), orjson.dumps(stored.response).decode()))

    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        with self._doing(f"read response {response_id}"), self.database.read() as tx:
            row = tx.execute("SELECT id, owner, created_us, previous_id, input_items, response FROM responses "
                             "WHERE id = ? AND owner = ?", (response_id, owner)).fetchone()
        return _stored(row) if row is not None else None

    def delete(self, response_id: str, owner: str) -> bool:
        with self._doing(f"delete response {response_id}"), self.database.transaction() as tx:
            return _deleted(tx, response_id, owner)

    def conversation(self, response_id: str, owner: str) -> list[StoredResponse] | None:
        """The responses ``response_id`` continues, oldest first, ending with it; None when the owner has no such
        response."""
        with self._doing(f"read the conversation of response {response_id}"), self.database.read() as tx:
            rows = tx.execute(_CHAIN, (response_id, owner, owner, MAX_TURNS)).fetchall()
        if not rows:
            return None
        return [StoredResponse(r[0], owner, 0, r[1], orjson.loads(r[2]), orjson.loads(r[3])) for r in rows]


def _stored(row: Any) -> StoredResponse:
    return StoredResponse(id=row[0], owner=row[1], created_us=int(row[2]), previous_id=row[3],
                          input_items=orjson.loads(row[4]), response=orjson.loads(row[5]))


def _deleted(tx: Tx, response_id: str, owner: str) -> bool:
    return tx.execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)).rowcount > 0
