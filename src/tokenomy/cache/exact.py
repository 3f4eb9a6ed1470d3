"""The exact response cache: decide, look up, store. Store failures never fail a request: a broken cache is a miss
(logged once a minute), not an error."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tokenomy.cache.key import CacheDecision, decide
from tokenomy.cache.stores import CacheStoreError, ResponseStore
from tokenomy.outage import OutageLog

log = logging.getLogger("tokenomy.cache")


class ExactCache:
    def __init__(self, store: ResponseStore, *, ttl_s: float, mode: str) -> None:
        self._store, self._ttl_s, self._mode = store, ttl_s, mode
        self.outage = OutageLog("response cache", log)

    def decide(self, body: Mapping[str, Any], headers: Mapping[str, str], namespace: str) -> CacheDecision | None:
        return decide(body, headers, namespace=namespace, mode=self._mode)

    async def get(self, decision: CacheDecision) -> dict[str, Any] | None:
        if not decision.read:
            return None
        try:
            raw = await self._store.get(decision.key)
        except CacheStoreError as exc:
            self.outage.failed(exc.message, "serving without it")
            return None
        self.outage.recovered()
        if raw is None:
            return None
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # a damaged entry is a miss; the fresh answer will overwrite it
        return entry if isinstance(entry, dict) and isinstance(entry.get("completion"), dict) else None

    async def put(self, decision: CacheDecision, completion: dict[str, Any], *, deployment: str, tier: str) -> None:
        """Store an answer with where it came from (``{"completion", "deployment", "tier"}``)."""
        if not decision.write or not completion.get("choices"):
            return
        entry = {"completion": completion, "deployment": deployment, "tier": tier}
        try:
            await self._store.put(decision.key, orjson.dumps(entry), self._ttl_s)
        except CacheStoreError as exc:
            self.outage.failed(exc.message, "serving without it")

    async def aclose(self) -> None:
        close = getattr(self._store, "aclose", None)
        if close is not None:
            await close()
