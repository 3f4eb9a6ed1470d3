"""The audit as one JSON-ready document, and the same document as rich tables.

The document carries ``queries_per_day``, ``input_tokens``, ``output_tokens`` (means per request) and
``hourly_share`` (requests by UTC hour) at top level, so ``tokenomy plan --from-audit`` reads it as it is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from tokenomy.audit.analyse import Totals
from tokenomy.audit.run import AuditRun, monthly
from tokenomy.audit.selfhost import small_tier_break_even
from tokenomy.audit.strategies import SHORT_PROMPT_CHARS, STRATEGIES

_LABELS = {"exact_cache": "exact cache (repeats)", "semantic_cache": "semantic cache (paraphrases)",
           "routing": "routing to the small tier",
           "prompt_caching": "provider prompt caching", "batch": "batch API", "combined": "combined (in sequence)"}


def _usd(value: Decimal) -> float:
    return float(round(value, 6))


def _totals(t: Totals) -> dict[str, Any]:
    return {"requests": t.requests, "cost_usd": _usd(t.cost_usd), "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens}


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def audit_document(run: AuditRun) -> dict[str, Any]:
    a, s = run.audit, run.audit.assumptions
    n, days = a.total.requests, a.days
    alone, combined, semantic = dict(a.alone), a.combined, _semantic(run)
    if run.paraphrases is not None:
        scale = a.fresh_cost_usd / run.paraphrases.sample_cost_usd if run.paraphrases.sample_cost_usd else Decimal(0)
        alone["semantic_cache"] = run.paraphrases.cost_usd * scale
        combined += run.paraphrases.remaining_usd * scale
    order = [k for k in ("exact_cache", "semantic_cache", *STRATEGIES[1:]) if k in alone]
    per_month = {k: monthly(alone[k], days, s.days_per_month) for k in order}
    per_month["combined"] = monthly(combined, days, s.days_per_month)
    spend_month = monthly(a.total.cost_usd, days, s.days_per_month)
    doc: dict[str, Any] = {
        "queries_per_day": max(1, round(n / days)),
        "input_tokens": round(a.total.input_tokens / n),
        "output_tokens": round(a.total.output_tokens / n),
        "requests": n, "days": round(days, 3), "formats": run.formats,
        "bad_lines": {"count": run.bad.count,
                      "first": [{"file": f, "line": line, "reason": r} for f, line, r in run.bad.first]},
        "usage": dict(a.usage_source), "unpriced_requests": dict(a.unpriced),
        "spend": {"total_usd": _usd(a.total.cost_usd), "monthly_usd": _usd(spend_month),
                  "by_model": {m: _totals(t) for m, t in sorted(a.by_model.items(), key=lambda kv: -kv[1].cost_usd)},
                  "by_day": {d: _totals(t) for d, t in sorted(a.by_day.items())},
                  "requests_by_hour": list(a.by_hour)},
        "exact_repeats": {"requests": a.repeats, "share": _share(a.repeats, a.with_body),
                          "cost_usd": _usd(a.alone["exact_cache"]), "ttl_s": s.exact_ttl_s},
        "shared_prefix": {"requests": a.prefix_hits, "tokens": a.prefix_hit_tokens,
                          "share_of_input_tokens": _share(a.prefix_hit_tokens, a.total.input_tokens),
                          "ttl_s": s.prefix_ttl_s, "min_tokens": s.prefix_min_tokens},
        "semantic_cache": semantic,
        "routing": {"method": a.router.label if a.router else "heuristic",
                    "small_model": None if a.router else s.small_model,
                    "decisions": a.router.decisions if a.router else None,
                    "mix": dict(a.router.mix.most_common()) if a.router else None,
                    "routable_requests": a.routable, "share": _share(a.routable, a.with_body)},
        "batch": {"batchable_requests": round(a.batch_weight, 1), "share": _share(a.batch_weight, n),
                  "assumed_share_of_unmarked": s.batchable_share},
        "savings": {"monthly_usd": {k: _usd(v) for k, v in per_month.items()},
                    "share_of_spend": {k: _share(float(v), float(spend_month)) for k, v in per_month.items()},
                    "order": order},
        "assumptions": assumption_lines(run),
    }
    if any(a.by_hour):
        doc["hourly_share"] = list(a.by_hour)
    doc["self_host_small_tier"] = small_tier_break_even(doc, a.catalogue)
    return doc


def _semantic(run: AuditRun) -> dict[str, Any]:
    p = run.paraphrases
    if p is None:
        return {"measured": False, "note": run.semantic_note}
    return {"measured": True, "note": run.semantic_note, "sampled": p.sampled, "hits": p.hits,
            "share": _share(p.hits, p.sampled), "cost_usd": _usd(p.cost_usd)}


def assumption_lines(run: AuditRun) -> list[str]:
    s = run.audit.assumptions
    routing = (f"routing ({run.audit.router.label}): the trained router decides on the last user message; a model "
               "other than its frontier is priced from the catalogue, or at the router's estimated cost ratio when "
               "the catalogue does not list it" if run.audit.router else
               f"routing (heuristic, no trained router): a last user message <= {SHORT_PROMPT_CHARS} characters with "
               f"no code/maths markers and <= 2 numbers goes to {s.small_model} (the cheapest mid-tier model at a "
               "3:1 blend) when that is cheaper; quality is not measured")
    return [
        f"monthly = the log's figures x {s.days_per_month} / the days it spans (at least 1)",
        "costs: as logged (ledger), else usage x the catalogue's rates on the request's UTC date; without usage, "
        "prompt tokens are counted offline (tiktoken) and output from the reply text when the log has it",
        f"exact cache: a request whose cache key (model, messages, sampling parameters; not stream/user/metadata) "
        f"was seen within {s.exact_ttl_s // 3600} h is answered free; counts every repeat, as cache mode 'all' does",
        f"prompt caching: a prefix (tools + messages before the last user turn) of >= {s.prefix_min_tokens} tokens "
        f"seen within {s.prefix_ttl_s // 60} min is billed at the cached-input rate",
        routing,
        f"batch: requests whose metadata says batch/latency_tolerant move to batch rates; streamed ones never; "
        f"{s.batchable_share:.0%} of the other non-streamed ones are assumed latency-tolerant",
        f"semantic cache: {run.semantic_note}; a hit is a same-model, same-prefix request within the exact-cache "
        "TTL (identical prompts whose exact key differs, e.g. by temperature, count); the sample's hit cost is "
        "scaled to all non-repeat requests by cost",
        "combined: exact cache, then semantic cache, then routing, then prompt caching, then batch, applied per "
        "request in that order (the semantic share scaled from its sample)",
        "the log is read in time order: a repeat or shared prefix is one seen earlier in the files",
    ]


def render(doc: dict[str, Any], console: Console) -> None:
    spend = doc["spend"]
    console.print(f"[bold]Audit[/]: {doc['requests']:,} requests over {doc['days']:.1f} days "
                  f"({doc['queries_per_day']:,}/day; mean {doc['input_tokens']:,} in + {doc['output_tokens']:,} out "
                  f"tokens); spend ${spend['total_usd']:,.2f} = ${spend['monthly_usd']:,.2f}/month")
    usage = ", ".join(f"{k}: {v:,}" for k, v in doc["usage"].items())
    console.print(f"formats: {', '.join(f'{k} ({v})' for k, v in doc['formats'].items())}; usage {usage}")
    if doc["bad_lines"]["count"]:
        first = ", ".join(f"{b['file']}:{b['line']} ({b['reason']})" for b in doc["bad_lines"]["first"])
        console.print(f"[yellow]skipped {doc['bad_lines']['count']} bad lines[/]: {first}")
    if doc["unpriced_requests"]:
        console.print(f"[yellow]no catalogue price (counted at $0)[/]: {doc['unpriced_requests']}")
    models = Table(title="Spend by model", title_justify="left")
    for col in ("model", "requests", "input tokens", "output tokens", "$"):
        models.add_column(col, justify="left" if col == "model" else "right")
    for name, t in spend["by_model"].items():
        models.add_row(name, f"{t['requests']:,}", f"{t['input_tokens']:,}", f"{t['output_tokens']:,}",
                       f"{t['cost_usd']:,.2f}")
    console.print(models)
    days = Table(title="Spend by day (UTC)", title_justify="left")
    for col in ("day", "requests", "$"):
        days.add_column(col, justify="left" if col == "day" else "right")
    for day, t in spend["by_day"].items():
        days.add_row(day, f"{t['requests']:,}", f"{t['cost_usd']:,.2f}")
    console.print(days)
    hours = spend["requests_by_hour"]
    peak = max(hours) or 1
    console.print("requests by UTC hour: " + " ".join(f"{h:02d}:{'▁▂▃▄▅▆▇█'[min(7, v * 8 // (peak + 1))]}"
                                                      for h, v in enumerate(hours)))
    _render_savings(doc, console)
    selfhost = doc.get("self_host_small_tier")
    if selfhost:
        best = selfhost["best"]
        verdict = "worth it" if selfhost["worth_it"] else "not worth it at this volume"
        estimate = " (estimate)" if best["estimate"] else ""
        console.print(f"self-hosting the small tier ({selfhost['small_model']} -> an 8B model on one {best['gpu']} "
                      f"{best['precision']}, ${best['monthly_usd']:,.0f}/month{estimate}): break-even at "
                      f"{best['break_even_requests_per_day']:,} small-tier requests/day, capacity "
                      f"{best['capacity_requests_per_day']:,}/day; this log has "
                      f"{selfhost['routable_requests_per_day']:,}/day: {verdict} (quality assumed equal)")


def _render_savings(doc: dict[str, Any], console: Console) -> None:
    r, p, ro, b = doc["exact_repeats"], doc["shared_prefix"], doc["routing"], doc["batch"]
    detail = {"exact_cache": f"{r['requests']:,} repeats ({r['share']:.1%}) within {r['ttl_s'] // 3600} h",
              "routing": f"{ro['routable_requests']:,} requests ({ro['share']:.1%}) -> "
                         f"{ro['small_model'] or 'cheaper models (router)'}",
              "prompt_caching": f"{p['tokens']:,} prefix tokens ({p['share_of_input_tokens']:.1%} of input)",
              "batch": f"{b['batchable_requests']:,} requests ({b['share']:.1%})", "combined": "no double counting"}
    sem = doc["semantic_cache"]
    if sem["measured"]:
        detail["semantic_cache"] = f"{sem['hits']:,} of {sem['sampled']:,} sampled ({sem['share']:.1%})"
    table = Table(title="Savings per month (assumptions below)", title_justify="left")
    for col in ("strategy", "potential", "$ / month", "% of spend"):
        table.add_column(col, justify="right" if col in ("$ / month", "% of spend") else "left")
    sav = doc["savings"]
    for key, usd in sav["monthly_usd"].items():
        table.add_row(_LABELS[key], detail[key], f"{usd:,.2f}", f"{sav['share_of_spend'][key]:.1%}")
    console.print(table)
    for line in doc["assumptions"]:
        console.print(f"[dim]- {line}[/]")
