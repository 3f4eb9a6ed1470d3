"""Build the exact cache a gateway uses from Settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tokenomy.cache.exact import ExactCache
from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evidence import Evidence
from tokenomy.cache.semantic.layer import Embedder, EntryLog, SemanticLayer
from tokenomy.cache.semantic.verifier import load_calibration
from tokenomy.cache.stores import MemoryStore, RedisStore, ResponseStore, SQLiteStore
from tokenomy.config.settings import Settings, data_home
from tokenomy.errors import ConfigError


def cache_problems(settings: Settings, *, calibration: bool = True) -> list[ConfigError]:
    """Everything the cache settings ask for that cannot be built, each naming its key (``tokenomy config check``
    lists them all; the builders below raise the first). ``calibration``: also read the semantic calibration."""
    exact, semantic = settings.cache.exact, settings.cache.semantic
    found = []
    if exact.mode != "off" and exact_store(settings) == "redis" and not settings.redis_url:
        found.append(ConfigError("key 'cache.exact.store': 'redis' needs TOKENOMY_REDIS_URL (or 'redis_url')"))
    if not semantic.enabled:
        return found
    if exact.mode == "off":
        found.append(ConfigError("key 'cache.semantic.enabled': the semantic cache needs the exact cache "
                                 "(cache.exact.mode is 'off')"))
    if not 0 < semantic.max_error < 1:
        found.append(ConfigError(f"key 'cache.semantic.max_error': must be between 0 and 1, got "
                                 f"{semantic.max_error}"))
    if not 0 <= semantic.verify_share <= 1:
        found.append(ConfigError(f"key 'cache.semantic.verify_share': must be between 0 and 1, got "
                                 f"{semantic.verify_share}"))
    if semantic.shift_budget < 0:
        found.append(ConfigError(f"key 'cache.semantic.shift_budget': must not be negative, got "
                                 f"{semantic.shift_budget}"))
    if not 0 < semantic.checker_sensitivity <= 1:
        found.append(ConfigError(f"key 'cache.semantic.checker_sensitivity': must be above 0 and at most 1, got "
                                 f"{semantic.checker_sensitivity}"))
    store, answers = semantic_store(settings), exact_store(settings)
    if store == "redis" and not settings.redis_url:
        found.append(ConfigError("key 'cache.semantic.store': 'redis' needs TOKENOMY_REDIS_URL (or 'redis_url')"))
    if store == "sqlite" and answers != "sqlite":
        found.append(ConfigError("key 'cache.semantic.store': 'sqlite' keeps entries beside their answers in "
                                 f"cache.db, so it needs cache.exact.store 'sqlite' (got '{answers}')"))
    if calibration:
        try:
            load_calibration(Path(semantic.calibration) if semantic.calibration else None)
        except ConfigError as exc:
            found.append(ConfigError(f"key 'cache.semantic.calibration': {exc.message}"))
    return found


def build_exact_cache(settings: Settings, env: Mapping[str, str]) -> ExactCache | None:
    for problem in cache_problems(settings, calibration=False):
        raise problem
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
        assert settings.redis_url is not None  # cache_problems
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
    for problem in cache_problems(settings, calibration=False):
        raise problem
    assert exact is not None  # cache_problems: the exact cache is on
    calibration = load_calibration(Path(cfg.calibration) if cfg.calibration else None)
    evidence = (Evidence(cfg.max_error, checker_sensitivity=cfg.checker_sensitivity, shift_budget=cfg.shift_budget)
                if cfg.policy == "verified" else None)
    cache = SemanticCache(calibration, max_error=cfg.max_error, online=cfg.online,
                          max_entries=cfg.max_entries, evidence=evidence, explore=cfg.verify_share)
    return SemanticLayer(cache, exact, embedder, agreement_cosine=cfg.agreement_cosine,
                         entries=_entry_log(settings, cache, env))


def _entry_log(settings: Settings, cache: SemanticCache, env: Mapping[str, str] | None) -> EntryLog | None:
    """Where entries outlive the process (the store checked by ``cache_problems``)."""
    cfg, store = settings.cache.semantic, semantic_store(settings)
    if store == "redis":
        assert settings.redis_url is not None
        from tokenomy.cache.semantic.shared import SharedEntries

        return SharedEntries(settings.redis_url, f"{settings.control.redis_prefix}semantic:entries", cache,
                             max_entries=cfg.max_entries)
    if store == "sqlite":
        from tokenomy.cache.semantic.persisted import SQLiteEntries

        return SQLiteEntries(data_home(settings, env) / "cache.db", cache, max_entries=cfg.max_entries)
    return None


def semantic_store(settings: Settings) -> str:
    """``cache.semantic.store`` resolved: ``auto`` keeps entries in cache.db when the answers are there too (sqlite),
    shares them through Redis when the answers are there, else memory."""
    store, answers = settings.cache.semantic.store, exact_store(settings)
    if store == "auto":
        return answers if answers in ("redis", "sqlite") else "memory"
    return store
