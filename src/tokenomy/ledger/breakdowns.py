"""The dashboard's views of the ledger, beside ``queries.spend_report`` (its totals are that report, unchanged):
spend and savings per day by strategy, cache hit rates per day, and the most recent requests. Sums run in the
database, money in exact pico-USD; only the prompt-caching saving is priced here (cached tokens × the model's
input-minus-cached rate), because the ledger keeps tokens, not rates.

Strategy of a request's saving (the first that applies): ``exact_cache`` and ``semantic_cache`` (a hit saves the
whole answer), ``batch`` (a batch endpoint), ``routing`` (served by another model than asked for, or routed by a
router), else ``other``. ``prompt_caching`` is the provider discount on cached prompt tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.db.engine import SQLiteDatabase
from tokenomy.ledger.queries import Source, Window, _money, group_expr, reading, window_filter
from tokenomy.ledger.records import from_pusd, to_pusd

STRATEGIES = ("routing", "exact_cache", "semantic_cache", "prompt_caching", "batch", "other")

_STRATEGY = """CASE WHEN cache_status = 'hit' THEN 'exact_cache' WHEN cache_status = 'semantic-hit'
    THEN 'semantic_cache' WHEN endpoint LIKE '%batch%' THEN 'batch'
    WHEN route_reason IS NOT NULL OR requested_model <> COALESCE(served_model, requested_model) THEN 'routing'
    ELSE 'other' END"""

# (model, cached tokens) -> USD saved against paying the full input rate
CachedPricer = Callable[[str, int], Decimal | None]


def daily(source: Source, window: Window, cached_saving: CachedPricer, *, key_id: str | None = None,
          tenant: str | None = None) -> list[dict[str, Any]]:
    """One row per UTC day: requests, cost, savings by strategy, exact and semantic cache hit rates."""
    where, calls_where, args = window_filter(window, key_id=key_id, tenant=tenant)
    with reading(source) as conn:
        day = group_expr("day", conn.dialect)
        rows = conn.execute(
            f"SELECT {day} AS day, {_STRATEGY} AS strategy, COUNT(*) AS n, COALESCE(SUM(cost_pusd), 0) AS cost, "
            f"COALESCE(SUM(saving_pusd), 0) AS saving, "
            f"SUM(CASE WHEN cache_status = 'hit' THEN 1 ELSE 0 END) AS exact_hits, "
            f"SUM(CASE WHEN cache_status = 'semantic-hit' THEN 1 ELSE 0 END) AS semantic_hits "
            f"FROM requests WHERE {where} GROUP BY 1, 2 ORDER BY 1", args).fetchall()
        cached = conn.execute(
            f"SELECT {day} AS day, model, SUM(cached_read_tokens) AS tokens FROM calls WHERE {calls_where} "
            f"AND cached_read_tokens > 0 GROUP BY 1, 2", args).fetchall()
    days: dict[str, dict[str, Any]] = {}
    for row in rows:
        out = days.setdefault(row["day"], _empty_day(row["day"]))
        out["requests"] += int(row["n"])
        out["_cost"] += int(row["cost"])
        out["_saving"][row["strategy"]] += int(row["saving"])
        out["exact_hits"] += int(row["exact_hits"] or 0)
        out["semantic_hits"] += int(row["semantic_hits"] or 0)
    for row in cached:
        saved = cached_saving(row["model"], int(row["tokens"]))
        if saved is not None:
            days.setdefault(row["day"], _empty_day(row["day"]))["_saving"]["prompt_caching"] += to_pusd(saved) or 0
    return [_finish(days[d]) for d in sorted(days)]


def _empty_day(day: str) -> dict[str, Any]:
    return {"day": day, "requests": 0, "_cost": 0, "_saving": dict.fromkeys(STRATEGIES, 0), "exact_hits": 0,
            "semantic_hits": 0}


def _finish(day: dict[str, Any]) -> dict[str, Any]:
    n = day["requests"]
    return {"day": day["day"], "requests": n, "cost_usd": _money(day["_cost"]),
            "saving_usd": {k: _money(v) for k, v in day["_saving"].items()},
            "exact_hit_rate": round(day["exact_hits"] / n, 4) if n else 0.0,
            "semantic_hit_rate": round(day["semantic_hits"] / n, 4) if n else 0.0}


def recent(source: Source, limit: int = 50, *, key_id: str | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` requests, newest first: model, tier, route reason, cache, status, cost and latency."""
    where, args = ("WHERE key_id = :key_id", {"key_id": key_id}) if key_id else ("", {})
    with reading(source) as conn:
        rows = conn.execute(
            f"SELECT id, started_us, ended_us, requested_model, served_model, tier, route_reason, cache_status, "
            f"status, cost_pusd, saving_pusd, key_id, tenant FROM requests {where} "
            f"ORDER BY started_us DESC LIMIT :limit", {**args, "limit": limit}).fetchall()
    return [{"id": r["id"], "started_us": r["started_us"],
             "latency_ms": round((r["ended_us"] - r["started_us"]) / 1000, 1),
             "model": r["served_model"] or r["requested_model"], "requested_model": r["requested_model"],
             "tier": r["tier"], "route_reason": r["route_reason"], "cache": r["cache_status"], "status": r["status"],
             "cost_usd": None if r["cost_pusd"] is None else _money(int(r["cost_pusd"])),
             "saving_usd": None if r["saving_pusd"] is None else _money(int(r["saving_pusd"])),
             "key_id": r["key_id"], "team": r["tenant"]} for r in rows]


def spent_since(source: Source, column: str, value: str, since_us: int) -> int:
    """Pico-USD spent by one key (``key_id``) or team (``tenant``) since ``since_us``: budgets rebuild from this."""
    if column not in ("key_id", "tenant"):
        raise ValueError(column)
    path = source.path if isinstance(source, SQLiteDatabase) else source
    if isinstance(path, Path) and not path.exists():
        return 0
    with reading(source) as conn:
        row = conn.execute(f"SELECT COALESCE(SUM(cost_pusd), 0) FROM requests WHERE {column} = ? "
                           f"AND started_us >= ?", (value, since_us)).fetchone()
    return int(row[0])


def as_usd(pusd: int) -> str:
    return format((from_pusd(pusd) or Decimal(0)).normalize(), "f")
