"""Fitting the verifier and its thresholds (used by ``bench/semantic_calibrate.py``; never at serving time)."""

from __future__ import annotations

from typing import Any

from tokenomy.cache.semantic.online import wrong_share_upper
from tokenomy.cache.semantic.verifier import NEVER, Verifier


def fit_verifier(features: Any, correct: Any, *, l2: float = 1e-2, iterations: int = 50) -> Verifier:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    import numpy as np

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    w = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -60, 60)))
        gradient = z.T @ (p - y) + l2 * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return Verifier(tuple(map(float, w)), tuple(map(float, mean)), tuple(map(float, scale)))


def pick_threshold(scores: Any, correct: Any, max_error: float) -> float:
    """The lowest score whose served set was wrong at most ``max_error`` of the time with 95 % confidence (Wilson
    upper bound), so a handful of lucky hits never justifies a cut."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, c = s[order], c[order]
    wrong = np.cumsum(~c)
    n = np.arange(1, len(s) + 1)
    ok = np.array([wrong_share_upper(int(w), int(k)) <= max_error for w, k in zip(wrong, n, strict=True)])
    ok[:-1] &= s[:-1] != s[1:]  # never cut between equal scores
    where = np.flatnonzero(ok)
    return float(s[where.max()]) if len(where) else NEVER
