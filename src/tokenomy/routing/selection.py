"""Choosing the learner by measurement, on out-of-fold predictions of the training rows only.

Training rows are cut into :data:`FOLDS` folds by a hash of their id. Every candidate (ridge settings, kNN sizes,
the group prior, and their blend) predicts each fold from the other folds; a candidate's merit is the area under
its cost–quality curve on those held-out predictions (:func:`routing_area`: APGR on the normalised-cost axis). The
winner is refitted on all training rows by the trainer; its out-of-fold predictions calibrate the operating point.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tokenomy.routing import quality as q
from tokenomy.routing.features import Features
from tokenomy.routing.metrics import point, reference, summarise
from tokenomy.routing.sweep import choose, sweep_lambdas

if TYPE_CHECKING:
    import numpy as np

FOLDS = 5
ALPHAS = (10.0, 100.0, 1000.0)
EMBEDDING_WEIGHTS = (0.1, 0.3, 1.0)
KS = (10, 30, 100, 300)
SWEEP_POINTS = 21


def fold_of(ids: Sequence[str], folds: int = FOLDS) -> np.ndarray:
    import numpy as np

    return np.array([int(hashlib.sha1(i.encode()).hexdigest()[:8], 16) % folds for i in ids])


def routing_area(models: Sequence[str], expected: np.ndarray, est_costs: np.ndarray, scores: np.ndarray,
                 costs: np.ndarray) -> float:
    """APGR on the normalised-cost axis of the λ-sweep of ``expected`` (rows with a missing score are dropped)."""
    import numpy as np

    keep = ~np.isnan(scores).any(axis=1)
    expected, est_costs, scores, costs = expected[keep], est_costs[keep], scores[keep], costs[keep]
    ref = replace(reference(models, scores, costs), share_axis=False)
    strong = None
    points = [point(ref, models, choose(expected, est_costs, lam), scores, costs)
              for lam in sweep_lambdas(expected, est_costs, strong, SWEEP_POINTS)]
    return float(summarise(ref, points)["apgr_cost"])


@dataclass
class Selection:
    hyper: q.Hyper
    blend: Any
    method: str
    oof: Any
    table: list[dict[str, Any]]


Progress = Callable[[str], None]


def select(features: Features, scores: np.ndarray, est_costs: np.ndarray, costs: np.ndarray, groups: int,
           ids: Sequence[str], models: Sequence[str], progress: Progress) -> Selection:
    import numpy as np

    folds = fold_of(ids)
    n, m = scores.shape
    ridge_oof = {key: np.zeros((n, m)) for key in itertools.product(ALPHAS, EMBEDDING_WEIGHTS)}
    knn_oof = {k: np.zeros((n, m)) for k in KS}
    group_oof = np.zeros((n, m))
    for f in range(FOLDS):
        progress(f"fold {f + 1}/{FOLDS}")
        fit, held = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        a, b = features.take(fit), features.take(held)
        means, overall = q.group_table(a.group, scores[fit], groups)
        prior = q.group_predict(means, overall, b.group)
        group_oof[held] = prior
        near = q.neighbours(b.embedding, a.embedding, max(KS))
        for k in KS:
            knn_oof[k][held] = q.knn_from(near, scores[fit], prior, k, q.Hyper().knn_shrink)
        for alpha, weight in ridge_oof:
            hyper = q.Hyper(alpha=alpha, embedding_weight=weight)
            model = q.RidgeModel.fit(q.design(a, groups, hyper), scores[fit], alpha,
                                     q.block_weights(a, groups, hyper))
            ridge_oof[alpha, weight][held] = model.predict(q.design(b, groups, hyper))

    def area(pred: np.ndarray) -> float:
        return routing_area(models, pred, est_costs, scores, costs)

    progress("comparing learners")
    table: list[dict[str, Any]] = []
    ridge_scores = {key: area(pred) for key, pred in ridge_oof.items()}
    knn_scores = {k: area(pred) for k, pred in knn_oof.items()}
    best_ridge = max(ridge_scores, key=ridge_scores.__getitem__)
    best_k = max(knn_scores, key=knn_scores.__getitem__)
    for (alpha, weight), value in ridge_scores.items():
        table.append({"method": "ridge", "alpha": alpha, "embedding_weight": weight, "oof_apgr_cost": value})
    for k, value in knn_scores.items():
        table.append({"method": "knn", "k": k, "oof_apgr_cost": value})
    hyper = q.Hyper(alpha=best_ridge[0], embedding_weight=best_ridge[1], k=best_k)
    parts = np.stack([ridge_oof[best_ridge], knn_oof[best_k], group_oof])
    candidates: dict[str, tuple[bool, bool, bool]] = {
        "ridge": (True, False, False), "knn": (False, True, False), "ridge+knn": (True, True, False),
        "ridge+knn+group": (True, True, True)}
    if groups:
        candidates["group"] = (False, False, True)
    best: tuple[float, str, Any, Any] | None = None
    for name, use in candidates.items():
        blend = q.fit_blend(parts, scores, use)
        oof = q.combine(parts, blend)
        value = area(oof)
        table.append({"method": f"blend:{name}", "oof_apgr_cost": value})
        if best is None or value > best[0] + 1e-9:
            best = (value, name, blend, oof)
    assert best is not None
    return Selection(hyper=hyper, blend=best[2], method=best[1], oof=best[3], table=table)
