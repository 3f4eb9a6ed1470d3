"""The decision rule and its operating points.

A router picks, per prompt, ``argmax_m expected_score[m] − λ · cost[m] − μ · [m is the frontier]`` (ties go to the
cheaper model). Two kinds of operating point:

- ``λ`` (USD⁻¹), with μ = 0: the price of a dollar. Large λ → the cheapest model everywhere, λ = 0 → the highest
  expected score. This is the rule for quality and budget targets (best quality per dollar). With exactly two
  models λ may go negative, which sends more calls to the stronger model until every call goes there.
- ``μ`` (score units), with λ = 0: the price of one call to the frontier model. It answers a share target ("at
  most S of calls to the frontier, best quality"): calls go to the frontier where its expected gain over the best
  other model is largest, whatever they cost. With two models this is RouteLLM's threshold on the predicted gain.
  Ranking by gain − λ·cost instead lets the per-prompt cost reorder calls whose gains the learner cannot tell
  apart (short prompts first), which measured worse on the share axis (docs/routing.md).

:func:`sweep_lambdas` / :func:`sweep_penalties` find, without looking at any outcome, the λ / μ that put the rule
at evenly spaced points of the axis (normalised expected cost / share of frontier calls), from cheapest to best
expected quality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_TIE = 1e-9


def choose(expected: np.ndarray, costs: np.ndarray, lam: float, frontier: int | None = None,
           mu: float = 0.0) -> np.ndarray:
    """Model index per row. ``expected``/``costs``: ``(rows, models)``; NaN expected means "not a candidate";
    ``mu`` is charged on calls to model index ``frontier``."""
    import numpy as np

    utility = expected - lam * costs - _TIE * costs / max(float(np.nanmax(costs)), 1e-30)
    if frontier is not None and mu:
        utility[:, frontier] -= mu
    utility = np.where(np.isnan(utility), -np.inf, utility)
    chosen: np.ndarray = utility.argmax(axis=1)
    return chosen


def lambda_scale(expected: np.ndarray, costs: np.ndarray) -> float:
    """A λ large enough that every row picks its cheapest model."""
    import numpy as np

    spread = float(np.nanmax(expected) - np.nanmin(expected)) + 1.0
    gaps = np.abs(costs[:, :, None] - costs[:, None, :])
    smallest = float(np.nanmin(np.where(gaps > 0, gaps, np.inf))) if np.isfinite(gaps).any() else 1.0
    return 4.0 * spread / max(min(smallest, 1.0), 1e-12)


def axis_value(chosen: np.ndarray, costs: np.ndarray, strong: int | None, cheap_cost: float,
               best_cost: float) -> float:
    """Where an assignment sits: share of calls to ``strong`` (two models) or normalised mean expected cost."""
    import numpy as np

    if strong is not None:
        return float((chosen == strong).mean())
    cost = float(costs[np.arange(len(chosen)), chosen].mean())
    span = best_cost - cheap_cost
    return (cost - cheap_cost) / span if span > 0 else 0.0


def sweep_lambdas(expected: np.ndarray, costs: np.ndarray, strong: int | None, points: int) -> list[float]:
    """``points`` λ values from cheapest (first) to best expected quality (last), evenly spaced on the axis.

    ``strong`` is the strong model's index when there are two models, else None (normalised-cost axis, λ ≥ 0)."""
    import numpy as np

    high = lambda_scale(expected, costs)
    low = -high if strong is not None else 0.0
    mean_costs = costs.mean(axis=0)
    cheap_cost = float(mean_costs.min())
    top_cost = float(costs[np.arange(len(costs)), choose(expected, costs, low)].mean())

    def at(lam: float) -> float:
        return axis_value(choose(expected, costs, lam), costs, strong, cheap_cost, top_cost)

    lambdas = []
    for k in range(points):
        target = k / (points - 1)
        lo, hi = low, high  # at(lo) is the top of the axis, at(hi) is 0; at() falls as λ rises
        if k == 0:
            lambdas.append(high)
            continue
        if k == points - 1:
            lambdas.append(low)
            continue
        for _ in range(60):
            mid = (lo + hi) / 2
            if at(mid) >= target:
                lo = mid
            else:
                hi = mid
        lambdas.append(lo)
    return lambdas


def sweep_penalties(expected: np.ndarray, costs: np.ndarray, frontier: int, points: int) -> list[float]:
    """``points`` μ values (λ = 0) from no frontier call (first) to every call to the frontier (last), evenly
    spaced in the share of frontier calls."""
    import numpy as np

    high = float(np.nanmax(expected) - np.nanmin(expected)) + 1.0

    def share(mu: float) -> float:
        return float((choose(expected, costs, 0.0, frontier, mu) == frontier).mean())

    penalties = []
    for k in range(points):
        if k in (0, points - 1):
            penalties.append(high if k == 0 else -high)
            continue
        target, lo, hi = k / (points - 1), -high, high  # share() falls as μ rises
        for _ in range(60):
            mid = (lo + hi) / 2
            if share(mid) >= target:
                lo = mid
            else:
                hi = mid
        penalties.append(lo)
    return penalties
