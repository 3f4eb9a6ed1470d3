"""Spend reports over the ledger: totals, savings, cache hit rate, tier mix, and groups (model, tier, key, day)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.ledger.records import from_pusd
from tokenomy.ledger.store import LedgerStoreError

GROUPS = {
    "model": "COALESCE(served_model, requested_model)",
    "tier": "COALESCE(tier, 'none')",
    "key": "COALESCE(key_id, 'none')",
    "deployment": "COALESCE(deployment, 'none')",
    "day": "strftime('%Y-%m-%d', started_us / 1000000, 'unixepoch')",
    "team": "COALESCE(tenant, 'none')",
}

_REQUEST_SUMS = """
    COUNT(*) AS requests,
    SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END) AS cache_hits,
    SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END) AS unpriced,
    COALESCE(SUM(cost_pusd), 0) AS cost_pusd,
    COALESCE(SUM(counterfactual_pusd), 0) AS counterfactual_pusd,
    COALESCE(SUM(saving_pusd), 0) AS saving_pusd
"""

_CALL_SUMS = """
    COUNT(*) AS calls,
    SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END) AS failed_calls,
    COALESCE(SUM(input_tokens), 0) AS input_tokens,
    COALESCE(SUM(cached_read_tokens), 0) AS cached_read_tokens,
    COALESCE(SUM(cache_write_5m_tokens + cache_write_1h_tokens), 0) AS cache_write_tokens,
    COALESCE(SUM(output_tokens), 0) AS output_tokens,
    COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,
    COALESCE(SUM(cost_pusd), 0) AS cost_pusd
"""


@dataclass(frozen=True, slots=True)
class Window:
    since_us: int
    until_us: int


def _money(pusd: int) -> str:
    value = from_pusd(pusd) or Decimal(0)
    return format(value.normalize(), "f") if value else "0"


def spend_report(path: Path, window: Window, by: str | None = None, *, key_id: str | None = None,
                 tenant: str | None = None) -> dict[str, Any]:
    """The report ``tokenomy spend`` prints; every figure is summed in the database, money exactly. ``key_id`` /
    ``tenant`` narrow it to one key's or one team's requests (what a key may see of the ledger)."""
    if not path.exists():
        raise LedgerStoreError(f"no ledger at {path}: serve some requests first, or set TOKENOMY_DATABASE_URL")
    try:
        conn = read_only(path)
        try:
            return _report(conn, window, by, key_id=key_id, tenant=tenant)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LedgerStoreError(f"cannot read the ledger at {path}: {exc}") from exc


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def window_filter(window: Window, *, key_id: str | None = None, tenant: str | None = None
                  ) -> tuple[str, str, dict[str, Any]]:
    """The WHERE clauses for requests and for calls (the calls of the same requests), and their arguments."""
    args: dict[str, Any] = {"since": window.since_us, "until": window.until_us}
    where = "started_us >= :since AND started_us < :until"
    owner = ""
    if key_id is not None:
        owner += " AND key_id = :key_id"
        args["key_id"] = key_id
    if tenant is not None:
        owner += " AND tenant = :tenant"
        args["tenant"] = tenant
    calls_where = where + (f" AND request_id IN (SELECT id FROM requests WHERE 1 = 1{owner})" if owner else "")
    return where + owner, calls_where, args


def _report(conn: sqlite3.Connection, window: Window, by: str | None, *, key_id: str | None = None,
            tenant: str | None = None) -> dict[str, Any]:
    conn.row_factory = sqlite3.Row
    where, calls_where, args = window_filter(window, key_id=key_id, tenant=tenant)
    req = conn.execute(f"SELECT {_REQUEST_SUMS} FROM requests WHERE {where}", args).fetchone()
    calls = conn.execute(f"SELECT {_CALL_SUMS} FROM calls WHERE {calls_where}", args).fetchone()
    tiers = conn.execute(f"SELECT COALESCE(tier, 'none') AS tier, COUNT(*) AS n FROM requests WHERE {where} "
                         "GROUP BY 1 ORDER BY 2 DESC", args).fetchall()
    total = int(req["requests"] or 0)
    report: dict[str, Any] = {
        "since": _iso(window.since_us), "until": _iso(window.until_us),
        "requests": total, "errors": int(req["errors"] or 0),
        "upstream_calls": int(calls["calls"]), "failed_upstream_calls": int(calls["failed_calls"] or 0),
        "tokens": {k: int(calls[f"{k}_tokens"]) for k in
                   ("input", "cached_read", "cache_write", "output", "reasoning")},
        "cost_usd": _money(int(req["cost_pusd"])), "upstream_cost_usd": _money(int(calls["cost_pusd"])),
        "counterfactual_usd": _money(int(req["counterfactual_pusd"])), "saving_usd": _money(int(req["saving_pusd"])),
        "unpriced_requests": int(req["unpriced"] or 0),
        "cache": {"hits": int(req["cache_hits"] or 0),
                  "hit_rate": round(int(req["cache_hits"] or 0) / total, 4) if total else 0.0},
        "tier_mix": {row["tier"]: round(row["n"] / total, 4) for row in tiers} if total else {},
    }
    if by is not None:
        report["by"] = by
        report["groups"] = _groups(conn, where, args, by)
    return report


def _groups(conn: sqlite3.Connection, where: str, args: dict[str, Any], by: str) -> list[dict[str, Any]]:
    expr = GROUPS[by]
    rows = conn.execute(
        f"SELECT {expr} AS grp, {_REQUEST_SUMS}, COALESCE(SUM(input_tokens + cached_read_tokens + cache_write_tokens), "
        f"0) AS prompt_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens "
        f"FROM requests WHERE {where} GROUP BY 1 ORDER BY cost_pusd DESC, requests DESC", args).fetchall()
    return [{"key": row["grp"], "requests": int(row["requests"]), "errors": int(row["errors"] or 0),
             "prompt_tokens": int(row["prompt_tokens"]), "output_tokens": int(row["output_tokens"]),
             "cost_usd": _money(int(row["cost_pusd"])), "saving_usd": _money(int(row["saving_pusd"])),
             "cache_hits": int(row["cache_hits"] or 0)} for row in rows]


def _iso(epoch_us: int) -> str:
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC).isoformat(timespec="seconds")
