"""No harm on small data: routers trained on samples of 100, 300, 1,000 training rows (and the whole train split),
evaluated on every test row of the file.

For each file and sample size, ``--seeds`` samples of the file's training rows (``split != test``) are drawn
(``random.Random(seed)``), a router is trained on each (``tokenomy.routing.train.train``, the no-harm guard on;
``--unguarded`` also trains the same sample without it) and evaluated on the file's test rows
(``tokenomy.routing.evaluate.evaluate``). Reported per file and size, mean (min–max over seeds):

- harm: the largest shortfall of the router's operating points below the hull of single models at equal cost, on
  test, in points (score × 100); for the run with the largest harm, its worst point's gap with the 5–95 % interval
  over ``--bootstrap`` resamples of the test rows; and the harm against the hull of the models a team would pick
  from the same training rows (``harm_vs_training_hull``);
- policy: where ``route train`` chose the cascade (``cascade``; on a mix, per part: ``parts``), the ``auto`` curve's
  APGR, harm and cost to the best single model's score;
- cost to best: the share of the best single model's cost at which the router's curve reaches its test score;
- uplift: the operating points' mean and largest score minus the hull at their cost, in points;
- learned: the share of the 21 operating points that serve the learned rule (the rest serve the hull's model);
- APGR on the file's axis and on the normalised-cost axis (``route eval``'s figures).

Embeddings: WordLlama for every router (``--embedder``; MiniLM takes ~10 minutes per MMLU pass on this box), kept
in an embedding cache folder so a second run embeds nothing.

Mixes: ``--files mmlu+gsm8k`` trains and evaluates on both files' rows together; ``mmlu+gsm8k+even`` cuts each
file to the smallest one's train and test sizes first (a seeded sample). Files whose models differ (nim's) do not
mix: evaluation needs every model's outcome on a row.

    nice -n 10 python bench/route_noharm.py [--files mmlu,gsm8k,nim,mmlu+gsm8k] [--sizes 100,300,1000,all]
        [--seeds 3] [--unguarded] [--bootstrap 200] [--cache /tmp/route-noharm-cache] [--json OUT.json]
        [--current MODEL]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tokenomy.embeddings.choice import load_embedder
from tokenomy.routing import store
from tokenomy.routing.embedding_cache import EmbeddingCache
from tokenomy.routing.evaluate import evaluate
from tokenomy.routing.features import FeatureConfig
from tokenomy.routing.outcomes import read_prices
from tokenomy.routing.router import Router
from tokenomy.routing.train import train
from tokenomy.tokens.counter import TokenCounter

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data/routing")
FILES = {"mmlu": "routellm_mmlu.jsonl", "gsm8k": "routellm_gsm8k.jsonl", "nim": "llmrouter_nim.jsonl"}
EVEN = "even"  # a mix suffix: every file of the mix cut to the smallest one's train and test sizes (seed 0)
ROUTELLM_PRICES = ROOT / "tests/routing/data/routellm.models.json"


def _sample(lines: list[str], size: str, seed: int) -> list[str]:
    """``size`` training lines drawn with ``seed`` (every one for ``all``), then every test line."""
    train_lines = [line for line in lines if json.loads(line).get("split") != "test"]
    test_lines = [line for line in lines if json.loads(line).get("split") == "test"]
    if size == "all":
        return train_lines + test_lines
    return random.Random(seed).sample(train_lines, min(int(size), len(train_lines))) + test_lines


def _lines(name: str) -> list[str]:
    """The outcome lines of a shared file, or of a mix ``a+b`` (``a+b+even``: each file cut to the smallest
    file's train and test sizes, a seeded sample)."""
    parts = name.split("+")
    even = EVEN in parts
    files = [part for part in parts if part != EVEN]
    loaded = []
    for part in files:
        lines = [line for line in (SHARED / FILES[part]).read_text().split("\n") if line.strip()]  # prompts: U+2028
        loaded.append(([ln for ln in lines if json.loads(ln).get("split") != "test"],
                       [ln for ln in lines if json.loads(ln).get("split") == "test"]))
    if even:
        n_train, n_test = min(len(t) for t, _ in loaded), min(len(e) for _, e in loaded)
        loaded = [(random.Random(0).sample(t, n_train), random.Random(0).sample(e, n_test)) for t, e in loaded]
    return [line for t, e in loaded for line in (*t, *e)]


def _one(path: Path, prices: dict[str, Any], embedder_name: str, cache: Path, guarded: bool,
         work: Path, bootstrap: int, current: str | None = None) -> dict[str, Any]:
    counter = TokenCounter()
    embedder = load_embedder(embedder_name)
    embed = EmbeddingCache(cache, embedder_name).wrap(lambda texts: embedder.embed(texts).vectors)
    out = work / ("guarded" if guarded else "free")
    report = train([path], out, embed=embed, counter=counter, prices=prices,
                   base=FeatureConfig(embedder=embedder_name), no_harm=guarded, current=current if guarded else None)
    router = Router(store.load(out), embedder, counter)
    router.batch_embed = embed
    result = evaluate(router, [path], prices=prices, bootstrap=bootstrap)
    summary = result["summary"]["router"]
    auto = result["summary"].get("auto", summary)
    best_cost = result["reference"]["best_cost"]
    hull_points = result["no_harm"]["hull_points"]
    mine = result["summary"].get(f"single:{current}")
    within = [] if mine is None else [p["score"] for p in result["points"]["router"]
                                      if p["cost_usd"] <= mine["cost_usd"] * (1 + 1e-6)]
    vs_current = 100 * (max(within) - mine["score"]) if mine is not None and within else None
    return {"harm": 100 * summary["harm"], "uplift_mean": 100 * summary["uplift_mean"],
            "harm_training_hull": 100 * (summary.get("harm_vs_training_hull") or 0.0),
            "harm_auto": 100 * auto["harm"],
            "harm_auto_training_hull": 100 * (auto.get("harm_vs_training_hull") or 0.0),
            "policy": result["policy"], "apgr_auto": auto["apgr"], "apgr_cost_auto": auto["apgr_cost"],
            "cost_share": None if summary["cost_to_best_usd"] is None else summary["cost_to_best_usd"] / best_cost,
            "cost_share_auto": None if auto["cost_to_best_usd"] is None else auto["cost_to_best_usd"] / best_cost,
            "bootstrap": {k: v["bootstrap"] for k, v in result["summary"].items() if "bootstrap" in v},
            "verdicts": report.get("cascade", {}).get("verdicts"),
            "parts": {"train": report.get("parts"), "eval": result.get("parts")},
            "uplift_max": 100 * summary["uplift_max"], "apgr": summary["apgr"], "apgr_cost": summary["apgr_cost"],
            "learned": 1 - sum(hull_points) / len(hull_points), "verdict": report["no_harm"].get("verdict", "off"),
            "train_rows": report["rows"], "test_rows": result["rows"], "vs_hull": summary["vs_hull"],
            "hull_points": hull_points, "points": result["points"]["router"],
            "singles": {k: v for k, v in result["summary"].items() if k.startswith("single:")},
            "bands": report["no_harm"].get("bands"), "vs_current": vs_current}


def _spread(values: list[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _share(values: list[float | None]) -> str:
    """Cost shares in percent, mean (min–max) over the runs that reach the best model's score; 'never' for the
    rest."""
    reached = [100 * v for v in values if v is not None]
    missed = len(values) - len(reached)
    text = _spread(reached, 0) + " %" if reached else ""
    return (text + (f", {missed} never" if missed else "")).strip(", ") or "never"


def _boot(run: dict[str, Any], curve: str, key: str, digits: int = 3) -> str:
    found = run["bootstrap"].get(curve)
    if not found:
        return ""
    spread = found[key]
    scale = 100 if key in ("cost_share", "worst_gap_draws") else 1

    def show(value: float | None) -> str:
        return "never" if value is None else f"{scale * value:.{digits}f}"

    return f" [{show(spread['p05'])}–{show(spread['p95'])}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="mmlu,gsm8k,nim", help="shared files, or mixes of them: mmlu+gsm8k, "
                    "mmlu+gsm8k+even (each file cut to the smallest one's size)")
    ap.add_argument("--sizes", default="100,300,1000,all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--embedder", default="wordllama-l2-supercat")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "route-noharm-cache")
    ap.add_argument("--unguarded", action="store_true", help="also train each sample without the guard")
    ap.add_argument("--bootstrap", type=int, default=200, help="test-row resamples per run (spreads; 0: none)")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    ap.add_argument("--current", help="the model a team calls today (route train --current); adds, per size, the "
                    "router's best test score at no more than that model's cost minus its score")
    args = ap.parse_args(argv)
    runs: list[dict[str, Any]] = []
    print("| file | train rows | runs | harm vs test hull (pts) | worst run's worst point: gap to the test hull "
          "[5–95 % of test resamples] | harm vs training hull (pts) | harm, unguarded "
          "| uplift mean / max (pts) | learned points | APGR (cost axis) | policy: APGR auto (cost axis), harm "
          "| cost to best model's score | auto: cost to best model's score |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.files.split(","):
        files = [part for part in name.split("+") if part != EVEN]
        prices = read_prices(ROUTELLM_PRICES) if set(files) & {"mmlu", "gsm8k"} else {}
        lines = _lines(name)
        siblings = [(SHARED / FILES[f]).with_name(Path(FILES[f]).stem + ".models.json") for f in files]
        available = sum(1 for line in lines if json.loads(line).get("split") != "test")
        for size in args.sizes.split(","):
            if size != "all" and int(size) >= available:  # a sample of every row is the whole train split
                continue
            seeds = [0] if size == "all" else list(range(args.seeds))
            found: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            started = time.monotonic()
            for seed in seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    work = Path(tmp)
                    data = work / ("mix.jsonl" if len(files) > 1 else FILES[name])
                    data.write_text("\n".join(_sample(lines, size, seed)) + "\n")
                    for sibling in siblings:  # a file's prices travel with its samples
                        if sibling.is_file():
                            shutil.copy(sibling, data.with_name(data.stem + ".models.json"))
                    for guarded in (True, False) if args.unguarded else (True,):
                        run = _one(data, prices, args.embedder, args.cache, guarded, work, args.bootstrap,
                                   args.current)
                        found[guarded].append(run)
                        runs.append({"file": name, "size": size, "seed": seed, "guarded": guarded, **run})
            g, u = found[True], found[False]
            auto = [r for r in g if r["policy"] in ("cascade", "parts")]
            kinds = "/".join(sorted({r["policy"] for r in auto}))
            policy = (f"{kinds} in {len(auto)} of {len(g)}: {_spread([r['apgr_auto'] for r in g], 3)}"
                      f"{_boot(g[0], 'auto', 'apgr') if len(g) == 1 else ''} "
                      f"({_spread([r['apgr_cost_auto'] for r in g], 3)}), harm {_spread([r['harm_auto'] for r in g])}"
                      if auto else "route")
            worst = max(g, key=lambda r: r["harm"])
            boot = worst["bootstrap"].get("router")
            gap = f"{100 * boot['worst_gap']:+.1f}{_boot(worst, 'router', 'worst_gap_draws', 1)}" if boot else "–"
            print(f"| {name} | {g[0]['train_rows']} | {len(g)} | {_spread([r['harm'] for r in g])} | {gap} "
                  f"| {_spread([r['harm_training_hull'] for r in g])} "
                  f"| {_spread([r['harm'] for r in u]) if u else '–'} "
                  f"| {_spread([r['uplift_mean'] for r in g])} / {_spread([r['uplift_max'] for r in g])} "
                  f"| {_spread([r['learned'] for r in g], 2)} "
                  f"| {_spread([r['apgr'] for r in g], 3)}{_boot(g[0], 'router', 'apgr') if len(g) == 1 else ''} "
                  f"({_spread([r['apgr_cost'] for r in g], 3)}) | {policy} "
                  f"| {_share([r['cost_share'] for r in g])}"
                  f"{_boot(g[0], 'router', 'cost_share', 0) if len(g) == 1 else ''} "
                  f"| {_share([r['cost_share_auto'] for r in g]) if auto else '–'}"
                  f"{_boot(g[0], 'auto', 'cost_share', 0) if auto and len(g) == 1 else ''} |", flush=True)
            if args.current:
                print(f"<!-- {name} {size} --current {args.current}: the router at no more than its cost minus it, "
                      f"on test: {_spread([r['vs_current'] for r in g])} points -->", flush=True)
            print(f"<!-- {name} {size}: {time.monotonic() - started:.0f} s; "
                  + "; ".join(sorted({r['verdict'][:60] for r in g})) + " -->", file=sys.stderr, flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
