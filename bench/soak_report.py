"""The soak's figures: what one run gathered (``Run``), summarised (``summary``: JSON) and as markdown tables."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from soak_traffic import Outcome

# causes that are the point of their kind: a stalled upstream stream ends in an error event, a leaving client leaves
EXPECTED = {("stall", "stream-error"), ("leave-stream", "client-left"), ("leave-whole", "client-left")}
TIMED = ("plain", "stream", "cached", "embeddings")
RSS_GROWTH_LIMIT_PCT = 5.0


@dataclass
class Run:
    began: float
    seconds: float
    rate: float
    outcomes: list[Outcome] = field(default_factory=list)
    hostile: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _windows(run: Run) -> list[dict[str, Any]]:
    width = max(10.0, run.seconds / 12)
    rows = []
    start = 0.0
    while start < run.seconds:
        inside = [o for o in run.outcomes if start <= o.at < start + width and o.cause == "ok"]
        row: dict[str, Any] = {"from_s": round(start), "to_s": round(min(run.seconds, start + width)),
                               "served": len(inside)}
        for kind in TIMED:
            latencies = [o.latency_s for o in inside if o.kind == kind]
            row[f"{kind}_p50_ms"], row[f"{kind}_p99_ms"] = _ms(_pct(latencies, 0.5)), _ms(_pct(latencies, 0.99))
        rows.append(row)
        start += width
    return rows


def _rss(run: Run) -> dict[str, Any]:
    samples = [s for s in run.samples if s["rss_mb"]]
    if not samples:
        return {}
    warm = max(20.0, 0.1 * run.seconds)
    after = [s for s in samples if s["t"] >= warm] or samples
    start, end = after[0], after[-1]
    middle = min(after, key=lambda s: abs(s["t"] - run.seconds / 2))
    growth = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"] * 100
    second_half = (end["rss_mb"] - middle["rss_mb"]) / middle["rss_mb"] * 100
    return {"second_half_growth_pct": round(second_half, 2),
            "start_mb": round(start["rss_mb"], 1), "start_at_s": round(start["t"]),
            "middle_mb": round(middle["rss_mb"], 1), "middle_at_s": round(middle["t"]),
            "end_mb": round(end["rss_mb"], 1), "end_at_s": round(end["t"]),
            "peak_mb": round(max(s["rss_mb"] for s in samples), 1), "growth_pct": round(growth, 2),
            "within_limit": growth <= RSS_GROWTH_LIMIT_PCT}


def summary(run: Run, ledger: dict[str, Any]) -> dict[str, Any]:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for o in run.outcomes:
        by_kind[o.kind]["sent"] += 1
        by_kind[o.kind]["ok" if o.cause == "ok" else ("expected" if (o.kind, o.cause) in EXPECTED else "error")] += 1
    errors = Counter(f"{o.kind}: {o.cause}" for o in run.outcomes
                     if o.cause != "ok" and (o.kind, o.cause) not in EXPECTED)
    hostile: dict[str, Counter[str]] = defaultdict(Counter)
    for h in run.hostile:
        hostile[h["name"]]["sent"] += 1
        hostile[h["name"]]["as_expected" if h["ok"] else "not_as_expected"] += 1
    misses = [h for h in run.hostile if not h["ok"]][:20]
    return {
        "minutes": round(run.seconds / 60, 2), "rate_per_s": run.rate,
        "requests": {"sent": len(run.outcomes) + len(run.hostile), "served_ok": sum(c["ok"] for c in by_kind.values()),
                     "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())}},
        "errors_by_cause": dict(errors.most_common()),
        "hostile": {k: dict(v) for k, v in sorted(hostile.items())}, "hostile_misses": misses,
        "latency_windows": _windows(run), "rss": _rss(run), "faults": run.faults,
        "ledger": {**ledger, "rows_equal_upstream_calls": ledger["chat_call_rows"] == ledger["upstream_chat_calls"]},
        "not_ready_samples": sum(not s["ready"] for s in run.samples), "samples": len(run.samples),
        "rss_samples": [[round(s["t"]), round(s["rss_mb"], 1)] for s in run.samples],
        "hostile_timeline": [[h["at_s"], h["name"]] for h in run.hostile],
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(s: dict[str, Any]) -> str:
    r, led, rss = s["requests"], s["ledger"], s["rss"]
    parts = [f"## Soak: {s['minutes']} min at {s['rate_per_s']} req/s",
             _table(["figure", "value"], [
                 ["requests sent (incl. hostile)", r["sent"]], ["served ok", r["served_ok"]],
                 ["RSS start / middle / end (MiB)", f"{rss.get('start_mb')} / {rss.get('middle_mb')} / "
                                                    f"{rss.get('end_mb')}"],
                 ["RSS growth after warm-up", f"{rss.get('growth_pct')} % (limit 5 %: "
                                              f"{'ok' if rss.get('within_limit') else 'EXCEEDED'})"],
                 ["RSS growth, middle to end", f"{rss.get('second_half_growth_pct')} %"],
                 ["ledger call rows (chat) / upstream chat calls", f"{led['chat_call_rows']} / "
                                                                   f"{led['upstream_chat_calls']}"],
                 ["ledger request rows", led["requests_rows"]],
                 ["rows lost (response ids not in the ledger)", led["rows_lost"]],
                 ["clients that left / rows with client_disconnected",
                  f"{sum(v.get('expected', 0) for k, v in r['by_kind'].items() if k.startswith('leave'))} / "
                  f"{led['client_disconnected_rows']}"],
                 ["/readyz not ready (samples)", f"{s['not_ready_samples']} of {s['samples']}"]]),
             "### Requests by kind",
             _table(["kind", "sent", "ok", "expected non-ok", "errors"],
                    [[k, v.get("sent", 0), v.get("ok", 0), v.get("expected", 0), v.get("error", 0)]
                     for k, v in r["by_kind"].items()]),
             "### Errors by cause", _table(["cause", "count"], [[k, v] for k, v in s["errors_by_cause"].items()]
                                           or [["none (beyond the expected ones above)", 0]]),
             "### Faults", _table(["fault", "at (s)", "down (s)", "cleared after restart (s)"],
                                  [[f["fault"], f["at_s"], f["down_s"], f["clear_s"]] for f in s["faults"]]),
             "### Hostile requests", _table(["request", "sent", "refused/handled as expected"],
                                            [[k, v.get("sent", 0), v.get("as_expected", 0)]
                                             for k, v in s["hostile"].items()]),
             "### Latency over time (ok answers)",
             _table(["window (s)", "served", "plain p50/p99 ms", "stream p50/p99 ms", "cached p50/p99 ms",
                     "embeddings p50/p99 ms"],
                    [[f"{w['from_s']}–{w['to_s']}", w["served"], *(f"{w[f'{k}_p50_ms']} / {w[f'{k}_p99_ms']}"
                                                                   for k in TIMED)]
                     for w in s["latency_windows"]])]
    return "\n\n".join(parts) + "\n"
