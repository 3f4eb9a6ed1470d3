"""Virtual keys and teams: what they may do and spend, stored in the ledger database (``api_keys``, ``teams``).

A key is ``tk-`` plus 32 random bytes (URL-safe base64). Only its SHA-256 and its last 4 characters are stored; the
key itself is returned once, by ``create``. A 256-bit random key needs no slow hash: nothing can be guessed from its
digest. Lookups compare digests with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tokenomy.control.periods import PERIODS
from tokenomy.db.engine import Database, SQLiteDatabase, Tx, reason
from tokenomy.errors import DatabaseError, InvalidRequestError, KeyNotFoundError
from tokenomy.ledger.records import from_pusd, to_pusd
from tokenomy.ledger.store import LedgerStoreError

KEY_PREFIX = "tk-"
MAX_BUDGET_USD = Decimal(1_000_000)
VISIBLE = "[^ \t\n\r\f\v]"  # a name needs one character that is not ASCII white space (same rule in JSON Schema)
_BLANKS = " \t\n\r\f\v"
EDITABLE = frozenset({"name", "team", "models", "budget_usd", "period", "rpm", "tpm", "expires_us", "tags"})


def now_us() -> int:
    return time.time_ns() // 1000


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TeamRecord:
    name: str
    budget_usd: Decimal | None = None
    period: str = "total"
    rpm: int | None = None
    tpm: int | None = None

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "budget_usd": _money(self.budget_usd), "period": self.period, "rpm": self.rpm,
                "tpm": self.tpm}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    key_hash: str
    last4: str
    name: str
    team: str | None = None
    models: tuple[str, ...] | None = None
    budget_usd: Decimal | None = None
    period: str = "total"
    rpm: int | None = None
    tpm: int | None = None
    expires_us: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_us: int = 0
    updated_us: int = 0
    revoked_us: int | None = None

    def refusal(self, at_us: int) -> str | None:
        """Why this key may not be used at ``at_us``, or None."""
        if self.revoked_us is not None:
            return "revoked"
        if self.expires_us is not None and at_us >= self.expires_us:
            return "expired"
        return None

    def public(self) -> dict[str, Any]:
        """What the admin API and ``keys list`` show: never the hash."""
        return {"id": self.id, "name": self.name, "display": f"{KEY_PREFIX}…{self.last4}", "team": self.team,
                "models": list(self.models) if self.models is not None else None,
                "budget_usd": _money(self.budget_usd), "period": self.period, "rpm": self.rpm, "tpm": self.tpm,
                "expires": _iso(self.expires_us), "tags": dict(self.tags), "created": _iso(self.created_us),
                "revoked": _iso(self.revoked_us), "status": self.refusal(now_us()) or "active"}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _iso(epoch_us: int | None) -> str | None:
    if epoch_us is None:
        return None
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC).isoformat(timespec="seconds")


def parse_expiry(text: str) -> int:
    """An ISO date (end of that UTC day is *not* implied: the key expires at its start) or datetime → epoch µs."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequestError(f"expires {text!r}: use an ISO date or datetime, e.g. 2026-12-31",
                                  param="expires") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def check_fields(fields: Mapping[str, Any]) -> None:
    """Reject values no key or team may have; the message names the field."""
    for name in ("rpm", "tpm"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise InvalidRequestError(f"{name} must be a positive integer (got {value!r})", param=name)
    budget = fields.get("budget_usd")
    if budget is not None and (not isinstance(budget, Decimal) or not budget.is_finite() or budget < 0):
        raise InvalidRequestError(f"budget_usd must be a non-negative amount (got {budget})", param="budget_usd")
    if budget is not None and budget > MAX_BUDGET_USD:  # pico-USD in a 64-bit integer, with room for spend
        raise InvalidRequestError(f"budget_usd may be at most {MAX_BUDGET_USD} (got {budget})", param="budget_usd")
    for name, most in (("tags", 50), ("models", 100)):
        if len(fields.get(name) or ()) > most:
            raise InvalidRequestError(f"{name} may hold at most {most} entries", param=name)
    if "period" in fields and fields["period"] not in PERIODS:
        raise InvalidRequestError(f"period must be one of {', '.join(PERIODS)} (got {fields['period']!r})",
                                  param="period")
    if "name" in fields and not (isinstance(fields["name"], str) and fields["name"].strip(_BLANKS)):
        raise InvalidRequestError("name must be a non-empty string", param="name")
    expires = fields.get("expires_us")
    if expires is not None and expires <= now_us():
        raise InvalidRequestError(f"expires {_iso(expires)} is in the past: the key would never work; give a "
                                  "later date (to stop a key now: `tokenomy keys revoke`)", param="expires")


class KeyStore:
    """Keys and teams in the ledger's database (SQLite file or PostgreSQL, migrated before). Every method is one
    short transaction."""

    def __init__(self, source: Path | Database) -> None:
        self.database = source if isinstance(source, Database) else SQLiteDatabase(source, timeout_s=10)

    @contextmanager
    def _db(self) -> Iterator[Tx]:
        try:
            with self.database.transaction() as tx:
                yield tx
        except DatabaseError as exc:
            raise LedgerStoreError(f"key store at {self.database.describe()}: {reason(exc)}") from exc

    def create(self, name: str, **fields: Any) -> tuple[KeyRecord, str]:
        """A new key; returns its record and the key itself (shown once)."""
        check_fields({"name": name, **fields})
        self._name_free(name)
        key = new_key()
        at = now_us()
        record = KeyRecord(id="key_" + secrets.token_hex(8), key_hash=hash_key(key), last4=key[-4:], name=name,
                           created_us=at, updated_us=at, **_typed(fields))
        row = _key_row(record)
        with self._db() as db:
            db.execute(f"INSERT INTO api_keys ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
        return record, key

    def list_keys(self) -> list[KeyRecord]:
        with self._db() as db:
            return [_key_record(r) for r in db.execute("SELECT * FROM api_keys ORDER BY created_us, id")]

    def by_hash(self, key_hash: str) -> tuple[KeyRecord | None, list[TeamRecord]]:
        """One key by its digest (None when no key has it), and every team: what a replica asks the store when a
        key it has not loaded yet is presented."""
        with self._db() as db:
            rows = list(db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,)))
            teams = [_team_record(r) for r in db.execute("SELECT * FROM teams ORDER BY name")]
        return (_key_record(rows[0]) if rows else None), teams

    def teams(self) -> list[TeamRecord]:
        with self._db() as db:
            return [_team_record(r) for r in db.execute("SELECT * FROM teams ORDER BY name")]

    def find(self, key_or_id: str) -> KeyRecord:
        """A key by its value (``tk-…``), its id, or its name when that is unique."""
        keys = self.list_keys()
        if key_or_id.startswith(KEY_PREFIX):
            digest = hash_key(key_or_id)
            found = [k for k in keys if hmac.compare_digest(k.key_hash, digest)]
        else:
            named = [k for k in keys if k.name == key_or_id]
            found = [k for k in keys if k.id == key_or_id] or [k for k in named if k.revoked_us is None] or named
        if len(found) != 1:
            why = "no key" if not found else f"{len(found)} keys"
            raise KeyNotFoundError(f"{why} matches {_shown(key_or_id)}; `tokenomy keys list` shows them")
        return found[0]

    def update(self, key_or_id: str, changes: Mapping[str, Any]) -> KeyRecord:
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise InvalidRequestError(f"cannot change {unknown[0]!r} of a key", param=unknown[0])
        check_fields(changes)
        record = self.find(key_or_id)
        if "name" in changes and changes["name"] != record.name:
            self._name_free(changes["name"])
        row = {k: v for k, v in _key_row(_replace(record, _typed(changes))).items() if k in _changed_columns(changes)}
        row["updated_us"] = now_us()
        with self._db() as db:
            db.execute(f"UPDATE api_keys SET {', '.join(f'{c} = ?' for c in row)} WHERE id = ?",
                       (*row.values(), record.id))
        return self.find(record.id)

    def _name_free(self, name: str) -> None:
        """A name picks a key in ``keys revoke``/``update``: no two keys in use share one."""
        taken = [k for k in self.list_keys() if k.name == name and k.revoked_us is None]
        if taken:
            raise InvalidRequestError(f"a key named {name!r} exists ({taken[0].id}); names pick keys in `tokenomy "
                                      "keys revoke`/`update`: choose another name, or revoke that key first",
                                      param="name")

    def revoke(self, key_or_id: str) -> KeyRecord:
        record = self.find(key_or_id)
        if record.revoked_us is None:
            at = now_us()
            with self._db() as db:
                db.execute("UPDATE api_keys SET revoked_us = ?, updated_us = ? WHERE id = ?", (at, at, record.id))
        return self.find(record.id)

    def set_team(self, name: str, **fields: Any) -> TeamRecord:
        check_fields({"name": name, **fields})
        at = now_us()
        current = {t.name: t for t in self.teams()}.get(name, TeamRecord(name=name))
        team = TeamRecord(name=name, **{**{k: getattr(current, k) for k in ("budget_usd", "period", "rpm", "tpm")},
                                        **fields})
        with self._db() as db:
            db.execute("INSERT INTO teams (name, budget_pusd, period, rpm, tpm, created_us, updated_us) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                       "budget_pusd = excluded.budget_pusd, period = excluded.period, rpm = excluded.rpm, "
                       "tpm = excluded.tpm, updated_us = excluded.updated_us",
                       (name, to_pusd(team.budget_usd), team.period, team.rpm, team.tpm, at, at))
        return team


def _shown(key_or_id: str) -> str:
    """Never echo a key back: name it by its last 4 characters."""
    return f"key …{key_or_id[-4:]}" if key_or_id.startswith(KEY_PREFIX) else repr(key_or_id)


def _typed(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if out.get("models") is not None:
        out["models"] = tuple(out["models"])
    if "tags" in out:
        out["tags"] = dict(out["tags"] or {})
    return out


def _replace(record: KeyRecord, changes: Mapping[str, Any]) -> KeyRecord:
    return replace(record, **changes)


def _changed_columns(changes: Mapping[str, Any]) -> set[str]:
    return {"budget_pusd" if c == "budget_usd" else c for c in changes}


def _key_row(k: KeyRecord) -> dict[str, Any]:
    return {"id": k.id, "key_hash": k.key_hash, "last4": k.last4, "name": k.name, "team": k.team,
            "models": None if k.models is None else orjson.dumps(list(k.models)).decode(),
            "budget_pusd": to_pusd(k.budget_usd), "period": k.period, "rpm": k.rpm, "tpm": k.tpm,
            "expires_us": k.expires_us, "tags": orjson.dumps(k.tags).decode() if k.tags else None,
            "created_us": k.created_us, "updated_us": k.updated_us, "revoked_us": k.revoked_us}


def _key_record(r: Any) -> KeyRecord:
    models = orjson.loads(r["models"]) if r["models"] else None
    return KeyRecord(id=r["id"], key_hash=r["key_hash"], last4=r["last4"], name=r["name"], team=r["team"],
                     models=tuple(models) if models is not None else None, budget_usd=from_pusd(r["budget_pusd"]),
                     period=r["period"], rpm=r["rpm"], tpm=r["tpm"], expires_us=r["expires_us"],
                     tags=orjson.loads(r["tags"]) if r["tags"] else {}, created_us=r["created_us"],
                     updated_us=r["updated_us"], revoked_us=r["revoked_us"])


def _team_record(r: Any) -> TeamRecord:
    return TeamRecord(name=r["name"], budget_usd=from_pusd(r["budget_pusd"]), period=r["period"], rpm=r["rpm"],
                      tpm=r["tpm"])
