from __future__ import annotations

import numpy as np
import pytest

from tokenomy.routing.metrics import cost_to_reach, hull, mixed_point, point, reference, summarise
from tokenomy.routing.sweep import choose, sweep_lambdas

MODELS = ["strong", "weak"]
# four rows: the weak model fails rows 0 and 1; the strong model fails row 3
SCORES = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
COSTS = np.array([[10.0, 1.0]] * 4)


def test_reference_and_share_axis() -> None:
    ref = reference(MODELS, SCORES, COSTS)
    assert (ref.best, ref.cheapest, ref.share_axis) == ("strong", "weak", True)
    assert (ref.best_score, ref.cheap_score) == (0.75, 0.5)


def test_random_mix_has_apgr_one_half_and_oracle_more() -> None:
    ref = reference(MODELS, SCORES, COSTS)
    weak = point(ref, MODELS, np.array([1, 1, 1, 1]), SCORES, COSTS)
    strong = point(ref, MODELS, np.array([0, 0, 0, 0]), SCORES, COSTS)
    random = [mixed_point(ref, weak, strong, k / 20) for k in range(21)]
    assert summarise(ref, random)["apgr"] == pytest.approx(0.5)
    assert summarise(ref, random)["cpt50"] == pytest.approx(0.5)
    oracle = [point(ref, MODELS, choose(SCORES, COSTS, lam), SCORES, COSTS)
              for lam in sweep_lambdas(SCORES, COSTS, 0, 21)]
    assert next(p.x for p in oracle) == 0.0 and oracle[-1].x == 1.0
    # the oracle sends rows 0 and 1 first: PGR 2.0 at share 0.5; 1.0 at share 1
    half = min(oracle, key=lambda p: abs(p.x - 0.5))
    assert ref.pgr(half.score) == pytest.approx(2.0)
    figures = summarise(ref, oracle)
    assert figures["apgr"] > 1.3
    assert figures["cpt50"] == pytest.approx(0.13, abs=0.011)
    assert figures["cost_to_best_usd"] == pytest.approx(1 + 0.25 * 9, rel=0.05)


def test_wrong_ranking_is_worse_than_random() -> None:
    ref = reference(MODELS, SCORES, COSTS)
    expected = 1.0 - SCORES  # predicts exactly the opposite
    curve = [point(ref, MODELS, choose(expected, COSTS, lam), SCORES, COSTS)
             for lam in sweep_lambdas(expected, COSTS, 0, 21)]
    assert summarise(ref, curve)["apgr"] < 0.5


def test_zero_router_hull_skips_dominated_models() -> None:
    models = ["a", "b", "c"]
    scores = np.array([[0.2, 0.5, 0.55]])
    costs = np.array([[1.0, 2.0, 10.0]])
    ref = reference(models, scores, costs)
    singles = [point(ref, models, np.array([j]), scores, costs) for j in range(3)]
    curve = hull(ref, singles)
    assert curve[0].cost_usd == 1.0 and curve[-1].cost_usd == 10.0
    mid = [p for p in curve if abs(p.cost_usd - 2.0) < 1e-9]
    assert mid and mid[0].score == pytest.approx(0.5)
    assert cost_to_reach(curve, 0.55) == pytest.approx(10.0)
    assert cost_to_reach(curve, 0.35) == pytest.approx(1.5)


def test_share_rule_ranks_by_gain_whatever_the_cost() -> None:
    """μ (the price of a frontier call) orders calls by expected gain; λ lets a cheap prompt jump the queue."""
    from tokenomy.routing.sweep import sweep_penalties

    expected = np.array([[0.9, 0.5], [0.8, 0.6], [0.7, 0.65], [0.6, 0.59]])  # gains 0.4, 0.2, 0.05, 0.01
    costs = np.array([[100.0, 1.0], [10.0, 1.0], [2.0, 1.0], [1.5, 1.0]])  # the big gain is the dear call
    penalties = sweep_penalties(expected, costs, 0, 5)
    shares = [float((choose(expected, costs, 0.0, 0, mu) == 0).mean()) for mu in penalties]
    assert shares == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert choose(expected, costs, 0.0, 0, penalties[1]).tolist() == [0, 1, 1, 1]  # the largest gain first
    quarter = next(lam for lam in sweep_lambdas(expected, costs, 0, 101)
                   if (choose(expected, costs, lam) == 0).mean() == 0.25)
    assert choose(expected, costs, quarter).tolist() != [0, 1, 1, 1]  # the cost rule sends a cheaper prompt first
