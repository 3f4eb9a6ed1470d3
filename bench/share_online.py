"""Share targets on live traffic: the training calibration against the gateway's online hold.

Every evaluated prompt of an outcomes file is decided once by the router (``Router.decide_many``, through the
on-disk embedding cache when given), then replayed in a fixed shuffled order (seed 0; real traffic is not sorted
by topic) through the gateway's own ``ServedRouter`` — once with ``routing.share_window: 0`` (the training
calibration only) and once with the default window — at each share target. Reported per target: the realised
share of frontier calls over all rows and over the rows after the first window, and the mean recorded score of
the chosen models. The interesting case is a router trained on another file (cross-file), where the calibrated
frontier charge is far off.

    python bench/share_online.py --router DIR --data FILE [--embedding-cache FOLDER] [--target share=0.3 ...]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import orjson

from tokenomy.routing.calibrate import Target, parse_target
from tokenomy.routing.embedding_cache import EmbeddingCache
from tokenomy.routing.online import ShareTracker
from tokenomy.routing.outcomes import read_outcomes
from tokenomy.routing.router import Decision, Router
from tokenomy.routing.serve import ServedRouter

WINDOW = 1000


def replay(router: Router, decisions: list[Decision], target: Target, window: int) -> list[str]:
    served = ServedRouter("bench", router, None, shares=ShareTracker(window) if window else None)
    return [served._held(d, target).model for d in decisions]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--router", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--embedding-cache", type=Path, default=None)
    ap.add_argument("--target", action="append", default=None, help="share=S (default 0.1, 0.3, 0.5)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    router = Router.load(args.router, threads=2)
    if args.embedding_cache is not None:
        cache = EmbeddingCache(args.embedding_cache, router.state.features.embedder)
        router.batch_embed = cache.wrap(lambda texts: router.embedder.embed(texts).vectors)
    rows = [r for r in read_outcomes([args.data]).evaluation_rows() if all(m in r.outcomes for m in router.models)]
    random.Random(0).shuffle(rows)
    results = []
    for text in args.target or ["share=0.1", "share=0.3", "share=0.5"]:
        target = parse_target(text)
        decisions = router.decide_many([r.prompt for r in rows], [target] * len(rows))
        line: dict[str, object] = {"target": text, "rows": len(rows)}
        for name, window in (("calibrated", 0), ("online", WINDOW)):
            chosen = replay(router, decisions, target, window)
            frontier = [m == router.frontier for m in chosen]
            line[name] = {
                "share": sum(frontier) / len(rows),
                "share_after_window": sum(frontier[WINDOW:]) / max(len(rows) - WINDOW, 1),
                "mean_score": sum(r.outcomes[m].score for r, m in zip(rows, chosen, strict=True)) / len(rows)}
        results.append(line)
    if args.json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print("| target | calibrated: share (after the first window) / score | online: share (after) / score |")
    print("|---|---|---|")
    for line in results:
        c, o = line["calibrated"], line["online"]
        assert isinstance(c, dict) and isinstance(o, dict)
        print(f"| {line['target']} | {c['share']:.3f} ({c['share_after_window']:.3f}) / {c['mean_score']:.3f} | "
              f"{o['share']:.3f} ({o['share_after_window']:.3f}) / {o['mean_score']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
