"""Print bench/overhead.py's results as a table with the ratios the gateway-core issue sets as targets."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def added(report: dict[str, Any], name: str, key: str, stat: str) -> float | None:
    target = report["servers"].get(name, {}).get(key, {}).get(stat)
    base = report["servers"]["direct"].get(key, {}).get(stat)
    return None if target is None or base is None else target - base


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"gateway overhead ({report['seconds_per_point']:g} s per point; ms)")
    for col in ("target", "mode", "offered rps", "achieved", "errors", "p50", "p99", "added p50", "added p99"):
        table.add_column(col, justify="left" if col in ("target", "mode") else "right")
    for name, results in report["servers"].items():
        for mode in ("plain", "stream"):
            for load in (100, 500, 1000):
                r = results.get(f"{mode}@{load}", {})
                table.add_row(name, mode, str(load), _fmt(r.get("achieved_rps"), 0), str(r.get("errors", "-")),
                              _fmt(r.get("latency_p50_ms")), _fmt(r.get("latency_p99_ms")),
                              _fmt(added(report, name, f"{mode}@{load}", "latency_p50_ms")),
                              _fmt(added(report, name, f"{mode}@{load}", "latency_p99_ms")))
    console.print(table)
    cap = Table(title="maximum throughput (closed loop, 64 in flight) and peak RSS")
    for col in ("target", "plain rps", "stream rps", "errors", "peak RSS MB"):
        cap.add_column(col, justify="left" if col == "target" else "right")
    for name, results in report["servers"].items():
        plain, stream = results.get("plain@max", {}), results.get("stream@max", {})
        cap.add_row(name, _fmt(plain.get("rps"), 0), _fmt(stream.get("rps"), 0),
                    str(plain.get("errors", 0) + stream.get("errors", 0)), _fmt(results.get("peak_rss_mb"), 0))
    console.print(cap)
    for line in ratios(report):
        console.print(line)


def ratios(report: dict[str, Any]) -> list[str]:
    servers = report["servers"]
    lines = []
    tk = servers.get("tokenomy", {})
    p50 = added(report, "tokenomy", "plain@500", "latency_p50_ms")
    p99 = added(report, "tokenomy", "plain@500", "latency_p99_ms")
    lines.append(f"tokenomy added latency at 500 rps (plain): p50 {_fmt(p50)} ms (target <= 1), "
                 f"p99 {_fmt(p99)} ms (target <= 5)")
    if "litellm" in servers:
        for mode in ("plain", "stream"):
            mine, theirs = tk.get(f"{mode}@max", {}).get("rps"), servers["litellm"].get(f"{mode}@max", {}).get("rps")
            if mine and theirs:
                lines.append(f"max rps, {mode}: tokenomy / litellm = {mine / theirs:.1f}x (target >= 5x)")
        lp50 = added(report, "litellm", "plain@500", "latency_p50_ms")
        lines.append(f"litellm added latency at 500 rps (plain): p50 {_fmt(lp50)} ms")
    lines.append(f"tokenomy peak RSS: {_fmt(tk.get('peak_rss_mb'), 0)} MB (target <= 150, no local model)")
    direct = servers["direct"].get("plain@max", {}).get("rps")
    if direct and tk.get("plain@max", {}).get("rps"):
        lines.append(f"tokenomy max rps / direct upstream max rps (plain) = {tk['plain@max']['rps'] / direct:.2f}")
    return lines
