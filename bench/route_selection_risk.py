"""How often choosing single models from a small sample of rows already does harm on test, with no learning at all.

The no-harm guard (``tokenomy.routing.guard``) falls back to the hull's single models wherever learning does not
pay; which models those are is itself read off the training rows (``sure_vertices``: the cheapest, the best on the
rows, and between them a model only where it beats the cheaper ones beyond the fold-to-fold noise). On few rows
that choice can be wrong: two models of one price whose order on the sample is the reverse of their order on test.
This bench measures that floor: for each file and sample size it draws ``--draws`` samples of the training rows
(``random.Random(seed)`` for seed 0..draws-1, the same draws as ``bench/route_noharm.py``'s first seeds), takes the
guard's served single models from each sample, and measures on every test row of the file how far the worst of
them falls below the test hull of single models at its cost (the harm ``route eval`` reports, in points).

Reported per file and size: the share of draws whose hull choice does more than 1 point of harm, the mean and the
95th percentile of that harm, and the same for the plainest rule a team could use on its rows, "call the model
that scored best on them" (``best``): the top of every hull choice. No rule that sees only the sample can do
better than chance at ordering two models the sample cannot tell apart, so a share above zero here is a floor on
how often any guard built from the same rows misses "harm ≤ 1 at every sample".

    python bench/route_selection_risk.py [--files nim,gsm8k,mmlu] [--sizes 100,300,1000] [--draws 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import numpy as np

from tokenomy.routing.costs import cost_matrix, resolve_prices, score_matrix
from tokenomy.routing.guard import hull_at, sure_vertices
from tokenomy.routing.outcomes import read_outcomes, read_prices
from tokenomy.routing.selection import fold_of
from tokenomy.tokens.counter import TokenCounter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench: bench/ is not a package
from route_noharm import FILES, ROUTELLM_PRICES, SHARED  # the same files, prices and samples


def _harm(vertices: list[int], test_costs: np.ndarray, test_scores: np.ndarray) -> float:
    """The largest shortfall, in points, of any of ``vertices`` below the test hull at its own test cost."""
    costs, scores = list(test_costs), list(test_scores)
    return max(100 * max(0.0, hull_at(costs, scores, costs[v]) - scores[v]) for v in vertices)


def _row(name: str, size: int, harms: list[float], best: list[float]) -> str:
    def cell(values: list[float]) -> str:
        over = sum(1 for h in values if h > 1.0)
        q95 = float(np.percentile(values, 95))
        return f"{over}/{len(values)} ({100 * over / len(values):.0f} %) | {statistics.mean(values):.1f} | {q95:.1f}"

    return f"| {name} | {size} | {cell(harms)} | {cell(best)} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="nim,gsm8k,mmlu")
    ap.add_argument("--sizes", default="100,300,1000")
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args(argv)
    counter = TokenCounter()
    print("| file | train rows | hull choice: draws with harm > 1 pt | mean harm | 95th pct | best on the rows: "
          "draws with harm > 1 pt | mean harm | 95th pct |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.files.split(","):
        path = SHARED / FILES[name]
        data = read_outcomes([path])
        prices = {**data.prices, **(read_prices(ROUTELLM_PRICES) if name != "nim" else {})}
        train_rows = data.training_rows()
        test_rows = [r for r in data.rows if r.split == "test"]
        models = list(dict.fromkeys(m for r in train_rows for m in r.outcomes))
        priced = resolve_prices(models, train_rows, prices)
        scores, costs = score_matrix(train_rows, models), cost_matrix(train_rows, models, priced, counter)
        test_scores = score_matrix(test_rows, models).mean(axis=0)
        test_costs = cost_matrix(test_rows, models, priced, counter).mean(axis=0)
        ids = [r.id for r in train_rows]
        for size in (int(s) for s in args.sizes.split(",")):
            if size >= len(train_rows):
                continue
            harms, best = [], []
            for seed in range(args.draws):
                idx = np.array(random.Random(seed).sample(range(len(train_rows)), size))
                folds = fold_of([ids[i] for i in idx])
                members = [np.nonzero(folds == f)[0] for f in sorted(set(folds.tolist()))]
                vertices = sure_vertices(costs[idx], scores[idx], members)
                harms.append(_harm(vertices, test_costs, test_scores))
                means = scores[idx].mean(axis=0)
                best.append(_harm([max(range(len(models)), key=lambda j: (means[j], -costs[idx, j].mean()))],
                                  test_costs, test_scores))
            print(_row(name, size, harms, best), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
