"""Build the exact cache a gateway uses from Settings."""

from __future__ import annotations

from collections.abc import Mapping

from tokenomy.cache.exact import ExactCache
from tokenomy.cache.stores import MemoryStore, RedisStore, ResponseStore, SQLiteStore
from tokenomy.config.settings import Settings, data_home
from tokenomy.errors import ConfigError


def build_exact_cache(settings: Settings, env: Mapping[str, str]) -> ExactCache | None:
    cfg = settings.cache.exact
    if cfg.mode == "off":
        return None
    store: ResponseStore
    if cfg.store == "memory":
        store = MemoryStore(cfg.max_bytes)
    elif cfg.store == "sqlite":
        store = SQLiteStore(data_home(settings, env) / "cache.db", cfg.max_bytes)
    else:
        if not settings.redis_url:
            raise ConfigError("key 'cache.exact.store': 'redis' needs TOKENOMY_REDIS_URL (or 'redis_url')")
        store = RedisStore(settings.redis_url)
    return ExactCache(store, ttl_s=cfg.ttl_s, mode=cfg.mode)
