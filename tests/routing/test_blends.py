"""The blends the selection compares: per model, shared, and their average (which is itself a blend)."""

from __future__ import annotations

import numpy as np

from tokenomy.routing import quality as q


def test_average_blend_predicts_the_mean_of_both_blends() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(300, 2))
    parts = np.stack([truth + rng.normal(scale=s, size=truth.shape) for s in (0.3, 0.6, 1.0, 2.0)])
    use = (True,) * 4
    per_model = q.combine(parts, q.fit_blend(parts, truth, use))
    shared = q.combine(parts, q.fit_blend(parts, truth, use, shared=True))
    average = q.combine(parts, q.average_blend(parts, truth, use))
    assert np.allclose(average, (per_model + shared) / 2)
    assert np.mean((average - truth) ** 2) < np.mean((parts[0] - truth) ** 2)  # better than the best part alone
