"""Fitting the verifier and its thresholds (used by ``bench/semantic_calibrate.py``; never at serving time).

The verifier is scikit-learn's histogram gradient boosting (depth-3 trees, monotone constraints from
:data:`MONOTONE`), exported to plain node arrays so serving needs numpy only."""

from __future__ import annotations

from typing import Any

from tokenomy.cache.semantic.features import FEATURE_NAMES
from tokenomy.cache.semantic.online import Z_95, wrong_share_upper
from tokenomy.cache.semantic.verifier import NEVER, Tree, Verifier

# +1: the score may only rise with the feature; -1: only fall; 0: free.
MONOTONE = {"cosine": 1, "gap": 1, "jaccard": 1, "recall": 1, "unmatched_query": -1, "unmatched_entry": -1,
            "numbers_differ": -1, "negation_differs": -1, "opposed": -1, "question_word_differs": -1,
            "bigram_jaccard": 1, "direction_swapped": -1, "char_jaccard": 1}


def fit_verifier(features: Any, correct: Any, *, names: tuple[str, ...] = FEATURE_NAMES, trees: int = 300,
                 learning_rate: float = 0.05, seed: int = 0) -> Verifier:
    """Boosted trees on (features, correct); ``names`` picks the monotone constraints by feature name."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    model = HistGradientBoostingClassifier(max_iter=trees, learning_rate=learning_rate, max_depth=3,
                                           l2_regularization=1.0, early_stopping=False, random_state=seed,
                                           monotonic_cst=[MONOTONE.get(n, 0) for n in names]).fit(x, y)
    return export(model)


def export(model: Any) -> Verifier:
    """A fitted binary ``HistGradientBoostingClassifier`` as a :class:`Verifier` (same probabilities)."""
    out = []
    for (predictor,) in model._predictors:  # one predictor per iteration for a binary loss
        nodes = predictor.nodes
        out.append(Tree(tuple(-1 if n["is_leaf"] else int(n["feature_idx"]) for n in nodes),
                        tuple(float(n["num_threshold"]) for n in nodes),
                        tuple(int(n["left"]) for n in nodes), tuple(int(n["right"]) for n in nodes),
                        tuple(float(n["value"]) if n["is_leaf"] else 0.0 for n in nodes)))
    return Verifier(float(model._baseline_prediction.ravel()[0]), out)


def pick_threshold(scores: Any, correct: Any, max_error: float, *, z: float = Z_95) -> float:
    """The lowest score whose served set was wrong at most ``max_error`` of the time at confidence ``z`` (Wilson
    upper bound; z = 1.645 is one-sided 95 %), so a handful of lucky hits never justifies a cut."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, c = s[order], c[order]
    wrong = np.cumsum(~c)
    n = np.arange(1, len(s) + 1)
    ok = np.array([wrong_share_upper(int(w), int(k), z) <= max_error for w, k in zip(wrong, n, strict=True)])
    ok[:-1] &= s[:-1] != s[1:]  # never cut between equal scores
    where = np.flatnonzero(ok)
    return float(s[where.max()]) if len(where) else NEVER
