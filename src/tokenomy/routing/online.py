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
  B / 1,000 (bisection; recomputed every :data:`REFRESH` requests). The gateway settles each routed request's
  real ledger cost against the estimate it was routed on (:meth:`TrafficHold.settle`); once a model has
  :data:`MIN_SETTLED` of them, its estimated costs are scaled by real / estimated over its latest settled
  requests (a model with fewer takes the ratio of every settled request), so a router whose cost model is off on
  this traffic (longer answers, other prices, cache hits) still meets the budget in dollars actually spent.

Until then the calibrated point stands. Quality targets are not held: on foreign traffic the expected scores
themselves are what is off.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

MIN_SAMPLES = 100
REFRESH = 50  # requests between two budget solves
MIN_SETTLED = 20  # settled requests of a model before its estimated costs are corrected


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
        self._settled: deque[tuple[int, float, float]] = deque(maxlen=window)  # (model, estimated, real) USD

    def settle(self, model: int, estimated: float, real: float) -> None:
        """A served request's real cost for ``model`` (column index), next to the estimate it was routed on."""
        if math.isfinite(estimated) and math.isfinite(real) and estimated > 0.0 and real >= 0.0:
            self._settled.append((model, estimated, real))

    def cost_factors(self, models: int) -> list[float]:
        """Per model, real / estimated cost over its latest settled requests once it has :data:`MIN_SETTLED`;
        a model with fewer (one the router rarely picks) takes the ratio of all settled requests, and 1.0 stands
        until there are that many."""
        count, estimated, real = [0] * models, [0.0] * models, [0.0] * models
        for j, guess, spent in self._settled:
            if j < models:
                count[j] += 1
                estimated[j] += guess
                real[j] += spent
        pooled = sum(real) / sum(estimated) if sum(count) >= MIN_SETTLED else 1.0
        return [real[j] / estimated[j] if count[j] >= MIN_SETTLED else pooled for j in range(models)]

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
        costs = costs * np.array(self.cost_factors(costs.shape[1]))[None, :]
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

