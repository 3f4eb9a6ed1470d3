"""Spend reports over the ledger: totals, savings, cache hit rate, tier mix, and groups (model, tier, key, day).

A report reads a SQLite file (a ``Path`` or a ``SQLiteDatabase``: summed over the rows) or a ``PostgresDatabase``
(whole hours from the spend rollup, the window's partial hours from the rows: ``pg_queries``). Both give the same
report for the same ledger.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.db.engine import Database, SQLiteDatabase, Tx, _sqlite_row, _SQLiteTx, reason
from tokenomy.errors import DatabaseError
from tokenomy.ledger.records import from_pusd
from tokenomy.ledger.store import LedgerStoreError

Source = Path | Database  # where a report reads the ledger

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
    SUM(CASE WHEN cache_status = 'semantic-verify' THEN 1 ELSE 0 END) AS semantic_verifications,
    SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END) AS unpriced,
    COALESCE(SUM(cost_pusd), 0) AS cost_pusd,
    COALESCE(SUM(counterfactual_pusd), 0) AS counterfactual_pusd,
    COALESCE(SUM(saving_pusd), 0) AS saving_pusd,
    COALESCE(SUM(input_tokens + cached_read_tokens + cache_write_tokens), 0) AS prompt_tokens,
    COALESCE(SUM(output_tokens), 0) AS output_tokens,
    COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN input_tokens + cached_read_tokens + cache_write_tokens
                      + output_tokens ELSE 0 END), 0) AS unpriced_tokens
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


def spend_report(source: Source, window: Window, by: str | None = None, *, key_id: str | None = None,
                 tenant: str | None = None) -> dict[str, Any]:
    """The report ``tokenomy spend`` prints; every figure is summed in the database, money exactly. ``key_id`` /
    ``tenant`` narrow it to one key's or one team's requests (what a key may see of the ledger)."""
    with reading(source) as tx:
        if tx.dialect == "postgresql":
            from tokenomy.ledger.pg_queries import rollup_report

            return rollup_report(tx, window, by, key_id=key_id, tenant=tenant)
        return _report(tx, window, by, key_id=key_id, tenant=tenant)


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@contextlib.contextmanager
def reading(source: Source) -> Iterator[Tx]:
    """A read of the ledger wherever it is; a missing SQLite file or an unreachable server is one clear error."""
    if isinstance(source, Database) and not isinstance(source, SQLiteDatabase):
        try:
            with source.read() as tx:
                yield tx
        except DatabaseError as exc:
            raise LedgerStoreError(f"cannot read the ledger at {source.describe()}: {reason(exc)}") from exc
        return
    path = source.path if isinstance(source, SQLiteDatabase) else source
    if not path.exists():
        raise LedgerStoreError(f"no ledger at {path}: serve some requests first, or set TOKENOMY_DATABASE_URL")
    try:
        conn = read_only(path)
        conn.row_factory = _sqlite_row
        try:
            yield _SQLiteTx(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LedgerStoreError(f"cannot read the ledger at {path}: {reason(exc)}") from exc


def window_filter(window: Window, *, key_id: str | None = None, tenant: str | None = None
                  ) -> tuple[str, str, dict[str, Any]]:
    """The WHERE clauses for requests and for calls (the calls of the same requests), and their arguments."""
    owner, args = owner_filter(key_id, tenant)
    args.update({"since": window.since_us, "until": window.until_us})
    where = "started_us >= :since AND started_us < :until"
    calls_where = where + calls_owner(owner)
    return where + owner, calls_where, args


def owner_filter(key_id: str | None, tenant: str | None) -> tuple[str, dict[str, Any]]:
    """`` AND key_id = … AND tenant = …`` for the requests a key or team may see, and its arguments."""
    owner, args = "", {}
    if key_id is not None:
        owner += " AND key_id = :key_id"
        args["key_id"] = key_id
    if tenant is not None:
        owner += " AND tenant = :tenant"
        args["tenant"] = tenant
    return owner, args


def calls_owner(owner: str) -> str:
    """The same restriction for call rows: the calls of the requests it admits."""
    return f" AND request_id IN (SELECT id FROM requests WHERE 1 = 1{owner})" if owner else ""


def group_expr(by: str, dialect: str) -> str:
    if by == "day" and dialect == "postgresql":
        return "to_char(to_timestamp(started_us / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return GROUPS[by]


def _report(conn: Tx, window: Window, by: str | None, *, key_id: str | None = None,
            tenant: str | None = None) -> dict[str, Any]:
    """The report summed over the ledger's rows (SQLite; on PostgreSQL the baseline the rollup is measured
    against)."""
    where, calls_where, args = window_filter(window, key_id=key_id, tenant=tenant)
    req = conn.execute(f"SELECT {_REQUEST_SUMS} FROM requests WHERE {where}", args).fetchone()
    calls = conn.execute(f"SELECT {_CALL_SUMS} FROM calls WHERE {calls_where}", args).fetchone()
    tiers = conn.execute(f"SELECT COALESCE(tier, 'none') AS tier, COUNT(*) AS n FROM requests WHERE {where} "
                         "GROUP BY 1 ORDER BY 2 DESC", args).fetchall()
    groups = None
    if by is not None:
        groups = conn.execute(
            f"SELECT {group_expr(by, conn.dialect)} AS grp, {_REQUEST_SUMS} "
            f"FROM requests WHERE {where} GROUP BY 1 ORDER BY cost_pusd DESC, requests DESC, grp", args).fetchall()
    return assemble(window, req, calls, [(row["tier"], int(row["n"])) for row in tiers], by, groups)


def assemble(window: Window, req: Any, calls: Any, tiers: list[tuple[str, int]], by: str | None,
             groups: list[Any] | None) -> dict[str, Any]:
    """The report from its sums: ``req`` and ``calls`` read by column name, ``tiers`` (tier, requests) most first,
    ``groups`` ordered by cost then requests."""
    total = int(req["requests"] or 0)
    hits = int(req["cache_hits"] or 0)
    unpriced = int(req["unpriced"] or 0)
    tokens = int(req["prompt_tokens"] or 0) + int(req["output_tokens"] or 0)
    unpriced_tokens = int(req["unpriced_tokens"] or 0)
    report: dict[str, Any] = {
        "since": _iso(window.since_us), "until": _iso(window.until_us),
        "requests": total, "errors": int(req["errors"] or 0),
        "upstream_calls": int(calls["calls"] or 0), "failed_upstream_calls": int(calls["failed_calls"] or 0),
        "tokens": {k: int(calls[f"{k}_tokens"] or 0) for k in
                   ("input", "cached_read", "cache_write", "output", "reasoning")},
        "cost_usd": _money(int(req["cost_pusd"] or 0)), "upstream_cost_usd": _money(int(calls["cost_pusd"] or 0)),
        "counterfactual_usd": _money(int(req["counterfactual_pusd"] or 0)),
        "saving_usd": _money(int(req["saving_pusd"] or 0)),
        "unpriced_requests": unpriced,
        "unpriced": {"requests": unpriced, "share_of_requests": _ratio(unpriced, total), "tokens": unpriced_tokens,
                     "share_of_tokens": _ratio(unpriced_tokens, tokens)},
        "cache": {"hits": hits, "hit_rate": round(hits / total, 4) if total else 0.0,
                  **_verifications(req)},
        "tier_mix": {tier: round(n / total, 4) for tier, n in tiers} if total else {},
    }
    if by is not None:
        report["by"] = by
        report["groups"] = [
            {"key": row["grp"], "requests": int(row["requests"]), "errors": int(row["errors"] or 0),
             "prompt_tokens": int(row["prompt_tokens"]), "output_tokens": int(row["output_tokens"]),
             "cost_usd": _money(int(row["cost_pusd"])), "saving_usd": _money(int(row["saving_pusd"])),
             "cache_hits": int(row["cache_hits"] or 0)} for row in groups or ()]
    return report


def _verifications(req: Any) -> dict[str, int]:
    """Requests the semantic cache sent upstream to verify a would-be hit (``cache_status = semantic-verify``: real
    spend, in the cost above). Summed from the request rows (SQLite) or the rollups and edge rows (PostgreSQL,
    migration 0011) alike; present only when there were any."""
    try:
        found = int(req["semantic_verifications"] or 0)
    except (KeyError, IndexError):
        return {}
    return {"semantic_verifications": found} if found else {}


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _iso(epoch_us: int) -> str:
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC).isoformat(timespec="seconds")
