"""``tokenomy spend`` on PostgreSQL: whole UTC days from the daily rollup (0006), the whole hours left at the
window's edges from the hourly rollup (0004), and the partial hours at its very ends from the ledger rows (an index
range on ``started_us``), all kept by triggers and summed into the same report ``queries`` builds from the rows
alone. The sums are grouped by (tier, group) in the database and folded here, in exact integers.
"""

from __future__ import annotations

from typing import Any

from tokenomy.db.engine import Tx
from tokenomy.ledger.queries import Window, assemble, calls_owner, owner_filter

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

_COLUMNS = """model, tier, key_id, tenant, deployment, requests, errors, cache_hits, unpriced, cost_pusd,
       counterfactual_pusd, saving_pusd, prompt_tokens, output_tokens, unpriced_tokens, semantic_verifications"""

# The rollups' columns (with the UTC day) and the same figures from one ledger row.
_REQUEST_SOURCE = f"""
SELECT day, {_COLUMNS} FROM spend_rollup_day WHERE day >= :d_lo AND day < :d_hi{{rollup_owner}}
UNION ALL
SELECT hour / 24, {_COLUMNS} FROM spend_rollup
 WHERE ((hour >= :h1_lo AND hour < :h1_hi) OR (hour >= :h2_lo AND hour < :h2_hi)){{rollup_owner}}
UNION ALL
SELECT started_us / 86400000000, COALESCE(served_model, requested_model), COALESCE(tier, ''), COALESCE(key_id, ''),
       COALESCE(tenant, ''), COALESCE(deployment, ''), 1, CASE WHEN status >= 400 THEN 1 ELSE 0 END,
       CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END,
       CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END, COALESCE(cost_pusd, 0), COALESCE(counterfactual_pusd, 0),
       COALESCE(saving_pusd, 0), input_tokens + cached_read_tokens + cache_write_tokens, output_tokens,
       CASE WHEN cost_pusd IS NULL THEN input_tokens + cached_read_tokens + cache_write_tokens + output_tokens
            ELSE 0 END, CASE WHEN cache_status = 'semantic-verify' THEN 1 ELSE 0 END
  FROM requests WHERE ((started_us >= :since AND started_us < :edge_lo)
                       OR (started_us >= :edge_hi AND started_us < :until)){{row_owner}}
"""

_CALL_COLUMNS = """calls, failed_calls, input_tokens, cached_read_tokens, cache_write_tokens, output_tokens,
       reasoning_tokens, cost_pusd"""

_CALL_SOURCE = f"""
SELECT {_CALL_COLUMNS} FROM calls_rollup_day WHERE day >= :d_lo AND day < :d_hi{{rollup_owner}}
UNION ALL
SELECT {_CALL_COLUMNS} FROM calls_rollup
 WHERE ((hour >= :h1_lo AND hour < :h1_hi) OR (hour >= :h2_lo AND hour < :h2_hi)){{rollup_owner}}
UNION ALL
SELECT 1, CASE WHEN outcome = 'error' THEN 1 ELSE 0 END, input_tokens, cached_read_tokens,
       cache_write_5m_tokens + cache_write_1h_tokens, output_tokens, reasoning_tokens, COALESCE(cost_pusd, 0)
  FROM calls WHERE ((started_us >= :since AND started_us < :edge_lo)
                    OR (started_us >= :edge_hi AND started_us < :until)){{call_owner}}
"""

# What each ``--by`` groups on, over the source's columns ('' is an absent value).
_GROUPS = {
    "model": "model",
    "tier": "COALESCE(NULLIF(tier, ''), 'none')",
    "key": "COALESCE(NULLIF(key_id, ''), 'none')",
    "deployment": "COALESCE(NULLIF(deployment, ''), 'none')",
    "day": "to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "team": "COALESCE(NULLIF(tenant, ''), 'none')",
}

_SUMS = ("requests", "errors", "cache_hits", "unpriced", "cost_pusd", "counterfactual_pusd", "saving_pusd",
         "prompt_tokens", "output_tokens", "unpriced_tokens", "semantic_verifications")
_CALL_SUMS = ("calls", "failed_calls", "input_tokens", "cached_read_tokens", "cache_write_tokens", "output_tokens",
              "reasoning_tokens", "cost_pusd")


def _ceil(value: int, unit: int) -> int:
    return -(-value // unit)


def bounds(window: Window) -> dict[str, int]:
    """Whole days ``[d_lo, d_hi)``; the whole hours around them ``[h1_lo, h1_hi)`` and ``[h2_lo, h2_hi)``; and the
    row ranges left at the ends, ``[since, edge_lo)`` and ``[edge_hi, until)`` (every range may be empty)."""
    since, until = window.since_us, window.until_us
    h_lo, h_hi = _ceil(since, HOUR_US), until // HOUR_US
    if h_lo >= h_hi:  # no whole hour: every row comes from the ledger
        return {"d_lo": 0, "d_hi": 0, "h1_lo": 0, "h1_hi": 0, "h2_lo": 0, "h2_hi": 0, "edge_lo": until,
                "edge_hi": until}
    d_lo, d_hi = _ceil(h_lo, 24), h_hi // 24
    if d_lo >= d_hi:  # no whole day: whole hours, then rows
        return {"d_lo": 0, "d_hi": 0, "h1_lo": h_lo, "h1_hi": h_hi, "h2_lo": 0, "h2_hi": 0,
                "edge_lo": h_lo * HOUR_US, "edge_hi": h_hi * HOUR_US}
    return {"d_lo": d_lo, "d_hi": d_hi, "h1_lo": h_lo, "h1_hi": d_lo * 24, "h2_lo": d_hi * 24, "h2_hi": h_hi,
            "edge_lo": h_lo * HOUR_US, "edge_hi": h_hi * HOUR_US}


def rollup_report(tx: Tx, window: Window, by: str | None, *, key_id: str | None = None,
                  tenant: str | None = None) -> dict[str, Any]:
    owner, args = owner_filter(key_id, tenant)
    args.update({"since": window.since_us, "until": window.until_us, **bounds(window)})
    call_owner = calls_owner(owner)
    source = _REQUEST_SOURCE.format(rollup_owner=owner, row_owner=owner)
    group = _GROUPS[by] if by is not None else "''"
    rows = tx.execute(
        f"SELECT COALESCE(NULLIF(tier, ''), 'none') AS tier, {group} AS grp, "
        + ", ".join(f"SUM({c}) AS {c}" for c in _SUMS) + f" FROM ({source}) src GROUP BY 1, 2", args).fetchall()
    calls_source = _CALL_SOURCE.format(rollup_owner=owner, call_owner=call_owner)
    calls = tx.execute("SELECT " + ", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for c in _CALL_SUMS)
                       + f" FROM ({calls_source}) src", args).fetchone()
    totals = dict.fromkeys(_SUMS, 0)
    tiers: dict[str, int] = {}
    groups: dict[str, dict[str, int]] = {}
    for row in rows:
        tiers[row["tier"]] = tiers.get(row["tier"], 0) + int(row["requests"])
        grouped = groups.setdefault(row["grp"], dict.fromkeys(_SUMS, 0))
        for column in _SUMS:
            totals[column] += int(row[column])
            grouped[column] += int(row[column])
    ordered = sorted(groups.items(), key=lambda item: (-item[1]["cost_pusd"], -item[1]["requests"], item[0]))
    group_rows = [{"grp": name, **sums} for name, sums in ordered] if by is not None else None
    tier_mix = sorted(tiers.items(), key=lambda item: (-item[1], item[0]))
    return assemble(window, totals, calls, tier_mix, by, group_rows)
