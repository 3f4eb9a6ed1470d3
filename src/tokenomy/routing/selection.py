"""Choosing the learner by measurement, on out-of-fold predictions of the training rows only.

Training rows are cut into :data:`FOLDS` folds by a hash of their id. Every candidate (ridge settings, kNN sizes,
word-count ridge penalties, the group prior, and the blends of the best setting of each: per model, shared, and
their average) predicts each fold from the other folds; a candidate's merit is the area under
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
from tokenomy.routing.words import WordsModel

if TYPE_CHECKING:
    import numpy as np

FOLDS = 5
ALPHAS = (10.0, 100.0, 1000.0)
EMBEDDING_WEIGHTS = (0.1, 0.3, 1.0)
KS = (10, 30, 100, 300)
WORDS_ALPHAS = (3.0, 10.0, 30.0)
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
    merit: float  # the winner's out-of-fold APGR on the normalised-cost axis


Progress = Callable[[str], None]


def select(features: Features, scores: np.ndarray, est_costs: np.ndarray, costs: np.ndarray, groups: int,
           ids: Sequence[str], models: Sequence[str], progress: Progress) -> Selection:
    import numpy as np

    oof = _out_of_fold(features, scores, groups, fold_of(ids), progress)

    def area(pred: np.ndarray) -> float:
        return routing_area(models, pred, est_costs, scores, costs)

    progress("comparing learners")
    table: list[dict[str, Any]] = []
    best_key: dict[str, Any] = {}
    for kind in ("ridge", "knn", "words"):
        merits = {key: area(pred) for key, pred in oof[kind].items()}
        best_key[kind] = max(merits, key=merits.__getitem__)
        for key, value in merits.items():
            table.append({"method": kind, **dict(zip(_SETTINGS[kind], key, strict=True)), "oof_apgr_cost": value})
    hyper = q.Hyper(alpha=best_key["ridge"][0], embedding_weight=best_key["ridge"][1], k=best_key["knn"][0],
                    words_alpha=best_key["words"][0])
    parts = np.stack([oof["ridge"][best_key["ridge"]], oof["knn"][best_key["knn"]], oof["group"][()],
                      oof["words"][best_key["words"]]])
    every = (True,) * len(q.COMPONENTS)
    candidates: dict[str, tuple[tuple[bool, ...], bool | None]] = {  # None: the average of both blends
        name: (tuple(c == name for c in q.COMPONENTS), False) for name in q.COMPONENTS if name != "group"}
    if groups:
        candidates["group"] = (tuple(c == "group" for c in q.COMPONENTS), False)
    candidates["blend per model"] = (every, False)
    candidates["blend shared"] = (every, True)
    candidates["blend average"] = (every, None)
    best: tuple[float, str, Any, Any] | None = None
    for name, (use, shared) in candidates.items():
        blend = q.average_blend(parts, scores, use) if shared is None else q.fit_blend(parts, scores, use,
                                                                                        shared=shared)
        pred = q.combine(parts, blend)
        value = area(pred)
        table.append({"method": f"blend:{name}", "oof_apgr_cost": value})
        if best is None or value > best[0] + 1e-9:
            best = (value, name, blend, pred)
    assert best is not None
    return Selection(hyper=hyper, blend=best[2], method=best[1], oof=best[3], table=table, merit=best[0])


_SETTINGS = {"ridge": ("alpha", "embedding_weight"), "knn": ("k",), "words": ("alpha",)}


def _out_of_fold(features: Features, scores: np.ndarray, groups: int, folds: np.ndarray,
                 progress: Progress) -> dict[str, dict[Any, np.ndarray]]:
    """Every learner setting's prediction of every training row from the folds without it."""
    import numpy as np

    n, m = scores.shape
    oof: dict[str, dict[Any, np.ndarray]] = {
        "ridge": {key: np.zeros((n, m)) for key in itertools.product(ALPHAS, EMBEDDING_WEIGHTS)},
        "knn": {(k,): np.zeros((n, m)) for k in KS}, "group": {(): np.zeros((n, m))},
        "words": {(alpha,): np.zeros((n, m)) for alpha in WORDS_ALPHAS}}
    for f in range(FOLDS):
        progress(f"fold {f + 1}/{FOLDS}")
        fit, held = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        a, b = features.take(fit), features.take(held)
        means, overall = q.group_table(a.group, scores[fit], groups)
        prior = q.group_predict(means, overall, b.group)
        oof["group"][()][held] = prior
        near = q.neighbours(b.embedding, a.embedding, max(KS))
        for (k,) in oof["knn"]:
            oof["knn"][(k,)][held] = q.knn_from(near, scores[fit], prior, k, q.Hyper().knn_shrink)
        for alpha, weight in oof["ridge"]:
            hyper = q.Hyper(alpha=alpha, embedding_weight=weight)
            model = q.RidgeModel.fit(q.design(a, groups, hyper), scores[fit], alpha,
                                     q.block_weights(a, groups, hyper))
            oof["ridge"][alpha, weight][held] = model.predict(q.design(b, groups, hyper))
        residual = scores[fit] - q.group_predict(means, overall, a.group)
        for (alpha,) in oof["words"]:
            if a.words is None or b.words is None:
                oof["words"][(alpha,)][held] = prior
                continue
            oof["words"][(alpha,)][held] = prior + WordsModel.fit(a.words, residual, alpha).predict(b.words)
    return oof


NESTED_MAX_ROWS = 3000  # above this the winner's out-of-fold merit is close to unbiased; nesting costs 5 selections


def nested_oof(features: Features, scores: np.ndarray, est_costs: np.ndarray, costs: np.ndarray, groups: int,
               ids: Sequence[str], models: Sequence[str], progress: Progress) -> np.ndarray:
    """Out-of-fold predictions of the whole procedure: for each fold, the learner is *selected* (:func:`select`,
    on inner folds of the other folds' rows) and fitted without that fold, then predicts it. The winner's own
    out-of-fold predictions are optimistic on small data (it won on them); these are not, and the no-harm guard
    measures on them (:mod:`tokenomy.routing.guard`)."""
    import numpy as np

    folds = fold_of(ids)
    nested = np.zeros(scores.shape)
    for f in range(FOLDS):
        fit, held = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        if not len(held):
            continue
        progress(f"nested selection {f + 1}/{FOLDS}")
        inner = features.take(fit)
        chosen = select(inner, scores[fit], est_costs[fit], costs[fit], groups, [f"{ids[int(i)]}#inner" for i in fit],
                        models, lambda _: None)
        model = q.QualityModel.fit(inner, scores[fit], groups, chosen.hyper, chosen.blend)
        nested[held] = model.predict(features.take(held))
    return nested
