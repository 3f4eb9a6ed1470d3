"""``tokenomy audit --html``: the audit document as one self-contained page (inline CSS, inline SVG charts).

A pure function of the ``--json`` document: no I/O, no external requests, every string from the logs escaped.
The four charts carry ``data-chart`` attributes; a small inline script sets ``body[data-charts-ok]`` to the chart
count once the browser has laid every chart out with a non-zero size (the browser test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from tokenomy.audit.report import HOURLY_UP_TO_S, first_line

_LABELS = {"exact_cache": "exact cache", "semantic_cache": "semantic cache", "routing": "routing",
           "prompt_caching": "prompt caching", "batch": "batch API"}
_W, _H, _PAD = 640, 260, 48
_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}.figs{display:flex;gap:1rem;flex-wrap:wrap}
.fig{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}.fig b{display:block;font-size:1.3rem}
svg{display:block;width:100%;max-width:640px;height:auto;background:#fafafa}
svg text{font-size:11px;fill:#333}.note{color:#555;font-size:.9rem}li{margin:.2rem 0}
table{border-collapse:collapse}td,th{padding:.15rem .6rem;text-align:right;border-bottom:1px solid #eee}"""
_SCRIPT = """(function(){var c=document.querySelectorAll('svg[data-chart]'),ok=c.length>0;
for(var i=0;i<c.length;i++){var r=c[i].getBoundingClientRect();if(!(r.width>0&&r.height>0)){ok=false;}}
if(ok){document.body.dataset.chartsOk=String(c.length);}})();"""


def render_html(doc: Mapping[str, Any]) -> str:
    """The audit page for one ``audit_document`` dict."""
    spend, window, rate, unpriced = doc["spend"], doc["window"], doc["rate"], doc["unpriced"]
    savings = doc["savings"]
    monthly = float(spend["monthly_usd"])
    combined = float(savings["monthly_usd"]["combined"])
    figures = [("requests", f"{doc['requests']:,}"), ("days", f"{float(doc['days']):.2f}"),
               ("spend in the log", _usd(float(spend["total_usd"]))), ("monthly spend", _usd(monthly)),
               ("combined saving / month", f"{_usd(combined)} ({float(savings['share_of_spend']['combined']):.0%})"),
               ("unpriced", f"{unpriced['share_of_requests']:.1%} of requests, {unpriced['share_of_tokens']:.1%} "
                            "of tokens")]
    if rate["requests_per_minute_mean"] is not None:
        figures.append(("requests / minute", f"mean {rate['requests_per_minute_mean']:,.1f}, peak "
                                             f"{rate['requests_per_minute_peak']:,}"))
    steps, remaining = waterfall_steps(doc)
    small, large, complexity_note = complexity_split(doc)
    hourly = window["span_s"] is not None and window["span_s"] <= HOURLY_UP_TO_S
    if hourly:
        labels = [key[11:16] for key in spend["by_hour"]]
        hours = [float(t["requests"]) for t in spend["by_hour"].values()]
    else:
        labels, hours = [f"{h:02d}" for h in range(24)], [float(n) for n in spend["requests_by_hour"]]
    by_model = sorted(spend["by_model"].items(), key=lambda kv: -float(kv[1]["cost_usd"]))
    buckets = spend["by_hour"] if hourly else spend["by_day"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>tokenomy audit</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>tokenomy audit</h1><p>{escape(first_line(dict(doc)))}</p>",
        *([f"<p class='note'>Caveat: {escape(window['caveat'])}</p>"] if window["caveat"] else []),
        "<div class='figs'>",
        *(f"<div class='fig'>{escape(k)}<b>{escape(v)}</b></div>" for k, v in figures),
        "</div><h2>Monthly savings, combined in sequence</h2>",
        _waterfall(monthly, steps, remaining),
        "<p class='note'>The report gives each strategy's saving alone and the combined total. Each step here applies "
        "that strategy's share-alone to what the previous steps left (as if independent), scaled so the steps sum "
        "to the measured combined saving.</p>",
        _estimates(doc),
        "<h2>Traffic by hour (UTC)</h2>" if hourly else "<h2>Traffic by hour of day (UTC)</h2>",
        _bars("hours", labels, hours, lambda v: f"{v:,.0f}", label_every=1 if len(labels) <= 12 else 3),
        "<h2>Spend by hour (UTC)</h2>" if hourly else "<h2>Spend by day (UTC)</h2>",
        _bucket_table(buckets),
        "<h2>Cost by model</h2>",
        _hbars("models", [m for m, _ in by_model], [float(v["cost_usd"]) for _, v in by_model]),
        "<h2>Complexity mix</h2>",
        _bars("complexity", ["small tier", "large tier"], [small, large], lambda v: f"{v:,.0f}"),
        f"<p class='note'>{escape(complexity_note)}</p>",
        "<h2>Assumptions</h2><ul>", *(f"<li>{escape(str(a))}</li>" for a in doc.get("assumptions", [])), "</ul>",
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _estimates(doc: Mapping[str, Any]) -> str:
    """The semantic-cache estimate with its range and the detector's quality; the routing method's quality."""
    out = ["<h2>How sure these estimates are</h2><ul>"]
    sem = doc["semantic_cache"]
    if sem["measured"]:
        est, det = sem["estimated_share"], sem["detector"]
        low, high = doc["savings"]["range_monthly_usd"]["semantic_cache"]
        out.append(f"<li>Semantic cache: {sem['hits']:,} of {sem['sampled']:,} sampled requests found "
                   f"({sem['share']:.1%}); estimated true share {est['value']:.1%} ({est['low']:.1%} to "
                   f"{est['high']:.1%}), {_usd(float(doc['savings']['monthly_usd']['semantic_cache']))} a month "
                   f"({_usd(low)} to {_usd(high)}). Detector precision {det['precision']['value']:.3f}, recall "
                   f"{det['recall']['value']:.3f} on {escape(det['measured_on'])}.</li>")
    quality = doc["routing"]["quality"]
    if quality["measured"]:
        out.append(f"<li>Routing ({escape(doc['routing']['method'])}): mean score {quality['score']:.3f} against "
                   f"{quality['frontier_score']:.3f} for the frontier alone ({escape(quality['note'])}).</li>")
    else:
        out.append(f"<li>Routing: {escape(quality['note'])}.</li>")
    return "".join([*out, "</ul>"])


def _bucket_table(buckets: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{escape(key)}</td><td>{t['requests']:,}</td><td>{t['input_tokens']:,}</td>"
                   f"<td>{t['output_tokens']:,}</td><td>{_usd(float(t['cost_usd']))}</td></tr>"
                   for key, t in buckets.items())
    return ("<table><tr><th>when</th><th>requests</th><th>input tokens</th><th>output tokens</th><th>$</th></tr>"
            f"{rows}</table>")


def waterfall_steps(doc: Mapping[str, Any]) -> tuple[list[tuple[str, float]], float]:
    """((strategy, monthly saving) in the combined order, monthly spend left), summing to the monthly spend."""
    savings = doc["savings"]
    monthly = float(doc["spend"]["monthly_usd"])
    combined = float(savings["monthly_usd"]["combined"])
    left, raw = 1.0, []
    for name in savings["order"]:
        share = min(max(float(savings["share_of_spend"].get(name, 0.0)), 0.0), 1.0)
        raw.append((name, monthly * left * share))
        left *= 1 - share
    total = sum(v for _, v in raw)
    scale = combined / total if total > 0 else 0.0
    return [(name, v * scale) for name, v in raw], monthly - combined


def complexity_split(doc: Mapping[str, Any]) -> tuple[float, float, str]:
    """(requests the small tier could serve, the rest, what the split is measured by)."""
    routing = doc["routing"]
    small = float(routing["routable_requests"])
    if routing["method"] == "heuristic":
        how = "the routing heuristic (its rule is under Assumptions); no trained router was given"
    else:
        how = f"the trained router's predictions ({routing['method']})"
    note = f"Requests the small tier ({routing['small_model']}) could serve vs the rest, by {how}."
    return small, max(float(doc["requests"]) - small, 0.0), note


def _usd(v: float) -> str:
    return f"${v:,.2f}"


def _svg(chart: str, body: Sequence[str], height: int = _H) -> str:
    return (f"<svg data-chart='{chart}' viewBox='0 0 {_W} {height}' width='{_W}' height='{height}' role='img'>"
            + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "middle") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}'>{escape(s)}</text>"


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0):.1f}' height='{max(h, 0):.1f}' fill='{fill}'/>"


def _bars(chart: str, labels: Sequence[str], values: Sequence[float], fmt: Callable[[float], str],
          label_every: int = 1) -> str:
    top = max(values, default=0.0) or 1.0
    plot_h = _H - 2 * _PAD
    slot = (_W - 2 * _PAD) / max(len(values), 1)
    body = [f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#999'/>"]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * v / top
        x = _PAD + i * slot
        body.append(_rect(x + slot * 0.1, _H - _PAD - h, slot * 0.8, h, "#4c78a8"))
        if i % label_every == 0:
            body.append(_text(x + slot / 2, _H - _PAD + 14, label))
        if len(values) <= 8 or v == top:
            body.append(_text(x + slot / 2, _H - _PAD - h - 4, fmt(v)))
    return _svg(chart, body)


def _hbars(chart: str, labels: Sequence[str], values: Sequence[float]) -> str:
    row = 26
    height = max(len(values), 1) * row + 20
    left = 170
    top = max(values, default=0.0) or 1.0
    body = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 10 + i * row
        w = (_W - left - 90) * v / top
        body += [_text(left - 6, y + 15, label, "end"), _rect(left, y + 3, w, row - 8, "#f58518"),
                 _text(left + w + 6, y + 15, _usd(v), "start")]
    return _svg(chart, body, height)


def _waterfall(monthly: float, steps: Sequence[tuple[str, float]], remaining: float) -> str:
    cols = [("monthly spend", 0.0, monthly, "#888")]
    level = monthly
    for name, saving in steps:
        cols.append((_LABELS.get(name, name), level - saving, level, "#54a24b"))
        level -= saving
    cols.append(("remaining", 0.0, remaining, "#4c78a8"))
    top = monthly or 1.0
    plot_h = _H - 2 * _PAD
    slot = (_W - 2 * _PAD) / len(cols)

    def y(v: float) -> float:
        return _H - _PAD - plot_h * v / top

    body = [f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#999'/>"]
    for i, (label, low, high, fill) in enumerate(cols):
        x = _PAD + i * slot
        body.append(_rect(x + slot * 0.12, y(high), slot * 0.76, y(low) - y(high), fill))
        amount = high - low
        sign = "-" if fill == "#54a24b" else ""
        body.append(_text(x + slot / 2, y(high) - 4, f"{sign}{_usd(amount)}"))
        body.append(_text(x + slot / 2, _H - _PAD + 14, label))
    return _svg("waterfall", body)
