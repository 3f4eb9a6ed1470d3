"""Cost–quality curves and RouteLLM's figures over them. Pure numpy; no I/O.

A curve is a list of operating points ``(x, score, cost)``. ``x`` is the axis RouteLLM's figures are read on:

- two models: the share of calls to the best single model (RouteLLM's "strong-model calls");
- more models: the normalised cost ``(cost − cost(cheapest)) / (cost(best) − cost(cheapest))``, where *cheapest* is
  the single model with the lowest mean cost and *best* the one with the highest mean score.

``PGR(x) = (score(x) − score(cheapest)) / (score(best) − score(cheapest))``, with ``score(x)`` linearly interpolated
between consecutive operating points (a mix of two neighbouring operating points realises it) and held flat past
the curve's last point. APGR is the mean PGR over 101 uniform ``x`` in [0, 1]; CPT(p) the smallest ``x`` on that
grid with PGR ≥ p. ``apgr_cost`` is the same mean read on the normalised-cost axis for every file (it charges a
cascade for its cheap calls). ``cost_to_best`` is the lowest mean cost at which the curve reaches the best single
model's score.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

GRID = 101


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    score: float
    cost_usd: float
    shares: dict[str, float]


@dataclass(frozen=True, slots=True)
class Reference:
    """The anchors of PGR: the cheapest and the best single model on the evaluated rows."""

    cheapest: str
    best: str
    cheap_score: float
    best_score: float
    cheap_cost: float
    best_cost: float
    share_axis: bool

    def pgr(self, score: float) -> float:
        span = self.best_score - self.cheap_score
        return (score - self.cheap_score) / span if span > 0 else 0.0

    def cost_x(self, cost: float) -> float:
        span = self.best_cost - self.cheap_cost
        return (cost - self.cheap_cost) / span if span > 0 else 0.0


def reference(models: Sequence[str], scores: np.ndarray, costs: np.ndarray) -> Reference:
    """``scores``/``costs``: ``(rows, models)`` for the evaluated rows."""
    mean_s, mean_c = scores.mean(axis=0), costs.mean(axis=0)
    cheap = min(range(len(models)), key=lambda j: (mean_c[j], -mean_s[j]))
    best = max(range(len(models)), key=lambda j: (mean_s[j], -mean_c[j]))
    return Reference(cheapest=models[cheap], best=models[best], cheap_score=float(mean_s[cheap]),
                     best_score=float(mean_s[best]), cheap_cost=float(mean_c[cheap]), best_cost=float(mean_c[best]),
                     share_axis=len(models) == 2 and best != cheap)


def point(ref: Reference, models: Sequence[str], chosen: np.ndarray, scores: np.ndarray, costs: np.ndarray,
          extra_cost: np.ndarray | None = None) -> Point:
    """The operating point of one assignment: ``chosen[i]`` is the model index answering row ``i``;
    ``extra_cost[i]`` is paid on top (a cascade's cheap call before it escalated)."""
    import numpy as np

    rows = np.arange(len(chosen))
    score = float(scores[rows, chosen].mean())
    paid = costs[rows, chosen] + (extra_cost if extra_cost is not None else 0.0)
    cost = float(paid.mean())
    shares = {m: float((chosen == j).mean()) for j, m in enumerate(models)}
    x = shares[ref.best] if ref.share_axis else ref.cost_x(cost)
    return Point(x=x, score=score, cost_usd=cost, shares=shares)


def mixed_point(ref: Reference, a: Point, b: Point, weight_b: float) -> Point:
    """The expected operating point of answering with ``b`` with probability ``weight_b``, else ``a``."""
    def mix(u: float, v: float) -> float:
        return (1 - weight_b) * u + weight_b * v

    shares = {m: mix(a.shares.get(m, 0.0), b.shares.get(m, 0.0)) for m in {*a.shares, *b.shares}}
    cost = mix(a.cost_usd, b.cost_usd)
    x = shares.get(ref.best, 0.0) if ref.share_axis else ref.cost_x(cost)
    return Point(x=x, score=mix(a.score, b.score), cost_usd=cost, shares=shares)


def _pgr_curve(ref: Reference, xs: Sequence[float], scores: Sequence[float]) -> np.ndarray:
    """PGR on the uniform grid, interpolated along the points sorted by ``x`` and flat past either end."""
    import numpy as np

    order = np.argsort(np.asarray(xs, dtype=float), kind="stable")
    x = np.asarray(xs, dtype=float)[order]
    s = np.asarray(scores, dtype=float)[order]
    grid = np.linspace(0.0, 1.0, GRID)
    return np.array([ref.pgr(v) for v in np.interp(grid, x, s)])


def summarise(ref: Reference, points: Sequence[Point]) -> dict[str, Any]:
    """APGR, CPT(50 %), CPT(80 %), APGR on the cost axis, and the cost to reach the best single model's score."""
    import numpy as np

    pgr = _pgr_curve(ref, [p.x for p in points], [p.score for p in points])
    pgr_cost = _pgr_curve(ref, [ref.cost_x(p.cost_usd) for p in points], [p.score for p in points])
    grid = np.linspace(0.0, 1.0, GRID)

    def cpt(level: float) -> float | None:
        hit = np.nonzero(pgr >= level - 1e-12)[0]
        return float(grid[hit[0]]) if hit.size else None

    return {"apgr": float(pgr.mean()), "apgr_cost": float(pgr_cost.mean()), "cpt50": cpt(0.5), "cpt80": cpt(0.8),
            "max_score": max(p.score for p in points), "cost_to_best_usd": cost_to_reach(points, ref.best_score)}


def cost_to_reach(points: Sequence[Point], target: float) -> float | None:
    """The lowest mean cost at which the curve (points by cost, linearly joined) reaches ``target`` score."""
    ordered = sorted(points, key=lambda p: (p.cost_usd, -p.score))
    best: float | None = None
    for i, p in enumerate(ordered):
        if p.score >= target - 1e-12:
            best = p.cost_usd if best is None else min(best, p.cost_usd)
        if i and ordered[i - 1].score < target <= p.score:
            q = ordered[i - 1]
            frac = (target - q.score) / (p.score - q.score)
            reach = q.cost_usd + frac * (p.cost_usd - q.cost_usd)
            best = reach if best is None else min(best, reach)
    return best


def hull(ref: Reference, singles: Sequence[Point], steps: int = 10) -> list[Point]:
    """The zero router: the upper-left convex hull of the single models' (cost, score) points, mixed linearly."""
    ordered = sorted(singles, key=lambda p: (p.cost_usd, -p.score))
    vertices: list[Point] = []
    for p in ordered:
        if vertices and p.score <= vertices[-1].score:
            continue
        while len(vertices) >= 2 and _turns_left(vertices[-2], vertices[-1], p):
            vertices.pop()
        vertices.append(p)
    curve = [vertices[0]]
    for a, b in itertools.pairwise(vertices):
        curve.extend(mixed_point(ref, a, b, k / steps) for k in range(1, steps + 1))
    return curve


def _turns_left(a: Point, b: Point, c: Point) -> bool:
    """True when ``b`` lies on or below the segment from ``a`` to ``c`` (so it is not a hull vertex)."""
    cross = (b.cost_usd - a.cost_usd) * (c.score - a.score) - (b.score - a.score) * (c.cost_usd - a.cost_usd)
    return cross >= 0
