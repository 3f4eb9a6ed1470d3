"""Share and budget targets on live traffic: the training calibration against the gateway's hold.

Every evaluated prompt of an outcomes file is decided once by the router (``Router.decide_many``, through the
on-disk embedding cache when given), then replayed in a fixed shuffled order (seed 0; real traffic is not sorted
by topic) through the gateway's own ``ServedRouter`` — once with ``routing.hold_window: 0`` (the training
calibration only) and once with the default window — at each target. Reported per target: the realised share of
frontier calls (share targets) or the mean estimated cost per 1,000 requests (budget targets, the router's own
cost model, which the budget is held on), over all rows and over the rows after the first window, and the mean
recorded score of the chosen models and their cost from the data (prices × tokens, as ``route eval`` counts it).
The interesting case is a router trained on another file (cross-file), where the calibrated point is far off.
A third replay ("settled") also settles each served row's cost from the data against the estimate it was routed
on, as the gateway settles the ledger's real cost (``TrafficHold.settle``), so budgets are held in real dollars.

    python bench/share_online.py --router DIR --data FILE [--embedding-cache FOLDER] [--target share=0.3 ...]
        [--target budget=2 ...]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import orjson

from tokenomy.routing.calibrate import Target, parse_target
from tokenomy.routing.costs import cost_matrix, resolve_prices
from tokenomy.routing.embedding_cache import EmbeddingCache
from tokenomy.routing.online import TrafficHold
from tokenomy.routing.outcomes import ModelPrice, read_outcomes
from tokenomy.routing.router import Decision, Router
from tokenomy.routing.serve import ServedRouter
from tokenomy.tokens.counter import TokenCounter

WINDOW = 1000


def replay(router: Router, decisions: list[Decision], target: Target, window: int,
           real: Any = None) -> list[Decision]:
    """``decisions`` served one after another; with ``real`` ((rows, models) USD) each served row's cost is settled."""
    hold = TrafficHold(window, two_models=len(router.models) == 2) if window else None
    served = ServedRouter("bench", router, None, hold=hold)
    chosen = []
    for i, decision in enumerate(decisions):
        chosen.append(held := served.held(decision, target))
        if hold is not None and real is not None:
            j = router.models.index(held.model)
            hold.settle(j, held.expected_costs_usd[held.model], float(real[i, j]))
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--router", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--embedding-cache", type=Path, default=None)
    ap.add_argument("--target", action="append", default=None,
                    help="share=S or budget=B (default share=0.1, 0.3, 0.5 and budget=1, 2, 4)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    router = Router.load(args.router, threads=2)
    if args.embedding_cache is not None:
        cache = EmbeddingCache(args.embedding_cache, router.state.features.embedder)
        router.batch_embed = cache.wrap(lambda texts: router.embedder.embed(texts).vectors)
    data = read_outcomes([args.data])
    rows = [r for r in data.evaluation_rows() if all(m in r.outcomes for m in router.models)]
    random.Random(0).shuffle(rows)
    manifest_prices = {m: ModelPrice(**p) for m, p in router.state.manifest["prices"].items()}
    priced = resolve_prices(router.models, rows, {**manifest_prices, **data.prices})
    real = cost_matrix(rows, router.models, priced, TokenCounter())  # (rows, models) USD per call
    results = []
    for text in args.target or ["share=0.1", "share=0.3", "share=0.5", "budget=1", "budget=2", "budget=4"]:
        target = parse_target(text)
        decisions = router.decide_many([r.prompt for r in rows], [target] * len(rows))
        line: dict[str, object] = {"target": text, "rows": len(rows)}
        for name, window, settled in (("calibrated", 0, None), ("online", WINDOW, None),
                                      ("settled", WINDOW, real)):
            if name == "settled" and target.kind != "budget":
                continue  # settling moves cost estimates only: share targets are held on gains
            chosen = replay(router, decisions, target, window, settled)
            measure = [float(d.model == router.frontier) if target.kind == "share" else
                       d.expected_costs_usd[d.model] * 1000 for d in chosen]
            line[name] = {
                "realised": sum(measure) / len(rows),
                "realised_after_window": sum(measure[WINDOW:]) / max(len(rows) - WINDOW, 1),
                "mean_score": sum(r.outcomes[d.model].score for r, d in zip(rows, chosen, strict=True)) / len(rows),
                "usd_per_1k": sum(real[i, router.models.index(d.model)] for i, d in enumerate(chosen)) / len(rows)
                * 1000}
        results.append(line)
    if args.json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print("| target | calibrated: realised (after the first window) / score / USD per 1k | held: the same "
          "| held, real costs settled: the same |")
    print("|---|---|---|---|")
    for line in results:
        cells = []
        for name in ("calibrated", "online", "settled"):
            c = line.get(name)
            assert c is None or isinstance(c, dict)
            cells.append("–" if c is None else f"{c['realised']:.3f} ({c['realised_after_window']:.3f}) / "
                         f"{c['mean_score']:.3f} / {c['usd_per_1k']:.2f}")
        print(f"| {line['target']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
