"""Build the exact cache a gateway uses from Settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tokenomy.cache.exact import ExactCache
from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.layer import Embedder, EntryLog, SemanticLayer
from tokenomy.cache.semantic.verifier import load_calibration
from tokenomy.cache.stores import MemoryStore, RedisStore, ResponseStore, SQLiteStore
from tokenomy.config.settings import Settings, data_home
from tokenomy.errors import ConfigError


def build_exact_cache(settings: Settings, env: Mapping[str, str]) -> ExactCache | None:
    cfg = settings.cache.exact
    if cfg.mode == "off":
        return None
    store: ResponseStore
    kind = exact_store(settings)
    if kind == "memory":
        store = MemoryStore(cfg.max_bytes)
    elif kind == "sqlite":
        store = SQLiteStore(data_home(settings, env) / "cache.db", cfg.max_bytes)
    else:
        if not settings.redis_url:
            raise ConfigError("key 'cache.exact.store': 'redis' needs TOKENOMY_REDIS_URL (or 'redis_url')")
        store = RedisStore(settings.redis_url, f"{settings.control.redis_prefix}exact:")
    return ExactCache(store, ttl_s=cfg.ttl_s, mode=cfg.mode)


def exact_store(settings: Settings) -> str:
    """``cache.exact.store`` resolved: ``auto`` is redis when a Redis URL is set, else sqlite."""
    store = settings.cache.exact.store
    if store == "auto":
        return "redis" if settings.redis_url else "sqlite"
    return store


def build_semantic_layer(settings: Settings, exact: ExactCache | None, embedder: Embedder,
                         env: Mapping[str, str] | None = None) -> SemanticLayer | None:
    """The semantic cache rides on the exact cache (it stores answers there), so it needs one."""
    cfg = settings.cache.semantic
    if not cfg.enabled:
        return None
    if exact is None:
        raise ConfigError("key 'cache.semantic.enabled': the semantic cache needs the exact cache (cache.exact.mode "
                          "is 'off')")
    if not 0 < cfg.max_error < 1:
        raise ConfigError(f"key 'cache.semantic.max_error': must be between 0 and 1, got {cfg.max_error}")
    calibration = load_calibration(Path(cfg.calibration) if cfg.calibration else None)
    cache = SemanticCache(calibration, max_error=cfg.max_error, online=cfg.online,
                          max_entries=cfg.max_entries)
    return SemanticLayer(cache, exact, embedder, agreement_cosine=cfg.agreement_cosine,
                         entries=_entry_log(settings, cache, env))


def _entry_log(settings: Settings, cache: SemanticCache, env: Mapping[str, str] | None) -> EntryLog | None:
    """Where entries outlive the process: ``auto`` keeps them in cache.db when the answers are there too."""
    cfg, answers = settings.cache.semantic, exact_store(settings)
    store = cfg.store if cfg.store != "auto" else answers if answers in ("redis", "sqlite") else "memory"
    if store == "redis":
        if not settings.redis_url:
            raise ConfigError("key 'cache.semantic.store': 'redis' needs TOKENOMY_REDIS_URL (or 'redis_url')")
        from tokenomy.cache.semantic.shared import SharedEntries

        return SharedEntries(settings.redis_url, f"{settings.control.redis_prefix}semantic:entries", cache,
                             max_entries=cfg.max_entries)
    if store == "sqlite":
        if answers != "sqlite":
            raise ConfigError("key 'cache.semantic.store': 'sqlite' keeps entries beside their answers in cache.db, "
                              f"so it needs cache.exact.store 'sqlite' (got '{answers}')")
        from tokenomy.cache.semantic.persisted import SQLiteEntries

        return SQLiteEntries(data_home(settings, env) / "cache.db", cache, max_entries=cfg.max_entries)
    return None
