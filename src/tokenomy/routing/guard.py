"""No harm by construction: the learned rule is kept only where, out of fold, it beats the hull of single models.

The *hull* is the upper concave envelope of the single models' (mean cost, mean score) points: what a team gets
without learning, by calling one model or mixing two. At a cost below the cheapest model it is that model's score,
above the best model's cost the best model's score (both conservative: a router is never credited for being cheap
or dear alone).

:func:`annotate` takes the calibration table (every operating point's out-of-fold decisions on the training rows)
and, for every operating point and every fold, measures the *uplift*: the fold's mean score minus the hull of that
fold's single models at the fold's mean cost (a paired comparison on the same rows). The operating points are cut
into cost bands (tenths of the normalised cost, cheapest single model = 0, best = 1, plus one band at or above the
best model's cost). A point keeps the learned rule only when both its band and the point itself beat the hull by
more than the fold-to-fold noise (mean uplift > the standard deviation of the fold uplifts); every other point falls
back to the hull's choice at the same operating point: the hull vertex (a single model) with the best mean score −
λ·mean cost − μ·[frontier] (λ = 0, "best expected quality", is the best model; a large λ the cheapest).
The vertices served are themselves chosen the same way (:func:`sure_vertices`): a dearer model is one only where it
beats the cheaper ones by more than the noise, so on few rows a model that merely looked better is not served.
On small data (:data:`tokenomy.routing.selection.NESTED_MAX_ROWS`) the uplift is measured on nested out-of-fold
predictions (:func:`tokenomy.routing.selection.nested_oof`): the chosen learner's own are optimistic there.
Every single model also enters the table (``kind: single``, ``hull`` true for the hull's vertices), and a target
is met by a hull vertex wherever that is at least as good as the learned points that survived
(:func:`tokenomy.routing.calibrate.solve`; a model below the hull is never a target's answer: at its cost the hull
does better).

:class:`Guard` applies the verdicts when deciding: an operating point (λ, μ) is matched to the nearest calibration
row of its kind, and a point whose row does not beat the hull serves that row's fallback model.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenomy.routing.calibrate import OperatingPoint, realised
from tokenomy.routing.sweep import choose

if TYPE_CHECKING:
    import numpy as np

BANDS = 10
_EPS = 1e-9  # a point that serves one model everywhere is on the hull, not above it: rounding is no uplift
NOT_PAYING = "serving the best single model: routing does not beat it here"
NOT_PAYING_CURRENT = "serving your current model: routing does not beat it here"


def hull_vertices(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the models on the upper-left convex hull of ``(cost, score)``, cheapest first (strictly rising
    cost and score)."""
    order = sorted(range(len(costs)), key=lambda j: (costs[j], -scores[j]))
    vertices: list[int] = []
    for j in order:
        if vertices and scores[j] <= scores[vertices[-1]]:
            continue
        while len(vertices) >= 2 and _below(costs, scores, vertices[-2], vertices[-1], j):
            vertices.pop()
        vertices.append(j)
    return vertices


def _below(costs: Sequence[float], scores: Sequence[float], a: int, b: int, c: int) -> bool:
    """True when ``b`` lies on or below the segment from ``a`` to ``c``."""
    cross = (costs[b] - costs[a]) * (scores[c] - scores[a]) - (scores[b] - scores[a]) * (costs[c] - costs[a])
    return cross >= 0


def hull_at(costs: Sequence[float], scores: Sequence[float], cost: float) -> float:
    """The hull's score at mean cost ``cost`` (flat past either end)."""
    vertices = hull_vertices(costs, scores)
    xs, ys = [costs[v] for v in vertices], [scores[v] for v in vertices]
    if cost <= xs[0]:
        return float(ys[0])
    if cost >= xs[-1]:
        return float(ys[-1])
    k = bisect.bisect_right(xs, cost)
    frac = (cost - xs[k - 1]) / (xs[k] - xs[k - 1])
    return float(ys[k - 1] + frac * (ys[k] - ys[k - 1]))


def sure_vertices(costs: np.ndarray, scores: np.ndarray, members: Sequence[np.ndarray],
                  current: int | None = None) -> list[int]:
    """The hull's choices that are not a gamble: the cheapest and the best model (highest mean score); between them,
    from the cheapest up, a dearer model joins only when it beats the hull of the models already in by more than the
    fold-to-fold noise at its cost (per fold, on that fold's rows). On few rows two models whose scores differ by
    noise are not told apart: the one already in (the cheaper; at one price, the better on these rows) stays the
    choice. ``current`` (the model a team calls today, ``route train --current``) takes the best model's place: it is
    in from the start, and any other model, the best on these rows included, joins only by beating the hull of the
    models already in (``current`` among them) by more than the noise. ``costs``/``scores``: ``(rows, models)``;
    ``members``: each fold's rows."""
    import numpy as np

    mean_c, mean_s = costs.mean(axis=0), scores.mean(axis=0)
    order = sorted(range(costs.shape[1]), key=lambda j: (mean_c[j], -mean_s[j]))
    # with a current model the best on these rows gets no pass: it joins beyond the noise or not at all
    best = max(range(costs.shape[1]), key=lambda j: (mean_s[j], -mean_c[j])) if current is None else None
    chosen = [order[0]] if current in (None, order[0]) else [order[0], current]
    for j in order[1:]:
        if j == current:
            continue
        if j == best:  # the best single model is always served where a target asks for it: a team's own model
            chosen.append(j)
            continue
        per_fold = np.array([scores[m, j].mean() - hull_at([costs[m, v].mean() for v in chosen],
                                                           [scores[m, v].mean() for v in chosen], costs[m, j].mean())
                             for m in members])
        if per_fold.mean() > _spread(per_fold) + _EPS:
            chosen.append(j)
    kept = hull_vertices([mean_c[v] for v in chosen], [mean_s[v] for v in chosen])
    return sorted((chosen[k] for k in kept), key=lambda v: mean_c[v])


@dataclass(frozen=True, slots=True)
class _Measured:
    uplift: float  # mean over folds (weighted by fold size), score units
    spread: float  # standard deviation of the fold uplifts
    per_fold: Any  # (folds,) array
    cost: float  # mean cost on every training row
    band: int


def annotate(table: list[dict[str, Any]], models: Sequence[str], frontier: str, expected: np.ndarray,
             est_costs: np.ndarray, scores: np.ndarray, costs: np.ndarray,
             folds: np.ndarray, current: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The calibration ``table`` with every row's verdict (``uplift``, ``spread``, ``band``, ``beats_hull``,
    ``fallback``) and one ``single`` row per model; and the report of the bands. All arrays are of the training rows
    with a score for every model; ``expected`` are out-of-fold predictions, ``folds`` the fold of each row;
    ``current``: the model a team calls today (:func:`sure_vertices`)."""
    import numpy as np

    mean_s, mean_c = scores.mean(axis=0), costs.mean(axis=0)
    fold_ids = sorted(set(folds.tolist()))
    members = [np.nonzero(folds == f)[0] for f in fold_ids]
    full = hull_vertices(list(mean_c), list(mean_s))  # the hull learned points must beat: every model's
    vertices = sure_vertices(costs, scores, members,  # the hull's choices served: those not within noise
                             None if current is None else models.index(current))
    cheap_cost, best_cost = float(mean_c[full[0]]), float(mean_c[full[-1]])
    sizes = np.array([len(m) for m in members], dtype=float)
    fold_singles = [(list(costs[m].mean(axis=0)), list(scores[m].mean(axis=0))) for m in members]
    front = models.index(frontier)

    measured = []
    for row in table:
        chosen = choose(expected, est_costs, float(row["lambda"]), front, float(row.get("mu", 0.0)))
        got, paid = scores[np.arange(len(chosen)), chosen], costs[np.arange(len(chosen)), chosen]
        per_fold = np.array([got[m].mean() - hull_at(fc, fs, float(paid[m].mean()))
                             for m, (fc, fs) in zip(members, fold_singles, strict=True)])
        cost = float(paid.mean())
        x = (cost - cheap_cost) / (best_cost - cheap_cost) if best_cost > cheap_cost else 1.0
        band = BANDS if x >= 1.0 - 1e-9 else max(0, int(x * BANDS))
        measured.append(_Measured(float(np.average(per_fold, weights=sizes)), _spread(per_fold), per_fold, cost,
                                  band))

    bands = []
    passing = set()
    for b in range(BANDS + 1):
        inside = [m for m in measured if m.band == b]
        if not inside:
            continue
        pooled = np.mean([m.per_fold for m in inside], axis=0)
        uplift, spread = float(np.average(pooled, weights=sizes)), _spread(pooled)
        kept = uplift > spread + _EPS
        if kept:
            passing.add(b)
        bands.append({"band": b, "cost_from": b / BANDS, "cost_to": (b + 1) / BANDS if b < BANDS else None,
                      "points": len(inside), "uplift": uplift, "spread": spread, "beats_hull": kept})

    annotated = []
    for row, m in zip(table, measured, strict=True):
        kept = m.band in passing and m.uplift > m.spread + _EPS
        fallback = None if kept else models[_fallback(vertices, list(mean_s), list(mean_c), float(row["lambda"]),
                                                      float(row.get("mu", 0.0)), front)]
        annotated.append({**row, "uplift": m.uplift, "spread": m.spread, "band": m.band, "beats_hull": kept,
                          "fallback": fallback})
    for j, model in enumerate(models):
        annotated.append({"kind": "single", "model": model, "lambda": 0.0, "mu": 0.0, "hull": j in vertices,
                          **realised(models, frontier, np.full(len(scores), j), scores, costs)})
    kept_rows = sum(1 for r in annotated if r.get("beats_hull"))
    report = {"bands": bands, "points": len(table), "points_kept": kept_rows,
              "hull": [models[v] for v in full], "hull_served": [models[v] for v in vertices],
              "verdict": verdict(bands, models[vertices[-1]], models[vertices[-1]] == current), "current": current}
    return annotated, report


def _spread(per_fold: np.ndarray) -> float:
    import numpy as np

    return float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else float("inf")


def _fallback(vertices: Sequence[int], mean_scores: Sequence[float], mean_costs: Sequence[float], lam: float,
              mu: float, frontier: int) -> int:
    """The hull's own choice at operating point (λ, μ): the served vertex with the best mean score − λ·mean cost −
    μ·[frontier], ties to the cheaper (λ = 0: the best model; a large λ: the cheapest)."""
    return max(vertices, key=lambda v: (mean_scores[v] - lam * mean_costs[v] - (mu if v == frontier else 0.0),
                                        -mean_costs[v]))


def verdict(bands: Sequence[dict[str, Any]], best: str, current: bool = False) -> str:
    """One plain line: where learning pays on this data, or that it does not (``current``: ``best`` is the team's
    own model, ``route train --current``)."""
    kept = [b for b in bands if b["beats_hull"]]
    if not kept:
        said = NOT_PAYING_CURRENT if current else NOT_PAYING
        return f"{said} ({best}; out of fold no cost band beats the hull of single models by more than " \
               "the fold-to-fold noise)"
    where = ", ".join(_band_name(b) for b in kept)
    best_band = max(kept, key=lambda b: b["uplift"])
    return (f"routing beats the hull of single models in {len(kept)} of {len(bands)} cost bands ({where}; up to "
            f"{100 * best_band['uplift']:+.1f} ± {100 * best_band['spread']:.1f} points out of fold); elsewhere the "
            "hull's single model is served")


def _band_name(band: dict[str, Any]) -> str:
    if band["cost_to"] is None:
        return "at or above the best model's cost"
    return f"{band['cost_from']:.1f}–{band['cost_to']:.1f}"


class Guard:
    """The verdicts of a router's calibration table, applied to any operating point."""

    def __init__(self, calibration: Sequence[dict[str, Any]]) -> None:
        self.active = any("beats_hull" in row for row in calibration)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._keys: dict[str, list[float]] = {}
        for kind, key in (("lambda", "lambda"), ("mu", "mu")):
            rows = sorted((r for r in calibration if r.get("kind", "lambda") == kind), key=lambda r: float(r[key]))
            self._rows[kind], self._keys[kind] = rows, [float(r[key]) for r in rows]

    def row(self, at: OperatingPoint) -> dict[str, Any] | None:
        """The calibration row nearest to ``at`` (a μ row when ``at`` charges frontier calls, else a λ row)."""
        kind = "mu" if at.mu else "lambda"
        keys = self._keys[kind]
        if not keys:
            return None
        value = at.mu if at.mu else at.lam
        k = bisect.bisect_left(keys, value)
        near = [i for i in (k - 1, k) if 0 <= i < len(keys)]
        return self._rows[kind][min(near, key=lambda i: abs(keys[i] - value))]

    def apply(self, at: OperatingPoint) -> tuple[OperatingPoint, dict[str, Any] | None]:
        """``at`` itself where the learned rule beats the hull there (or the router predates the guard), else the
        point that serves the hull's choice; and the calibration row that decided (None when none did)."""
        if at.model or not self.active:
            return at, None
        row = self.row(at)
        if row is None or row.get("beats_hull", True):
            return at, row
        return OperatingPoint(at.lam, at.mu, model=str(row["fallback"])), row


def cascade_verdicts(gain: np.ndarray, scores: np.ndarray, costs: np.ndarray, frontier: int, cheap: int,
                     folds: np.ndarray, table: Sequence[dict[str, Any]], points: int = 21) -> list[dict[str, Any]]:
    """Where the cascade (cheapest model first, escalation to ``frontier`` on the largest out-of-fold ``gain``) is
    served in place of the router: at each of ``points`` escalation shares, per fold, its score minus the hull of
    that fold's single models at its cost (every cheap call charged), as :func:`annotate` measures the router. It
    *wins* a share when its mean uplift beats the fold-to-fold noise (mean > standard deviation) and beats what the
    router serves at the nearest share of the annotated ``table`` (its out-of-fold uplift where its learned rule
    is kept, 0 where the hull's single model is served). ``scores``/``costs``: ``(rows, models)`` of the rows with
    a cheap answer; ``folds``: their folds."""
    import numpy as np

    from tokenomy.routing.cascade import escalations

    fold_ids = sorted(set(folds.tolist()))
    members = [np.nonzero(folds == f)[0] for f in fold_ids]
    sizes = np.array([len(m) for m in members], dtype=float)
    fold_singles = [(list(costs[m].mean(axis=0)), list(scores[m].mean(axis=0))) for m in members]
    rows = np.arange(len(gain))
    router = sorted((float(r["share"]), float(r["uplift"]) if r.get("beats_hull") else 0.0)
                    for r in table if r.get("kind") == "mu" and "uplift" in r)
    verdicts = []
    for mask in escalations(gain, points):
        chosen = np.where(mask, frontier, cheap)
        got = scores[rows, chosen]
        paid = costs[rows, chosen] + np.where(mask, costs[:, cheap], 0.0)
        per_fold = np.array([got[m].mean() - hull_at(fc, fs, float(paid[m].mean()))
                             for m, (fc, fs) in zip(members, fold_singles, strict=True)])
        uplift, spread, share = float(np.average(per_fold, weights=sizes)), _spread(per_fold), float(mask.mean())
        rival = min(router, key=lambda r: abs(r[0] - share))[1] if router else 0.0
        verdicts.append({"share": share, "uplift": uplift, "spread": spread, "router_uplift": rival,
                         "wins": bool(uplift > spread + _EPS and uplift > rival + _EPS)})
    return verdicts


def cascade_wins(verdicts: Sequence[dict[str, Any]], share: float) -> bool:
    """Whether the cascade is served at escalation share ``share``: the verdict of the nearest measured share."""
    if not verdicts:
        return False
    return bool(min(verdicts, key=lambda v: abs(float(v["share"]) - share))["wins"])
