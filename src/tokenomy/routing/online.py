"""Share and budget targets held on live traffic.

A share target ("at most S of calls to the frontier") and a budget target ("at most B USD per 1,000 requests") are
calibrated on the training rows. On traffic unlike the training prompts their operating points can be far off (a
router trained on GSM8K sent 74 % of MMLU prompts to the frontier at ``share=0.3``, docs/routing.md).
:class:`TrafficHold` keeps one router's latest decisions (every request, whatever its target: the traffic does not
depend on the target) and, once it has seen enough of them, gives the operating point that meets the target on
them:

- share: the rule sends a call to the frontier when its expected gain over the best other model is above μ, so μ
  is the (1 − S) quantile of the recent gains;
- budget: the smallest λ (best quality per dollar) at which the recent requests' estimated costs average at most
  B / 1,000 (bisection; recomputed every :data:`REFRESH` requests).

Until then the calibrated point stands. Quality targets are not held: on foreign traffic the expected scores
themselves are what is off.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

MIN_SAMPLES = 100
REFRESH = 50  # requests between two budget solves


class TrafficHold:
    """The latest ``window`` decisions of one router: expected frontier gains, expected scores and costs."""

    def __init__(self, window: int, two_models: bool, min_samples: int = MIN_SAMPLES) -> None:
        self._gains: deque[float] = deque(maxlen=window)
        self._ranked: list[float] = []  # the same gains, kept sorted as they come and go
        self._rows: deque[tuple[list[float], list[float]]] = deque(maxlen=window)
        self._min = min(min_samples, window)
        self._two = two_models
        self._lams: dict[float, float] = {}
        self._since = 0

    def observe(self, gain: float, expected: list[float], costs: list[float]) -> None:
        if not math.isfinite(gain):  # a model without an expected score: nothing to rank it by
            return
        if len(self._gains) == self._gains.maxlen:  # the oldest gain leaves the window
            del self._ranked[bisect.bisect_left(self._ranked, self._gains[0])]
        self._gains.append(gain)
        bisect.insort(self._ranked, gain)
        self._rows.append((expected, costs))
        self._since += 1
        if self._since >= REFRESH:
            self._lams.clear()
            self._since = 0

    def __len__(self) -> int:
        return len(self._gains)

    def mu(self, share: float) -> float | None:
        """The frontier charge that sends ``share`` of the recent requests to the frontier; None before
        ``min_samples`` requests have been seen."""
        if len(self._gains) < self._min:
            return None
        ranked = self._ranked
        if share <= 0.0:
            return ranked[-1] + 1.0  # above every recent gain: no frontier call
        keep = round(share * len(ranked))  # calls to send: the ``keep`` largest gains
        if keep >= len(ranked):
            return ranked[0] - 1.0
        return ranked[len(ranked) - keep - 1]  # the largest gain that is not sent

    def lam(self, usd_per_1k: float) -> float | None:
        """The price of a dollar at which the recent requests' estimated costs average at most ``usd_per_1k`` /
        1,000 at the best expected quality; None before ``min_samples`` requests have been seen."""
        if len(self._rows) < self._min:
            return None
        found = self._lams.get(usd_per_1k)
        if found is None:
            found = self._lams[usd_per_1k] = self._solve(usd_per_1k / 1000.0)
        return found

    def _solve(self, budget: float) -> float:
        import numpy as np

        from tokenomy.routing.sweep import choose, lambda_scale

        expected = np.array([e for e, _ in self._rows])
        costs = np.array([c for _, c in self._rows])
        rows = np.arange(len(costs))

        def spend(lam: float) -> float:
            return float(costs[rows, choose(expected, costs, lam)].mean())

        high = lambda_scale(expected, costs)
        lo, hi = (-high if self._two else 0.0), high  # spend() falls as λ rises
        if spend(lo) <= budget:
            return lo
        if spend(hi) > budget:
            return hi
        for _ in range(50):
            mid = (lo + hi) / 2
            if spend(mid) > budget:
                lo = mid
            else:
                hi = mid
        return hi

