"""The audit as one JSON-ready document; ``terminal.py`` and ``html.py`` render this same document, so the terminal,
``--json`` and ``--html`` show the same numbers.

The document carries ``queries_per_day``, ``input_tokens``, ``output_tokens`` (means per request) and, when the log
covers at least a day, ``hourly_share`` (requests by UTC hour) at top level, so ``tokenomy plan --from-audit``
reads it as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenomy.audit.analyse import MIN_WINDOW_S, Audit, Totals
from tokenomy.audit.detector import DetectorQuality
from tokenomy.audit.run import AuditRun, monthly
from tokenomy.audit.selfhost import small_tier_break_even
from tokenomy.audit.strategies import SHORT_PROMPT_CHARS, STRATEGIES

HOURLY_UP_TO_S = 2 * 86_400  # the terminal and the page table spend by clock hour up to this span, else by day


def _usd(value: Decimal) -> float:
    return float(round(value, 6))


def _totals(t: Totals) -> dict[str, Any]:
    return {"requests": t.requests, "cost_usd": _usd(t.cost_usd), "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens}


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def audit_document(run: AuditRun) -> dict[str, Any]:
    a, s = run.audit, run.audit.assumptions
    n, window = a.total.requests, a.window_s
    alone, combined = dict(a.alone), a.combined
    semantic, semantic_range = _semantic(run)
    if semantic_range is not None:
        alone["semantic_cache"], extra, low, high = semantic_range
        combined += extra
    order = [k for k in ("exact_cache", "semantic_cache", *STRATEGIES[1:]) if k in alone]
    per_month = {k: monthly(alone[k], window, s.days_per_month) for k in order}
    per_month["combined"] = monthly(combined, window, s.days_per_month)
    spend_month = monthly(a.total.cost_usd, window, s.days_per_month)
    doc: dict[str, Any] = {
        "queries_per_day": max(1, round(n * 86_400 / window)),
        "input_tokens": round(a.total.input_tokens / n),
        "output_tokens": round(a.total.output_tokens / n),
        "requests": n, "days": round(window / 86_400, 6), "window": _window(a), "rate": _rate(a),
        "formats": run.formats,
        "bad_lines": {"count": run.bad.count,
                      "first": [{"file": f, "line": line, "reason": r} for f, line, r in run.bad.first]},
        "usage": dict(a.usage_source), "unpriced": _unpriced(a), "unpriced_requests": dict(a.unpriced),
        "spend": {"total_usd": _usd(a.total.cost_usd), "monthly_usd": _usd(spend_month),
                  "by_model": {m: _totals(t) for m, t in sorted(a.by_model.items(), key=lambda kv: -kv[1].cost_usd)},
                  "by_day": {d: _totals(t) for d, t in sorted(a.by_day.items())},
                  "by_hour": {h: _totals(t) for h, t in sorted(a.by_clock_hour.items())},
                  "requests_by_hour": list(a.by_hour)},
        "exact_repeats": {"requests": a.repeats, "share": _share(a.repeats, a.with_body),
                          "cost_usd": _usd(a.alone["exact_cache"]), "ttl_s": s.exact_ttl_s},
        "shared_prefix": {"requests": a.prefix_hits, "tokens": a.prefix_hit_tokens,
                          "share_of_input_tokens": _share(a.prefix_hit_tokens, a.total.input_tokens),
                          "ttl_s": s.prefix_ttl_s, "min_tokens": s.prefix_min_tokens},
        "semantic_cache": semantic,
        "routing": _routing(run),
        "batch": {"batchable_requests": round(a.batch_weight, 1), "share": _share(a.batch_weight, n),
                  "assumed_share_of_unmarked": s.batchable_share},
        "savings": {"monthly_usd": {k: _usd(v) for k, v in per_month.items()},
                    "share_of_spend": {k: _share(float(v), float(spend_month)) for k, v in per_month.items()},
                    "order": order},
        "assumptions": assumption_lines(run),
    }
    if semantic_range is not None:
        doc["savings"]["range_monthly_usd"] = {"semantic_cache": [
            _usd(monthly(low, window, s.days_per_month)), _usd(monthly(high, window, s.days_per_month))]}
    if any(a.by_hour) and (a.span_s or 0) >= 86_400:
        doc["hourly_share"] = list(a.by_hour)
    doc["self_host_small_tier"] = small_tier_break_even(doc, a.catalogue)
    return doc


def _window(a: Audit) -> dict[str, Any]:
    span, window = a.span_s, a.window_s
    caveat = None
    if span is None:
        caveat = "the log has no timestamps: one day is assumed, so every per-day and per-month figure is a guess"
    elif span < 86_400:
        caveat = (f"extrapolated from {duration(span)} of traffic: a window shorter than a day misses the daily and "
                  "weekly cycles, so the monthly figures are a straight scale-up of this window")
    elif span < 6 * 86_400:
        caveat = (f"extrapolated from {duration(span)} of traffic: a window shorter than a week misses the weekly "
                  "cycle")
    return {"first": _iso(a.first_ts), "last": _iso(a.last_ts), "span_s": None if span is None else round(span, 3),
            "scaled_s": round(window, 3), "month_scale": round(30 * 86_400 / window, 4), "caveat": caveat,
            "min_window_s": MIN_WINDOW_S}


def _rate(a: Audit) -> dict[str, Any]:
    """Mean requests per minute over the window, and the most in any 60 s (sliding), with when that minute ended."""
    if not a.timed:
        return {"requests_per_minute_mean": None, "requests_per_minute_peak": None, "peak_minute_ends": None}
    return {"requests_per_minute_mean": round(a.timed * 60 / a.window_s, 2),
            "requests_per_minute_peak": a.peak_per_minute, "peak_minute_ends": _iso(a.peak_ends)}


def _unpriced(a: Audit) -> dict[str, Any]:
    requests = sum(a.unpriced.values())
    tokens = a.total.input_tokens + a.total.output_tokens
    return {"requests": requests, "share_of_requests": _share(requests, a.total.requests),
            "tokens": a.unpriced_tokens, "share_of_tokens": _share(a.unpriced_tokens, tokens),
            "models": dict(a.unpriced.most_common())}


def duration(seconds: float) -> str:
    if seconds < 3_600:
        return f"{seconds / 60:.1f} minutes"
    if seconds < 2 * 86_400:
        return f"{seconds / 3_600:.1f} hours"
    return f"{seconds / 86_400:.1f} days"


def _semantic(run: AuditRun) -> tuple[dict[str, Any], tuple[Decimal, Decimal, Decimal, Decimal] | None]:
    """The document's ``semantic_cache`` part, and (saving, combined extra, low, high) in USD over the log when
    measured: the sample's hit cost scaled to all non-repeat requests, corrected by the detector's precision over
    recall, with the range from the estimate's interval."""
    p = run.paraphrases
    if p is None:
        return {"measured": False, "note": run.semantic_note}, None
    quality = DetectorQuality.load()
    estimate = quality.estimate(p.hits, p.sampled)
    observed = p.hits / p.sampled if p.sampled else 0.0
    scale = run.audit.fresh_cost_usd / p.sample_cost_usd if p.sample_cost_usd else Decimal(0)
    if p.hits:
        per_share = p.cost_usd * scale / Decimal(str(observed))
        extra = p.remaining_usd * scale * Decimal(str(estimate.value / observed))
    else:  # no hit: the range still has an upper end, at the mean cost of a non-repeat request
        per_share, extra = run.audit.fresh_cost_usd, Decimal(0)
    usd = [per_share * Decimal(str(x)) for x in (estimate.value, estimate.low, estimate.high)]
    doc = {"measured": True, "note": run.semantic_note, "sampled": p.sampled, "hits": p.hits,
           "share": _share(p.hits, p.sampled), "cost_usd": _usd(p.cost_usd),
           "estimated_share": estimate.document(),
           "detector": {"threshold": quality.threshold, "precision": quality.precision().document(),
                        "recall": quality.recall().document(), "measured_on": quality.pairs_source}}
    return doc, (usd[0], extra, usd[1], usd[2])


def _routing(run: AuditRun) -> dict[str, Any]:
    a, s = run.audit, run.audit.assumptions
    if a.router is not None:
        quality = a.router.quality()
        return {"method": a.router.label, "small_model": None, "decisions": a.router.decisions,
                "mix": dict(a.router.mix.most_common()), "routable_requests": a.routable,
                "share": _share(a.routable, a.with_body), "quality": quality}
    return {"method": "heuristic", "small_model": s.small_model, "decisions": None, "mix": None,
            "routable_requests": a.routable, "share": _share(a.routable, a.with_body),
            "quality": {"measured": False,
                        "note": "a prompt-length heuristic; whether the small model answers these well is not "
                                "measured (give --router DIR for a trained router and its measured quality)"}}


def assumption_lines(run: AuditRun) -> list[str]:
    s = run.audit.assumptions
    routing = (f"routing ({run.audit.router.label}): the trained router decides on the last user message; a model "
               "other than its frontier is priced from the catalogue, or at the router's estimated cost ratio when "
               "the catalogue does not list it" if run.audit.router else
               f"routing (a length heuristic, no trained router): a last user message <= {SHORT_PROMPT_CHARS} "
               f"characters with no code/maths markers and <= 2 numbers goes to {s.small_model} (the cheapest "
               "mid-tier model at a 3:1 blend) when that is cheaper; its quality is not measured")
    return [
        f"monthly = the log's figures x {s.days_per_month} days / the time the log spans (first to last request, "
        f"at least {MIN_WINDOW_S:.0f} s; one day when it has no timestamps)",
        "costs: as logged (ledger), else usage x the catalogue's rates on the request's UTC date; without usage, "
        "prompt tokens are counted offline (tiktoken) and output from the reply text when the log has it; a model no "
        "price covers is counted as unpriced (share shown), never as $0",
        f"exact cache: a request whose cache key (model, messages, sampling parameters; not stream/user/metadata) "
        f"was seen within {s.exact_ttl_s // 3600} h is answered free; counts every repeat, as cache mode 'all' does",
        f"prompt caching: a prefix (tools + messages before the last user turn) of >= {s.prefix_min_tokens} tokens "
        f"seen within {s.prefix_ttl_s // 60} min is billed at the cached-input rate",
        routing,
        f"batch: requests whose metadata says batch/latency_tolerant move to batch rates; streamed ones never; "
        f"{s.batchable_share:.0%} of the other non-streamed ones are assumed latency-tolerant",
        f"semantic cache: {run.semantic_note}; a hit is a same-model, same-prefix request within the exact-cache "
        "TTL with the same numbers in it; the sample's hit cost is scaled to all non-repeat requests by cost and "
        "corrected by the detector's measured precision / recall (range from their 95 % intervals)",
        "combined: exact cache, then semantic cache, then routing, then prompt caching, then batch, applied per "
        "request in that order (the semantic share scaled from its sample)",
        "the log is read in time order: a repeat or shared prefix is one seen earlier in the files",
    ]


def first_line(doc: dict[str, Any]) -> str:
    """What the log covers and costs, the month it scales to, and the unpriced share (plain text, no markup)."""
    window, spend, unpriced = doc["window"], doc["spend"], doc["unpriced"]
    if window["span_s"] is None:
        covers = "no timestamps (one day assumed)"
    else:
        covers = f"{duration(window['span_s'])} ({window['first']} to {window['last']})"
    line = (f"Audit: {doc['requests']:,} requests over {covers}; spend ${spend['total_usd']:,.2f} in the log = "
            f"${spend['monthly_usd']:,.2f}/month; ")
    if unpriced["requests"]:
        models = len(unpriced["models"])
        line += (f"UNPRICED: {unpriced['share_of_requests']:.1%} of requests, {unpriced['share_of_tokens']:.1%} of "
                 f"tokens ({models} model{'' if models == 1 else 's'} with no price; not in the spend)")
    else:
        line += "unpriced: 0 requests"
    return line
