"""Learning the threshold from feedback: the shipped calibration is a prior, this is the traffic's own evidence.

Every labelled lookup (a user's verdict on a served hit, or a label revealed after the fact in ``cache eval
--online``) is kept as ``(score, correct)``. The threshold is the lowest score above which the labelled lookups
were wrong at most ``max_error`` of the time with 95 % confidence (the Wilson upper bound on the wrong share, so
30 clean lookups do not license a 2 % bound: with none wrong it takes about 130), and only once at least
``min_evidence`` labelled lookups lie above it; until then the calibrated threshold stands. Only the latest
``window`` labels count, so the threshold follows the traffic and the work per refresh stays bounded.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

Z_95 = 1.645  # one-sided 95 %
Z_ONLINE = 2.326  # one-sided 99 %: the online rule tests many cuts on data it keeps reusing


def wrong_share_upper(wrong: int, n: int, z: float = Z_95) -> float:
    """Wilson score upper confidence bound on a proportion ``wrong / n``."""
    if n == 0:
        return 1.0
    p, z2 = wrong / n, z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z2 / n))


class OnlineThreshold:
    def __init__(self, max_error: float, prior_threshold: float, *, min_evidence: int = 30,
                 refresh_every: int = 10, window: int = 20_000) -> None:
        self._max_error, self._prior = max_error, prior_threshold
        self._min_evidence, self._refresh_every = min_evidence, refresh_every
        self._scores: list[float] = []  # ascending
        self._correct: list[bool] = []  # aligned with _scores
        self._arrivals: deque[tuple[float, bool]] = deque()
        self._window = window
        self._since_refresh = 0
        self._threshold = prior_threshold

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def observations(self) -> int:
        return len(self._scores)

    def observe(self, score: float, correct: bool) -> None:
        at = bisect.bisect_left(self._scores, score)
        self._scores.insert(at, score)
        self._correct.insert(at, correct)
        self._arrivals.append((score, correct))
        if len(self._arrivals) > self._window:
            old_score, old_correct = self._arrivals.popleft()
            at = bisect.bisect_left(self._scores, old_score)
            while self._correct[at] != old_correct:  # equal scores: drop one with the same label
                at += 1
            del self._scores[at], self._correct[at]
        self._since_refresh += 1
        if self._since_refresh >= self._refresh_every:
            self._since_refresh = 0
            self._threshold = self._solve()

    def _solve(self) -> float:
        best = self._prior
        wrong = n = 0
        for i in range(len(self._scores) - 1, -1, -1):  # walk the cut down from the top score
            n += 1
            wrong += not self._correct[i]
            if i > 0 and self._scores[i - 1] == self._scores[i]:
                continue  # a cut must not split equal scores
            if n >= self._min_evidence and wrong_share_upper(wrong, n, Z_ONLINE) <= self._max_error:
                best = self._scores[i]
        return best
