"""Tables and target verdicts for bench/overhead.py's results (a plain dict, as written to the results JSON)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# The gateway-core targets: added latency at 500 rps, throughput against LiteLLM, memory without the local model.
ADDED_P50_MS = 1.0
ADDED_P99_MS = 5.0
RPS_VS_LITELLM = 5.0
RSS_MB = 150.0


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def added(report: dict[str, Any], points: dict[str, Any], key: str, stat: str) -> float | None:
    """``stat`` of ``points[key]`` minus the direct upstream's at the same mode and load in the same run."""
    mine = points.get(key, {}).get(stat)
    base = report["targets"]["direct"]["points"].get(key, {}).get(stat)
    return None if mine is None or base is None else mine - base


def _targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: t for name, t in report["targets"].items() if "points" in t}


def latency_table(report: dict[str, Any]) -> Table:
    table = Table(title="Open-loop latency to the last byte (ms); added = target − direct at the same load and mode")
    for col in ("target", "mode", "offered/s", "achieved/s", "errors", "p50", "p99", "added p50", "added p99",
                "TTFB p50", "server CPU", "other CPU"):
        table.add_column(col, justify="left" if col in ("target", "mode") else "right")
    loads = report["plan"]["loads"]
    for name, target in _targets(report).items():
        for mode in ("plain", "stream"):
            for load in loads:
                p = target["points"].get(f"{mode}@{load}")
                if p is None:
                    continue
                key = f"{mode}@{load}"
                table.add_row(name, mode, str(load), _f(p["achieved_rps"], 0), str(p["errors"]), _f(p["p50_ms"]),
                              _f(p["p99_ms"]), _f(added(report, target["points"], key, "p50_ms")),
                              _f(added(report, target["points"], key, "p99_ms")),
                              _f(p["ttfb_p50_ms"]) if mode == "stream" else "", f"{p['server_cpu_share']:.0%}",
                              f"{p.get('other_cpu_share', 0.0):.0%}")
        table.add_section()
    return table


def capacity_table(report: dict[str, Any]) -> Table:
    conc = report["plan"]["concurrency"]
    table = Table(title=f"Maximum throughput (closed loop, {conc} in flight) and memory")
    for col in ("target", "plain rps", "stream rps", "errors", "CPU µs/req plain", "CPU µs/req stream",
                "server CPU", "peak RSS MB", "PSS MB at end", "processes"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for name, target in _targets(report).items():
        plain, stream = target["points"]["plain@max"], target["points"]["stream@max"]
        table.add_row(name, _f(plain["achieved_rps"], 0), _f(stream["achieved_rps"], 0),
                      str(plain["errors"] + stream["errors"]), _f(plain["server_cpu_us_per_request"], 0),
                      _f(stream["server_cpu_us_per_request"], 0), f"{plain['server_cpu_share']:.0%}",
                      _f(target["peak_rss_mb"], 0), _f(target.get("end_pss_mb"), 0), str(len(target["processes"])))
    return table


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what was measured, the bound, whether it is met (None where it could not be measured)."""
    targets = _targets(report)
    tk, load = targets["tokenomy"]["points"], report["plan"]["reference_load"]
    rows: list[dict[str, Any]] = []
    for mode in ("plain", "stream"):
        key = f"{mode}@{load}"
        for stat, bound in (("p50_ms", ADDED_P50_MS), ("p99_ms", ADDED_P99_MS)):
            value = added(report, tk, key, stat)
            rows.append({"what": f"tokenomy added {stat[:3]} at {load} rps, {mode} (ms)", "value": value,
                         "bound": f"<= {bound:g}", "met": None if value is None else value <= bound})
    litellm = targets.get("litellm")
    for mode in ("plain", "stream"):
        ratio = None
        if litellm is not None:
            ratio = tk[f"{mode}@max"]["achieved_rps"] / litellm["points"][f"{mode}@max"]["achieved_rps"]
        rows.append({"what": f"tokenomy max rps / LiteLLM max rps, {mode}", "value": ratio,
                     "bound": f">= {RPS_VS_LITELLM:g}", "met": None if ratio is None else ratio >= RPS_VS_LITELLM})
    rss = targets["tokenomy"]["peak_rss_mb"]
    rows.append({"what": "tokenomy peak RSS, no local model (MB)", "value": rss, "bound": f"<= {RSS_MB:g}",
                 "met": rss <= RSS_MB})
    return rows


def verdict_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Targets")
    for col in ("measure", "value", "target", "met"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in rows:
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "NO")
        table.add_row(row["what"], _f(row["value"]), row["bound"], met)
    return table


def asgi_table(report: dict[str, Any]) -> Table | None:
    if "asgi" not in report:
        return None
    load = report["plan"]["reference_load"]
    table = Table(title=f"ASGI server under tokenomy's app (added ms at {load} rps; max = closed loop)")
    for col in ("server", "mode", "added p50", "added p99", "errors", "max rps", "CPU µs/req at max", "peak RSS MB"):
        table.add_column(col, justify="left" if col in ("server", "mode") else "right")
    labels = {"uvicorn": "uvicorn (uvloop, httptools)", "granian": "granian (ASGI, uvloop)"}
    for server, target in report["asgi"].items():
        for mode in ("plain", "stream"):
            key, top = f"{mode}@{load}", target["points"][f"{mode}@max"]
            table.add_row(labels.get(server, server), mode, _f(added(report, target["points"], key, "p50_ms")),
                          _f(added(report, target["points"], key, "p99_ms")), str(target["points"][key]["errors"]),
                          _f(top["achieved_rps"], 0), _f(top["server_cpu_us_per_request"], 0),
                          _f(target["peak_rss_mb"], 0))
    return table


def clients_table(report: dict[str, Any]) -> Table:
    table = Table(title="Upstream client: POSTs to the zero-delay upstream (µs per request)")
    for col in ("interpreter", "client", "version", "in flight", "wall µs/req", "client CPU µs/req"):
        table.add_column(col, justify="left" if col in ("interpreter", "client") else "right")
    for label, found in report["clients"].items():
        if "skipped" in found:
            table.add_row(label, found["skipped"], "", "", "", "")
            continue
        for row in found["rows"]:
            table.add_row(label, row["client"], row["version"], str(row["concurrency"]),
                          _f(row["wall_us_per_request"], 0), _f(row["cpu_us_per_request"], 0))
        for name in found["not_importable"]:
            table.add_row(label, name, "not installed", "", "", "")
    return table


def loadgen_table(report: dict[str, Any]) -> Table:
    table = Table(title="Load generators against the upstream (closed loop, 32 connections, same core as upstream)")
    for col in ("generator", "rps", "generator CPU µs/req"):
        table.add_column(col, justify="left" if col == "generator" else "right")
    for name, found in report["loadgen_calibration"].items():
        if "skipped" in found:
            table.add_row(name, found["skipped"], "")
        else:
            table.add_row(name, _f(found["rps"], 0), _f(found["cpu_us_per_request"], 1))
    return table


def warnings(report: dict[str, Any]) -> list[str]:
    """Points where the load generator itself fell behind its schedule, and baseline drift over the run."""
    found = []
    measured = {**_targets(report), **{f"tokenomy-{k}": v for k, v in report.get("asgi", {}).items()}}
    for name, target in measured.items():
        for key, point in target["points"].items():
            lag = point.get("release_lag_p99_ms")
            if lag is not None and lag > 2.0:
                found.append(f"{name} {key}: the load generator released p99 {lag:.1f} ms late")
            other = point.get("other_cpu_share", 0.0)
            if other > 0.15:
                found.append(f"{name} {key}: processes outside the benchmark used {other:.0%} of a core during this "
                             f"point ({point.get('tries', 1)} tries)")
    first, again = report["targets"]["direct"]["points"], report.get("direct_again", {}).get("points", {})
    for key, point in again.items():
        if key in first and not key.endswith("@max"):
            found.append(f"baseline drift, direct {key}: p50 {first[key]['p50_ms']:.2f} → {point['p50_ms']:.2f} ms, "
                         f"p99 {first[key]['p99_ms']:.2f} → {point['p99_ms']:.2f} ms (start → end of the run)")
    return found


def print_report(report: dict[str, Any]) -> None:
    console = Console(width=170)
    console.print(f"[bold]{report['machine']['cpu']}[/], {report['machine']['cores']} cores, Python "
                  f"{report['machine']['python']}; {report['machine']['pinning']}")
    console.print(loadgen_table(report))
    console.print(latency_table(report))
    console.print(capacity_table(report))
    for name, target in report["targets"].items():
        if "skipped" in target:
            console.print(f"{name}: skipped: {target['skipped']}")
    asgi = asgi_table(report)
    if asgi is not None:
        console.print(asgi)
    console.print(clients_table(report))
    console.print(verdict_table(report["verdicts"]))
    for line in warnings(report):
        console.print(f"note: {line}")


def markdown(report: dict[str, Any]) -> str:
    """Every table as GitHub markdown, for docs/benchmarks.md."""
    tables = [loadgen_table(report), latency_table(report), capacity_table(report), asgi_table(report),
              clients_table(report), verdict_table(report["verdicts"])]
    return "\n\n".join(_markdown_table(t) for t in tables if t is not None)


def _markdown_table(table: Table) -> str:
    columns = [str(col.header) for col in table.columns]
    cells = [[str(cell) for cell in col.cells] for col in table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if col.justify == "left" else "---:" for col in table.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a results JSON written by bench/overhead.py again.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--markdown", action="store_true", help="GitHub markdown tables instead of rich tables")
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    if args.markdown:
        print(markdown(report))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
