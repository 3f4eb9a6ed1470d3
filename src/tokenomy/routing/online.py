"""Share targets held on live traffic.

A share target ("at most S of calls to the frontier") is calibrated on the training rows: the μ at which S of
them went to the frontier. On traffic unlike the training prompts that μ can be far off (a router trained on GSM8K
sent 74 % of MMLU prompts to the frontier at ``share=0.3``, docs/routing.md). The rule sends a call to the
frontier when its expected gain over the best other model is above μ, so the μ that realises S on the traffic
actually served is the (1 − S) quantile of the recent gains. :class:`ShareTracker` keeps the latest gains of one
router (every request, whatever its target: the traffic does not depend on the target) and gives that quantile
once it has seen enough of them; until then the calibrated μ stands.
"""

from __future__ import annotations

from collections import deque

MIN_SAMPLES = 100


class ShareTracker:
    """The latest ``window`` expected frontier gains of one router's requests."""

    def __init__(self, window: int, min_samples: int = MIN_SAMPLES) -> None:
        self._gains: deque[float] = deque(maxlen=window)
        self._min = min(min_samples, window)
        self._sorted: list[float] | None = None

    def observe(self, gain: float) -> None:
        self._gains.append(gain)
        self._sorted = None

    def __len__(self) -> int:
        return len(self._gains)

    def mu(self, share: float) -> float | None:
        """The frontier charge that sends ``share`` of the recent requests to the frontier; None before
        ``min_samples`` requests have been seen."""
        if len(self._gains) < self._min:
            return None
        if self._sorted is None:
            self._sorted = sorted(self._gains)
        ranked = self._sorted
        if share <= 0.0:
            return ranked[-1] + 1.0  # above every recent gain: no frontier call
        keep = round(share * len(ranked))  # calls to send: the ``keep`` largest gains
        if keep >= len(ranked):
            return ranked[0] - 1.0
        return ranked[len(ranked) - keep - 1]  # the largest gain that is not sent
