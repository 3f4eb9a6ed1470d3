"""Assemble team control for a gateway from Settings, and rebuild budget counters from the ledger on start."""

from __future__ import annotations

import asyncio
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
from tokenomy.ledger.accounting import Pricer, TokenCounter
from tokenomy.ledger.breakdowns import spent_since
from tokenomy.providers.registry import Deployment


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
    await rebuild_budgets(keys, store, keys.store.database)
    limiter = RateLimiter(settings.redis_url, cfg.redis_prefix)
    return Admission(cfg, keys, BudgetGuard(store, wait_s=cfg.budget_wait_s), limiter, pricer, counter, deployments)


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
