"""``route eval``: a trained router against the baselines on evaluation rows (split == test, or every row).

Methods, each a curve of operating points (see :mod:`tokenomy.routing.metrics` for the figures read off them):

- ``router``: the trained router at :data:`POINTS` operating points evenly spaced on the axis: the frontier-call
  price μ (the rule of a share target) on the share axis of two models, λ (quality and budget targets) on the
  normalised-cost axis of more; with two models also ``router_lambda``, the λ sweep on the same axes;
- ``cascade``: cheapest model first, escalation to the frontier at evenly spaced escalation shares (only when the
  router has a cascade check and the rows carry the cheapest model's responses);
- ``auto`` (a router whose training chose the cascade): at each share, the cascade where it won out of fold
  (:func:`tokenomy.routing.guard.cascade_verdicts`), else the router's point: what ``policy: auto`` serves; on a
  mix whose training chose per-part serving (``parts``), each part's candidate at evenly spaced targets
  (:mod:`tokenomy.routing.parts`);
- baselines: every single model; ``random`` (expected value of sending a share s to the best single model, else
  the cheapest); ``prompt_length`` (the longest s of prompts to the best single model); ``zero_router`` (the
  convex cost–quality hull of single models); ``oracle`` (the λ sweep over the true scores and costs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import OutcomeDataError
from tokenomy.routing import calibrate
from tokenomy.routing.calibrate import OperatingPoint, Target
from tokenomy.routing.cascade import escalations
from tokenomy.routing.costs import ASSUMED_OUTPUT_TOKENS, cost_matrix, resolve_prices, score_matrix
from tokenomy.routing.guard import cascade_wins, hull_at, hull_vertices
from tokenomy.routing.metrics import Point, Reference, hull, mixed_point, point, reference, summarise
from tokenomy.routing.outcomes import ModelPrice, OutcomeRow, read_outcomes
from tokenomy.routing.router import Router
from tokenomy.routing.sweep import choose, sweep_lambdas, sweep_penalties

if TYPE_CHECKING:
    import numpy as np

POINTS = 21


def evaluate(router: Router, paths: Sequence[Path], *, targets: Sequence[str] = (),
             prices: dict[str, ModelPrice] | None = None, decisions: Path | None = None,
             bootstrap: int = 0) -> dict[str, Any]:
    """``bootstrap``: that many resamples of the evaluated rows (seed 0) spread the router's, the cascade's and
    the ``auto`` curve's APGR and cost share to the best model's score (:func:`bootstrap_curve`)."""
    import numpy as np

    data = read_outcomes(paths)
    models = router.models
    candidates = data.evaluation_rows()
    rows = [r for r in candidates if all(m in r.outcomes for m in models)]
    if not rows:
        raise OutcomeDataError(f"no evaluation row has outcomes for every router model {models}")
    manifest_prices = {m: ModelPrice(**p) for m, p in router.state.manifest["prices"].items()}
    priced = resolve_prices(models, rows, {**manifest_prices, **data.prices, **(prices or {})})
    scores = score_matrix(rows, models)
    costs = cost_matrix(rows, models, priced, router._counter)
    ref = reference(models, scores, costs)
    strong = models.index(ref.best) if ref.share_axis else None

    features = router.features([r.prompt for r in rows], [r.group for r in rows])
    expected = router.expected(features)
    est_costs = router.estimated_costs([r.prompt for r in rows])
    by_cost = [OperatingPoint(lam) for lam in sweep_lambdas(expected, est_costs, strong, POINTS)]
    frontier = models.index(router.frontier)
    operating = [OperatingPoint(0.0, mu) for mu in sweep_penalties(expected, est_costs, frontier, POINTS)] \
        if ref.share_axis else by_cost
    assignments = [router.choose(expected, est_costs, at) for at in operating]
    curves: dict[str, list[Point]] = {"router": [point(ref, models, a, scores, costs) for a in assignments]}
    if ref.share_axis:  # the quality and budget targets' rule, read on the same axes
        curves["router_lambda"] = [point(ref, models, router.choose(expected, est_costs, at), scores, costs)
                                   for at in by_cost]
    if decisions is not None:
        _write_decisions(decisions, rows, models, assignments)
    index = np.arange(len(rows))
    per_row = {"router": [(scores[index, a], costs[index, a]) for a in assignments]}

    cascade_curve, cascade_note, cascade_rows = _cascade(router, rows, features, scores, costs, ref)
    if cascade_curve is not None:
        curves["cascade"], per_row["cascade"] = cascade_curve, cascade_rows
        if router.policy == "cascade" and ref.share_axis:  # what policy: auto serves, share by share
            verdicts = (router.state.manifest.get("cascade") or {}).get("verdicts", [])
            served = [cascade_wins(verdicts, k / (POINTS - 1)) for k in range(POINTS)]
            curves["auto"] = [(cascade_curve if c else curves["router"])[k] for k, c in enumerate(served)]
            per_row["auto"] = [(cascade_rows if c else per_row["router"])[k] for k, c in enumerate(served)]
    parts_note: dict[str, Any] = {"evaluated": False}
    if router.policy == "parts" and router.state.parts is not None:  # what policy: auto serves on a mix
        curves["auto"], per_row["auto"], parts_note = _parts_curve(router, rows, features, expected, est_costs,
                                                                  scores, costs, ref)
    singles = {m: point(ref, models, np.full(len(rows), j), scores, costs) for j, m in enumerate(models)}
    curves.update(_baselines(ref, models, rows, scores, costs, singles, strong))
    summary = {name: {**summarise(ref, curve), **against_hull(curve, list(singles.values()))}
               for name, curve in curves.items()}
    picked = training_hull(router.state.calibration)
    if picked:  # the hull a team builds from its training rows alone, realised on these rows
        for name, curve in curves.items():
            summary[name]["harm_vs_training_hull"] = against_hull(curve, [singles[m] for m in picked])["harm"]
    if bootstrap:
        for name, scored in per_row.items():
            summary[name]["bootstrap"] = bootstrap_curve(ref, models, scores, costs, curves[name], scored, bootstrap)
    for name, single in singles.items():
        summary[f"single:{name}"] = {"score": single.score, "cost_usd": single.cost_usd}
    return {
        "router": router.describe(), "data": [str(p) for p in paths], "rows": len(rows),
        "rows_skipped_missing_models": len(candidates) - len(rows), "models": models,
        "reference": asdict(ref), "axis": "share of calls to the best single model" if ref.share_axis else
        "normalised cost (cheapest = 0, best single model = 1)",
        "cost_assumption": f"prices × tokens where no cost_usd; output tokens from the response, else "
                           f"{ASSUMED_OUTPUT_TOKENS}", "summary": summary, "cascade": cascade_note,
        "calibration": _calibration(router, targets, expected, est_costs, scores, costs, ref),
        "policy": router.policy, "parts": parts_note,
        "no_harm": {"guard": router.guard.active, "harm": summary["router"]["harm"],
                    "harm_auto": summary.get("auto", summary["router"])["harm"],
                    "harm_vs_training_hull": summary["router"].get("harm_vs_training_hull"),
                    "training_hull": picked,
                    "hull_points": [bool(router.guard.apply(at)[0].model) for at in operating]},
        "points": {name: [asdict(p) for p in curve] for name, curve in curves.items()},
        "operating_points": [asdict(at) for at in operating]}


def training_hull(calibration: Sequence[dict[str, Any]]) -> list[str]:
    """The models on the hull of single models *of the training rows* (the calibration's ``single`` rows: mean
    score and USD per 1k there): what a team without a router would pick from the same rows. Empty for a router
    trained before the guard."""
    singles = [r for r in calibration if r.get("kind") == "single"]
    if not singles:
        return []
    vertices = hull_vertices([float(r["usd_per_1k"]) for r in singles], [float(r["score"]) for r in singles])
    return [str(singles[v]["model"]) for v in vertices]


def against_hull(curve: Sequence[Point], singles: Sequence[Point]) -> dict[str, Any]:
    """Each operating point's score minus the hull of single models at its cost (``vs_hull``); ``harm`` = the
    largest shortfall below the hull at equal cost (0 when no point falls below it); ``uplift_mean`` /
    ``uplift_max`` over the points."""
    costs, scores = [p.cost_usd for p in singles], [p.score for p in singles]
    gaps = [p.score - hull_at(costs, scores, p.cost_usd) for p in curve]
    return {"harm": max(0.0, -min(gaps)), "uplift_mean": sum(gaps) / len(gaps), "uplift_max": max(gaps),
            "vs_hull": gaps}


def _baselines(ref: Reference, models: Sequence[str], rows: Sequence[OutcomeRow], scores: np.ndarray,
               costs: np.ndarray, singles: dict[str, Point], strong: int | None) -> dict[str, list[Point]]:
    import numpy as np

    cheap, best = models.index(ref.cheapest), models.index(ref.best)
    steps = [k / (POINTS - 1) for k in range(POINTS)]
    random = [mixed_point(ref, singles[ref.cheapest], singles[ref.best], s) for s in steps]
    order = np.argsort([-len(r.prompt) for r in rows], kind="stable")
    length = []
    for s in steps:
        chosen = np.full(len(rows), cheap)
        chosen[order[: round(s * len(rows))]] = best
        length.append(point(ref, models, chosen, scores, costs))
    oracle = [point(ref, models, choose(scores, costs, lam), scores, costs)
              for lam in sweep_lambdas(scores, costs, strong, POINTS)]
    return {"random": random, "prompt_length": length, "zero_router": hull(ref, list(singles.values())),
            "oracle": oracle}


def bootstrap_curve(ref: Reference, models: Sequence[str], scores: np.ndarray, costs: np.ndarray,
                    curve: Sequence[Point], scored: Sequence[tuple[np.ndarray, np.ndarray]], draws: int,
                    seed: int = 0) -> dict[str, Any]:
    """The spread of a curve's figures over ``draws`` resamples of the evaluated rows (with replacement), its
    operating points' assignments held fixed: each point's score and cost, the cheapest and best models' scores and
    costs are re-read on each resample. ``scored``: per point, the per-row (score, cost paid). Reports the standard
    deviation and the 5th–95th percentiles of APGR (file's axis and cost axis), of the cost share at which the
    curve reaches the best single model's score (``cost_share``; a resample where it never does counts as above
    every other, a percentile there is None), and of the gap to the hull of single models at the point furthest
    below it on every row (``worst_gap_draws``: is that shortfall more than the evaluated rows' noise?)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cheap, best = models.index(ref.cheapest), models.index(ref.best)
    found: dict[str, list[float]] = {"apgr": [], "apgr_cost": [], "cost_share": [], "worst_gap": []}
    mean_c, mean_s = costs.mean(axis=0), scores.mean(axis=0)
    gaps = [p.score - hull_at(list(mean_c), list(mean_s), p.cost_usd) for p in curve]
    worst = int(np.argmin(gaps))  # the point furthest below (or least above) the hull on every row
    for _ in range(draws):
        pick = rng.integers(0, len(scores), len(scores))
        again = replace(ref, cheap_score=float(scores[pick, cheap].mean()), best_score=float(scores[pick, best].mean()),
                        cheap_cost=float(costs[pick, cheap].mean()), best_cost=float(costs[pick, best].mean()))
        points = []
        for p, (got, paid) in zip(curve, scored, strict=True):
            cost = float(paid[pick].mean())
            points.append(Point(x=p.x if again.share_axis else again.cost_x(cost), score=float(got[pick].mean()),
                                cost_usd=cost, shares=p.shares))
        figures = summarise(again, points)
        found["apgr"].append(figures["apgr"])
        found["apgr_cost"].append(figures["apgr_cost"])
        reach = figures["cost_to_best_usd"]
        found["cost_share"].append(float("inf") if reach is None else reach / again.best_cost)
        resampled = list(costs[pick].mean(axis=0)), list(scores[pick].mean(axis=0))
        found["worst_gap"].append(points[worst].score - hull_at(*resampled, points[worst].cost_usd))
    spread: dict[str, Any] = {"draws": draws, "worst_point": worst, "worst_gap": gaps[worst]}
    for key, values in found.items():
        ordered = sorted(values)
        finite = [v for v in ordered if np.isfinite(v)]

        def rank(q: float, ordered: list[float] = ordered) -> float | None:  # nearest rank: inf stays "never"
            value = ordered[round(q * (len(ordered) - 1))]
            return float(value) if np.isfinite(value) else None

        spread[key if key != "worst_gap" else "worst_gap_draws"] = {
            "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None, "p05": rank(0.05), "p95": rank(0.95),
            "reached": len(finite) / len(ordered)}
    return spread


def _cascade(router: Router, rows: Sequence[OutcomeRow], features: Any, scores: np.ndarray, costs: np.ndarray,
             ref: Reference) -> tuple[list[Point] | None, dict[str, Any], list[tuple[np.ndarray, np.ndarray]]]:
    import numpy as np

    check = router.state.cascade
    if check is None:
        return None, {"evaluated": False, "reason": "the router has no cascade check"}, []
    answers = [(r.outcomes[check.cheap].response or "") for r in rows]
    if not all(answers):
        return None, {"evaluated": False, "reason": f"not every evaluation row carries a {check.cheap} response"}, []
    gain = router.escalation_gain(features, answers)
    cheap, frontier = router.models.index(check.cheap), router.models.index(check.frontier)
    curve, scored = [], []
    index = np.arange(len(rows))
    for mask in escalations(gain, POINTS):
        chosen = np.where(mask, frontier, cheap)
        extra = np.where(mask, costs[:, cheap], 0.0)
        curve.append(point(ref, router.models, chosen, scores, costs, extra_cost=extra))
        scored.append((scores[index, chosen], costs[index, chosen] + extra))
    return curve, {"evaluated": True, "cheap": check.cheap, "frontier": check.frontier,
                   "note": "x on the share axis is the escalation share; apgr_cost charges every cheap call"}, scored


def _parts_curve(router: Router, rows: Sequence[OutcomeRow], features: Any, expected: np.ndarray,
                 est_costs: np.ndarray, scores: np.ndarray, costs: np.ndarray, ref: Reference
                 ) -> tuple[list[Point], list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """What ``policy: auto`` serves on a mix (:mod:`tokenomy.routing.parts`), at :data:`POINTS` targets evenly
    spaced on the axis (shares with two models, else budgets from the cheapest to the dearest vertex): each row is
    put in a part by the detector and served its part's candidate at the target's vertex. The cascade escalates
    the candidate's share of the part's answered rows with the largest gain (the gateway holds that share on the
    part's recent requests, as it holds a cascade's share target); a row of the answered part without a recorded
    cheap answer counts at its worse model's score and both calls' cost."""
    import numpy as np

    parts = router.state.parts
    assert parts is not None
    part = parts.part_of(features)
    check = router.state.cascade
    cheap = router.models.index(check.cheap) if check is not None else 0
    front = router.models.index(router.frontier)
    answers = [r.outcomes[router.models[cheap]].response or "" for r in rows]
    answered = np.array([bool(a) for a in answers])
    gain = np.full(len(rows), -np.inf)
    asked = np.nonzero((part == 1) & answered)[0]
    if check is not None and len(asked):
        gain[asked] = router.escalation_gain(features.take(asked), [answers[i] for i in asked])
    frontier_score = float(router.state.manifest["frontier_score"])
    if ref.share_axis:
        targets = [Target("share", k / (POINTS - 1)) for k in range(POINTS)]
    else:
        low, high = parts.table[0]["usd_per_1k"], parts.table[-1]["usd_per_1k"]
        targets = [Target("budget", low + k / (POINTS - 1) * (high - low)) for k in range(POINTS)]
    index = np.arange(len(rows))
    curve, scored, served = [], [], []
    for target in targets:
        vertex = parts.solve(target, frontier_score)
        chosen, extra = np.full(len(rows), cheap), np.zeros(len(rows))
        for p in range(len(parts.candidates)):
            members = np.nonzero(part == p)[0]
            pick = parts.pick(vertex, p)
            served.append(pick.kind)
            if pick.kind == "cascade":  # the share among the part's answered rows, as held on live traffic
                asked_here = members[answered[members]]
                up = asked_here[np.argsort(-gain[asked_here], kind="stable")[: round(pick.share * len(asked_here))]]
                chosen[up], extra[up] = front, costs[up, cheap]
                blind = members[~answered[members]]
                worse = np.where(scores[blind, front] < scores[blind, cheap], front, cheap)
                chosen[blind], extra[blind] = worse, costs[blind, cheap] + costs[blind, front] - costs[blind, worse]
            else:
                chosen[members] = router.choose(expected[members], est_costs[members], pick.point(), guarded=False)
        curve.append(point(ref, router.models, chosen, scores, costs, extra_cost=extra))
        scored.append((scores[index, chosen], costs[index, chosen] + extra))
    note = {"evaluated": True, "rows_per_part": [int((part == p).sum()) for p in range(len(parts.candidates))],
            "answered_part_rows_without_answer": int(((part == 1) & ~answered).sum()),
            "answered_rows_in_other_part": int(((part == 0) & answered).sum()),
            "served": {k: served.count(k) for k in ("single", "route", "cascade")}}
    return curve, scored, note


def _calibration(router: Router, targets: Sequence[str], expected: np.ndarray, est_costs: np.ndarray,
                 scores: np.ndarray, costs: np.ndarray, ref: Reference) -> list[dict[str, Any]]:
    wanted = [str(router.default_target), *targets]
    frontier_score = float(scores[:, router.models.index(router.frontier)].mean())
    results = []
    for text in dict.fromkeys(wanted):
        target = calibrate.parse_target(text)
        at = router.operating_point(target)
        got = calibrate.realised(router.models, router.frontier, router.choose(expected, est_costs, at), scores,
                                 costs)
        realised_value = {"share": got["share"], "quality": got["score"] / frontier_score if frontier_score else 0.0,
                          "budget": got["usd_per_1k"]}[target.kind]
        oof = next(row for row in router.state.calibration if at.matches(row))
        results.append({"target": str(target), "lambda": at.lam, "mu": at.mu, "realised": realised_value,
                        "training_oof": {"share": oof["share"], "usd_per_1k": oof["usd_per_1k"],
                                         "quality": oof["score"] / float(router.state.manifest["frontier_score"])},
                        "test": got, "frontier_score_test": frontier_score, "pgr_test": ref.pgr(got["score"])})
    return results


def _write_decisions(path: Path, rows: Sequence[OutcomeRow], models: Sequence[str],
                     assignments: Sequence[np.ndarray]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for k, chosen in enumerate(assignments):
            for row, index in zip(rows, chosen, strict=True):
                handle.write(json.dumps({"point": k, "id": row.id, "model": models[int(index)]}) + "\n")
