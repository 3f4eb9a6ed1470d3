"""The gateway's added latency per door, in one run: chat completions, Anthropic Messages, OpenAI Responses (as
clients call it: ``store`` on, one stored row per response; and with ``store: false``), against the same zero-delay
upstream through the same ``tokenomy serve``.

    .venv/bin/python bench/doors.py [--rounds 3] [--rate 500] [--seconds 8] [--out FILE.json] | --show FILE.json

The upstream (tokenomy.testing.fault_upstream, model ``echo``) and the load generator (bench/loadgen.py, which
posts the same question in each door's own request shape) share core 0; the gateway has core 1 (as in
bench/overhead.py). Each round measures, in an order that rotates between rounds: the upstream called directly,
then every door, plain and streamed, at ``--rate`` requests/s for ``--seconds``. Added latency = the door's
percentile − the direct percentile of the same round; the report gives the median over the rounds and each door's
ratio to the chat door's (on a shared machine the ratio is the figure to read, not the milliseconds), and the
gateway's CPU time per request (from /proc over each point), which shared load moves less than latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules: bench/ is not a package

import services
from measure import Plan, run_loadgen

MODES = ("plain", "stream")
DOORS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses",
         "responses-nostore": "/v1/responses"}


def _measure(service: services.Service, plan: Plan, rate: int, upstream: services.Service | None,
             door: str) -> dict[str, Any]:
    found = {}
    for mode in MODES:
        stream = mode == "stream"
        run_loadgen(service, plan, upstream=upstream, stream=stream, concurrency=16, seconds=1.0, door=door)  # warm
        point = run_loadgen(service, plan, upstream=upstream, stream=stream, rate=rate, seconds=plan.point_s,
                            door=door)
        found[mode] = {k: point[k] for k in ("p50_ms", "p99_ms", "achieved_rps", "errors", "other_cpu_share",
                                             "server_cpu_us_per_request")}
    return found


def run(rounds: int, rate: int, plan: Plan) -> dict[str, Any]:
    report: dict[str, Any] = {"rate": rate, "point_s": plan.point_s, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="tokenomy-doors-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "HOME": str(workdir), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1"}
        with services.upstream(workdir, plan.loadgen_core, env) as upstream:
            config = services.tokenomy_config(workdir, upstream, env)
            with services.tokenomy_serve(workdir, plan.gateway_core, env, config) as gateway:
                base = gateway.chat_url.removesuffix("/v1/chat/completions")
                doors = {name: dataclasses.replace(gateway, name=name, chat_url=base + path)
                         for name, path in DOORS.items()}
                for i in range(rounds):
                    names = list(doors)
                    order = names[i % len(names):] + names[:i % len(names)]  # rotate: drift lands on every door
                    found = {"direct": _measure(upstream, plan, rate, None, "chat")}
                    for name in order:
                        found[name] = _measure(doors[name], plan, rate, upstream, name)
                    report["rounds"].append(found)
                    print(f"round {i + 1}/{rounds}: " + "; ".join(
                        f"{name} {mode} +{_added(found, name, mode, 'p50_ms'):.2f}/"
                        f"+{_added(found, name, mode, 'p99_ms'):.2f} ms" for name in doors for mode in MODES),
                        flush=True)
    report["median"] = medians(report)
    return report


def medians(report: dict[str, Any]) -> dict[str, Any]:
    rounds = report["rounds"]
    return {name: {mode: {
        **{q: statistics.median(_added(r, name, mode, q) for r in rounds) for q in ("p50_ms", "p99_ms")},
        "cpu_us": statistics.median(float(r[name][mode]["server_cpu_us_per_request"] or 0) for r in rounds),
        "errors": sum(r[name][mode]["errors"] for r in rounds),
        "achieved_rps": statistics.median(r[name][mode]["achieved_rps"] for r in rounds),
    } for mode in MODES} for name in DOORS}


def print_table(report: dict[str, Any]) -> None:
    median = medians(report)
    print(f"\nat {report['rate']} rps offered, median of {len(report['rounds'])} rounds; gateway CPU per request (a "
          "figure the load on a shared machine moves less than latency); errors summed over the rounds:")
    print("| door | mode | achieved rps | added p50 ms | added p99 ms | p50 / chat's | p99 / chat's | CPU µs/request "
          "| CPU / chat's | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in DOORS:
        for mode in MODES:
            m, c = median[name][mode], median["chat"][mode]
            print(f"| {name} | {mode} | {m['achieved_rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                  f"{_ratio(m['p50_ms'], c['p50_ms'])} | {_ratio(m['p99_ms'], c['p99_ms'])} | {m['cpu_us']:.0f} | "
                  f"{_ratio(m['cpu_us'], c['cpu_us'])} | {m['errors']} |")


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base > 0 else "n/a"


def _added(found: dict[str, Any], name: str, mode: str, q: str) -> float:
    return float(found[name][mode][q] or 0) - float(found["direct"][mode][q] or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per point")
    parser.add_argument("--out", type=Path, help="write the report as JSON here too")
    parser.add_argument("--show", type=Path, help="print the table of a report written with --out, and stop")
    args = parser.parse_args()
    if args.show:
        print_table(json.loads(args.show.read_text()))
        return
    plan = Plan(point_s=args.seconds, max_s=args.seconds, loads=(args.rate,))
    report = run(args.rounds, args.rate, plan)
    print_table(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
