"""Who is asking: the master key, a virtual key, or (only when no master key is set) anonymous.

Credentials come from ``Authorization: Bearer <key>`` or, for Anthropic-style clients, ``x-api-key``. Keys are held
in memory by digest and re-read from the store every ``key_refresh_s``, so a key revoked on one replica is refused
on every replica within that time; a key not held yet (just made by ``tokenomy keys create`` or another replica)
is looked up in the store on its first use, so it works on the very next request; expiry is checked on every
request. Comparisons are constant-time. Error
messages never contain the key that was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from tokenomy.control.keys import KEY_PREFIX, KeyRecord, KeyStore, TeamRecord, hash_key, now_us
from tokenomy.errors import AuthenticationError, ModelNotAllowedError, TokenomyError
from tokenomy.outage import OutageLog

log = logging.getLogger("tokenomy.control")

MISSES = 10_000  # unknown key digests remembered between refreshes
ASKS = 1_000  # store lookups of keys not loaded yet, at most, between refreshes (a flood of made-up keys is cheap)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["anonymous", "master", "key"]
    key: KeyRecord | None = None
    team: TeamRecord | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def team_name(self) -> str | None:
        return self.key.team if self.key else None

    @property
    def tags_json(self) -> str | None:
        return orjson.dumps(self.key.tags, option=orjson.OPT_SORT_KEYS).decode() if self.key and self.key.tags \
            else None

    @property
    def unrestricted(self) -> bool:
        """True when the caller may use every model (no key, the master key, or a key without a model list)."""
        return self.key is None or self.key.models is None

    def check_model(self, model: str) -> None:
        """The model name asked for must be on the key's list (ModelNotAllowedError, 403)."""
        allowed = self.key.models if self.key else None
        if allowed is not None and model not in allowed:
            raise ModelNotAllowedError(f"this key may not use model '{model}'; it may use: {', '.join(allowed)}",
                                        param="model")

    def may_call(self, model: str, tier: str | None) -> bool:
        """Whether a deployment of ``model`` on ``tier`` may answer this caller: the model, or its tier, is on the
        key's list. Checked on every deployment a request reaches (fallbacks, a router's choices), not only on the
        name asked for."""
        allowed = self.key.models if self.key else None
        return allowed is None or model in allowed or (tier is not None and tier in allowed)


ANONYMOUS = Principal("anonymous")
MASTER = Principal("master")


def credential(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


class KeyCache:
    """Every key and team, by digest, refreshed from the store in the background."""

    def __init__(self, store: KeyStore, master_key: str | None, refresh_s: float) -> None:
        self.store = store
        self._master = master_key.encode() if master_key else None
        self._refresh_s = refresh_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._unknown: set[str] = set()  # digests the store did not know at the last ask (cleared on refresh)
        self._asks_left = ASKS
        self._asking = asyncio.Lock()  # one lookup at a time
        self.teams: dict[str, TeamRecord] = {}
        self._task: asyncio.Task[None] | None = None
        self.outage = OutageLog("key store", log)
        self.loaded = False  # the keys have been read from the store at least once

    @property
    def auth_required(self) -> bool:
        return self._master is not None

    @property
    def keys(self) -> list[KeyRecord]:
        return list(self._by_hash.values())

    async def reload(self) -> None:
        keys, teams = await asyncio.to_thread(lambda: (self.store.list_keys(), self.store.teams()))
        self._by_hash = {k.key_hash: k for k in keys}
        self.teams = {t.name: t for t in teams}
        self._unknown, self._asks_left = set(), ASKS
        self.loaded = True

    async def start(self) -> None:
        """Load the keys; a store that does not answer (a degraded start) leaves only the master key working until
        a refresh reads them."""
        try:
            await self.reload()
        except TokenomyError as exc:
            self.outage.failed(exc.message, "only the master key works until the keys are read")
        self._task = asyncio.create_task(self._refresh(), name="key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.reload()
            except TokenomyError as exc:  # keep serving on the last good copy; the store may be busy for a moment
                self.outage.failed(exc.message, "serving on the keys last read")
            else:
                self.outage.recovered()

    def is_master(self, token: str | None) -> bool:
        return self._master is not None and token is not None and hmac.compare_digest(token.encode(), self._master)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = credential(headers)
        if self.is_master(token):
            return MASTER
        if token is not None and token.startswith(KEY_PREFIX):
            digest = hash_key(token)
            record = self._by_hash.get(digest)
            if record is None:
                record = await self._ask_store(digest)
            if record is None or not hmac.compare_digest(record.key_hash, digest):
                raise AuthenticationError("invalid API key (a tokenomy virtual key that does not exist)")
            why = record.refusal(now_us())
            if why is not None:
                raise AuthenticationError(f"this API key ({KEY_PREFIX}…{record.last4}) is {why}")
            return Principal("key", record, self.teams.get(record.team) if record.team else None)
        if self._master is not None:
            raise AuthenticationError("missing or invalid API key: send 'Authorization: Bearer <key>'"
                                      if token is None else "invalid API key")
        return ANONYMOUS

    async def _ask_store(self, digest: str) -> KeyRecord | None:
        """A key not loaded yet (made a moment ago, by the CLI or another replica): asked of the store, one lookup at
        a time. A digest the store does not know is remembered as unknown until the next refresh (at most ``MISSES``
        of them), and at most ``ASKS`` lookups run between refreshes, so a flood of made-up keys costs the store
        little; a real new key past that budget works from the next refresh on."""
        async with self._asking:
            if digest in self._by_hash:  # asked by a concurrent request meanwhile
                return self._by_hash[digest]
            if digest in self._unknown or self._asks_left <= 0:
                return None
            self._asks_left -= 1
            try:
                record, teams = await asyncio.to_thread(self.store.by_hash, digest)
            except TokenomyError as exc:
                self.outage.failed(exc.message, "a key not loaded yet cannot be checked")
                return None
        if record is None:
            if len(self._unknown) < MISSES:
                self._unknown.add(digest)
            return None
        self._by_hash[digest] = record
        self.teams = {t.name: t for t in teams}
        return record

    async def principal_for(self, key_id: str | None) -> Principal:
        """The principal of a stored key id (work queued under a key, e.g. a batch line), checked as a request
        would be: AuthenticationError when the key is gone, revoked or expired. A key this replica has not loaded
        yet is read from the store first."""
        if key_id is None:
            return ANONYMOUS if self._master is None else MASTER
        record = self._by_id(key_id)
        if record is None:
            await self.reload()
            record = self._by_id(key_id)
        if record is None:
            raise AuthenticationError(f"the key {key_id} that submitted this work no longer exists")
        why = record.refusal(now_us())
        if why is not None:
            raise AuthenticationError(f"the key that submitted this work ({KEY_PREFIX}…{record.last4}) is {why}")
        return Principal("key", record, self.teams.get(record.team) if record.team else None)

    def _by_id(self, key_id: str) -> KeyRecord | None:
        return next((k for k in self._by_hash.values() if k.id == key_id), None)

    def require_master(self, headers: Mapping[str, str]) -> None:
        if self._master is None:
            raise AuthenticationError("the admin API needs a master key: set TOKENOMY_MASTER_KEY")
        if not self.is_master(credential(headers)):
            raise AuthenticationError("the admin API accepts only the master key")
