"""Assemble team control for a gateway from Settings, and rebuild budget counters from the ledger on start."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from tokenomy.config.settings import Settings
from tokenomy.control.admission import Admission, budget_scopes
from tokenomy.control.auth import KeyCache, Principal
from tokenomy.control.budgets import BudgetGuard, BudgetStore, SQLBudgetStore
from tokenomy.control.keys import KeyStore
from tokenomy.control.periods import period_start_us
from tokenomy.control.ratelimit import RateLimiter
from tokenomy.db.engine import Database
from tokenomy.errors import StoreUnavailableError, TokenomyError
from tokenomy.ledger.accounting import Pricer, TokenCounter
from tokenomy.ledger.breakdowns import spent_since
from tokenomy.providers.registry import Deployment

log = logging.getLogger("tokenomy.control")
REBUILD_RETRY_S = 5.0


async def build_admission(settings: Settings, opener: Callable[[], Database], pricer: Pricer,
                          counter: TokenCounter | None, deployments: Sequence[Deployment]) -> Admission:
    """Keys loaded, budget counters rebuilt from the ledger (the ledger must be migrated and its spill replayed)."""
    cfg = settings.control
    store: BudgetStore
    if settings.redis_url:
        from tokenomy.control.redis_budgets import RedisBudgetStore

        store = RedisBudgetStore(settings.redis_url, cfg.redis_prefix, reservation_ttl_s=cfg.reservation_ttl_s)
    else:
        store = SQLBudgetStore(opener())
    keys = KeyCache(KeyStore(opener()), cfg.master_key, cfg.key_refresh_s)
    await keys.start()
    limiter = RateLimiter(settings.redis_url, cfg.redis_prefix)
    admission = Admission(cfg, keys, BudgetGuard(store, wait_s=cfg.budget_wait_s), limiter, pricer, counter,
                          deployments)
    try:
        if not keys.loaded:
            raise StoreUnavailableError("the key store did not answer")
        await rebuild_budgets(keys, store, keys.store.database)
    except TokenomyError as exc:  # a degraded start: the ledger's database is down
        log.error("budget counters not rebuilt from the ledger (%s); trying again every %.0f s", exc.message,
                  REBUILD_RETRY_S)
        admission.in_background(_rebuild_when_up(keys, store))
    return admission


async def _rebuild_when_up(keys: KeyCache, store: BudgetStore) -> None:
    while True:
        await asyncio.sleep(REBUILD_RETRY_S)
        try:
            await keys.reload()
            await rebuild_budgets(keys, store, keys.store.database)
        except TokenomyError:
            continue
        log.warning("budget counters rebuilt from the ledger")
        return


async def rebuild_budgets(keys: KeyCache, store: BudgetStore, database: Database) -> None:
    now = time.time_ns() // 1000
    counters: dict[tuple[str, str], int] = {}
    for key in keys.keys:
        for scope in budget_scopes(Principal("key", key, keys.teams.get(key.team) if key.team else None)):
            if scope.counter(now) in counters:
                continue
            kind, _, name = scope.name.partition(":")
            column = "key_id" if kind == "key" else "tenant"
            counters[scope.counter(now)] = await asyncio.to_thread(
                spent_since, database, column, name, period_start_us(scope.period, now))
    await store.prime((scope, period, spent) for (scope, period), spent in counters.items())
