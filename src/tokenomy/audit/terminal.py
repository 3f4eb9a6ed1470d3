"""The audit document (``report.audit_document``) as rich tables on the terminal: the same numbers as ``--json``.

The first line says what the log covers, its spend, the month it scales to and the unpriced share; a caveat line
follows for a short window. Spend is tabled by clock hour when the log spans up to two days, else by day.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from tokenomy.audit.report import HOURLY_UP_TO_S, first_line

_LABELS = {"exact_cache": "exact cache (repeats)", "semantic_cache": "semantic cache (paraphrases)",
           "routing": "routing to the small tier",
           "prompt_caching": "provider prompt caching", "batch": "batch API", "combined": "combined (in sequence)"}


def render(doc: dict[str, Any], console: Console) -> None:
    spend, window, rate = doc["spend"], doc["window"], doc["rate"]
    style = "bold yellow" if doc["unpriced"]["requests"] else "bold"
    console.print(first_line(doc), style=style, markup=False, highlight=False,
                  soft_wrap=not console.is_terminal)  # piped: one line a script can read whole
    if window["caveat"]:
        console.print(f"[yellow]caveat[/]: {window['caveat']} (x{window['month_scale']:,.1f} to a 30-day month)")
    if rate["requests_per_minute_mean"] is not None:
        console.print(f"requests per minute: mean {rate['requests_per_minute_mean']:,.1f}, peak "
                      f"{rate['requests_per_minute_peak']:,} (in the 60 s to {rate['peak_minute_ends']}); "
                      f"{doc['queries_per_day']:,}/day; mean {doc['input_tokens']:,} in + {doc['output_tokens']:,} "
                      "out tokens")
    usage = ", ".join(f"{k}: {v:,}" for k, v in doc["usage"].items())
    console.print(f"formats: {', '.join(f'{k} ({v})' for k, v in doc['formats'].items())}; usage {usage}")
    if doc["bad_lines"]["count"]:
        first = ", ".join(f"{b['file']}:{b['line']} ({b['reason']})" for b in doc["bad_lines"]["first"])
        console.print(f"[yellow]skipped {doc['bad_lines']['count']} bad lines[/]: {first}")
    if doc["unpriced"]["requests"]:
        models = ", ".join(f"{m} ({n:,})" for m, n in doc["unpriced"]["models"].items())
        console.print(f"[yellow]no price for[/]: {models}; `tokenomy prices import` or an override file adds one")
    _table(console, "Spend by model", ["model", "requests", "input tokens", "output tokens", "$"],
           [[name, f"{t['requests']:,}", f"{t['input_tokens']:,}", f"{t['output_tokens']:,}", f"{t['cost_usd']:,.2f}"]
            for name, t in spend["by_model"].items()])
    hourly = window["span_s"] is not None and window["span_s"] <= HOURLY_UP_TO_S
    buckets = spend["by_hour"] if hourly else spend["by_day"]
    _table(console, "Spend by hour (UTC)" if hourly else "Spend by day (UTC)",
           ["hour" if hourly else "day", "requests", "input tokens", "output tokens", "$"],
           [[key, f"{t['requests']:,}", f"{t['input_tokens']:,}", f"{t['output_tokens']:,}", f"{t['cost_usd']:,.2f}"]
            for key, t in buckets.items()])
    if "hourly_share" in doc:
        hours = doc["hourly_share"]
        peak = max(hours) or 1
        console.print("requests by UTC hour of day: " + " ".join(
            f"{h:02d}:{'▁▂▃▄▅▆▇█'[min(7, v * 8 // (peak + 1))]}" for h, v in enumerate(hours)))
    _render_savings(doc, console)
    _render_selfhost(doc, console)


def _table(console: Console, title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _render_savings(doc: dict[str, Any], console: Console) -> None:
    r, p, ro, b = doc["exact_repeats"], doc["shared_prefix"], doc["routing"], doc["batch"]
    detail = {"exact_cache": f"{r['requests']:,} repeats ({r['share']:.1%}) within {r['ttl_s'] // 3600} h",
              "routing": f"{ro['routable_requests']:,} requests ({ro['share']:.1%}) -> "
                         f"{ro['small_model'] or 'cheaper models (router)'}",
              "prompt_caching": f"{p['tokens']:,} prefix tokens ({p['share_of_input_tokens']:.1%} of input)",
              "batch": f"{b['batchable_requests']:,} requests ({b['share']:.1%})", "combined": "no double counting"}
    sem = doc["semantic_cache"]
    ranges = doc["savings"].get("range_monthly_usd", {})
    if sem["measured"]:
        est = sem["estimated_share"]
        detail["semantic_cache"] = (f"{sem['hits']:,} of {sem['sampled']:,} sampled ({sem['share']:.1%}) found; "
                                    f"est. {est['value']:.1%} ({est['low']:.1%}-{est['high']:.1%})")
    table = Table(title="Savings per month (assumptions below)", title_justify="left")
    for col in ("strategy", "potential", "$ / month", "range", "% of spend"):
        table.add_column(col, justify="right" if col in ("$ / month", "range", "% of spend") else "left")
    sav = doc["savings"]
    for key, usd in sav["monthly_usd"].items():
        low_high = f"{ranges[key][0]:,.2f}-{ranges[key][1]:,.2f}" if key in ranges else ""
        table.add_row(_LABELS[key], detail[key], f"{usd:,.2f}", low_high, f"{sav['share_of_spend'][key]:.1%}")
    console.print(table)
    if sem["measured"]:
        d = sem["detector"]
        console.print(f"semantic cache detector (cosine >= {d['threshold']}, same numbers): precision "
                      f"{d['precision']['value']:.3f} ({d['precision']['low']:.3f}-{d['precision']['high']:.3f}), "
                      f"recall {d['recall']['value']:.3f} ({d['recall']['low']:.3f}-{d['recall']['high']:.3f}) on "
                      f"{d['measured_on']}; the estimate is the found share x precision / recall")
    quality = ro["quality"]
    if quality["measured"]:
        console.print(f"routing quality ({ro['method']}): mean score {quality['score']:.3f} against "
                      f"{quality['frontier_score']:.3f} for the frontier alone, {quality['frontier_share']:.0%} of "
                      f"calls to the frontier ({quality['note']})")
    else:
        console.print(f"[yellow]routing quality[/]: {quality.get('note', 'not measured')}")
    for line in doc["assumptions"]:
        console.print(f"[dim]- {line}[/]")


def _render_selfhost(doc: dict[str, Any], console: Console) -> None:
    selfhost = doc.get("self_host_small_tier")
    if not selfhost:
        return
    best = selfhost["best"]
    verdict = "worth it" if selfhost["worth_it"] else "not worth it at this volume"
    estimate = " (estimate)" if best["estimate"] else ""
    console.print(f"self-hosting the small tier ({selfhost['small_model']} -> an 8B model on one {best['gpu']} "
                  f"{best['precision']}, ${best['monthly_usd']:,.0f}/month{estimate}): break-even at "
                  f"{best['break_even_requests_per_day']:,} small-tier requests/day, capacity "
                  f"{best['capacity_requests_per_day']:,}/day; this log has "
                  f"{selfhost['routable_requests_per_day']:,}/day: {verdict} (quality assumed equal)")
