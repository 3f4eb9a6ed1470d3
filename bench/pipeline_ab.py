"""Before vs after, in one run: the gateway's added latency at one offered load, for two versions of ``src/``.

    .venv/bin/python bench/pipeline_ab.py --before 939b14d [--after HEAD] [--rounds 5] [--rate 500] [--seconds 8]

Both versions serve the same zero-delay upstream (tokenomy.testing.fault_upstream) with the same config
(``services.tokenomy_config``), each ``tokenomy serve`` pinned to core 1 and the upstream and load generator to core
0, as in bench/overhead.py. Each round measures, in an order that alternates between rounds: the upstream called
directly, then each version, plain and streamed, at ``--rate`` requests/s for ``--seconds``. Added latency = the
version's percentile − the direct percentile of the same round; the report gives each round and the median over the
rounds, and after/before. Interleaving is what makes the comparison fair on a shared machine: whatever else runs
lands on both versions alike (the "other CPU" column says how much did). Each version's ``src/`` is unpacked with
``git archive`` and put first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules: bench/ is not a package

import services
from measure import Plan, run_loadgen
from overhead import _checkout_src, _git

MODES = ("plain", "stream")


def _measure(service: services.Service, plan: Plan, rate: int, upstream: services.Service | None) -> dict[str, Any]:
    found = {}
    for mode in MODES:
        run_loadgen(service, plan, upstream=upstream, stream=mode == "stream", concurrency=16, seconds=1.0)  # warm
        point = run_loadgen(service, plan, upstream=upstream, stream=mode == "stream", rate=rate,
                            seconds=plan.point_s)
        found[mode] = {k: point[k] for k in ("p50_ms", "p99_ms", "achieved_rps", "errors", "other_cpu_share")}
    return found


@contextlib.contextmanager
def _versions(refs: dict[str, str], workdir: Path, env: dict[str, str], config: Path,
              plan: Plan) -> Iterator[dict[str, services.Service]]:
    with contextlib.ExitStack() as stack:
        running = {}
        for name, ref in refs.items():
            home = workdir / name
            home.mkdir()
            src = _checkout_src(ref, home)
            own = {**env, "PYTHONPATH": str(src), "HOME": str(home)}
            mine = home / "tokenomy.yaml"  # the same config, but a data dir (ledger, caches) of its own
            mine.write_text(config.read_text().replace(str(workdir / "tokenomy-home"), str(home / "data")))
            running[name] = stack.enter_context(services.tokenomy_serve(home, plan.gateway_core, own, mine))
        yield running


def run(refs: dict[str, str], rounds: int, rate: int, plan: Plan) -> dict[str, Any]:
    report: dict[str, Any] = {"refs": {k: _git("rev-parse", "--short", v) for k, v in refs.items()}, "rate": rate,
                              "point_s": plan.point_s, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="tokenomy-ab-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "HOME": str(workdir), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1"}
        with services.upstream(workdir, plan.loadgen_core, env) as upstream:
            config = services.tokenomy_config(workdir, upstream, env)
            with _versions(refs, workdir, env, config, plan) as versions:
                for i in range(rounds):
                    order = list(versions) if i % 2 == 0 else list(reversed(versions))
                    found = {"direct": _measure(upstream, plan, rate, None)}
                    for name in order:
                        found[name] = _measure(versions[name], plan, rate, upstream)
                    report["rounds"].append(found)
                    print(f"round {i + 1}/{rounds}: " + "; ".join(_shown(found, name, mode)
                                                                  for name in versions for mode in MODES), flush=True)
    report["median"] = {name: {mode: {q: statistics.median(_added(r, name, mode, q) for r in report["rounds"])
                                      for q in ("p50_ms", "p99_ms")} for mode in MODES} for name in refs}
    return report


def _shown(found: dict[str, Any], name: str, mode: str) -> str:
    p50, p99 = (_added(found, name, mode, q) for q in ("p50_ms", "p99_ms"))
    return f"{name} {mode} +{p50:.2f}/+{p99:.2f} ms (other CPU {found[name][mode]['other_cpu_share']:.0%})"


def _interval(rounds: list[dict[str, Any]], mode: str, q: str, draws: int = 2000) -> tuple[float, float]:
    """A 90 % bootstrap interval of after/before (the ratio of the medians over rounds), resampling whole rounds:
    how far the ratio could move with other rounds of the same box."""
    rng = random.Random(0)
    ratios = []
    for _ in range(draws):
        sample = [rng.choice(rounds) for _ in rounds]
        before = statistics.median(_added(r, "before", mode, q) for r in sample)
        after = statistics.median(_added(r, "after", mode, q) for r in sample)
        ratios.append(after / before if before > 0 else float("inf"))
    ratios.sort()
    return ratios[int(0.05 * draws)], ratios[int(0.95 * draws) - 1]


def _added(found: dict[str, Any], name: str, mode: str, q: str) -> float:
    return float(found[name][mode][q] or 0) - float(found["direct"][mode][q] or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the git revision measured as 'before'")
    parser.add_argument("--after", default="HEAD", help="the git revision measured as 'after' (default HEAD)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=500, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per point")
    parser.add_argument("--out", type=Path, help="write the report as JSON here too")
    args = parser.parse_args()
    plan = Plan(point_s=args.seconds, max_s=args.seconds, loads=(args.rate,))
    report = run({"before": args.before, "after": args.after}, args.rounds, args.rate, plan)
    print(f"\nadded latency at {args.rate} rps, median of {args.rounds} rounds "
          f"(before {report['refs']['before']}, after {report['refs']['after']}):")
    print("| mode | before p50 | after p50 | after/before [90 % interval] | before p99 | after p99 | "
          "after/before [90 % interval] |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        b, a = report["median"]["before"][mode], report["median"]["after"][mode]
        cells = []
        for q in ("p50_ms", "p99_ms"):
            low, high = _interval(report["rounds"], mode, q)
            cells.append(f"{b[q]:.2f} | {a[q]:.2f} | {a[q] / b[q]:.2f} [{low:.2f}, {high:.2f}]")
        print(f"| {mode} | {' | '.join(cells)} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
