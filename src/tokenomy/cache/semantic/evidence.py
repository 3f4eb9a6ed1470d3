"""The verified policy's evidence: where it is safe to serve, learned only from this deployment's own verified
lookups (issue 22). No calibration made on other data decides a hit.

*Regions.* A lookup's neighbourhood is its *kind* (:data:`KINDS`, from the pair's features: the query and the entry
differ in a number; or in a negation, an opposite, a question or relation word; or in none of these) and its score.
The verifier's score (``verifier.py``: the probability it gives that serving the nearest entry is right) orders the
lookups of a kind; a region is every lookup of the kind scoring at least one of :data:`CUTS` (``score >= cut``), so
a kind's regions are nested, from the narrowest (the top cut) to the widest. Evidence is kept per *band* (between
two neighbouring cuts) and pooled upwards, so a region's evidence is every verified label of its kind that scored
at least its cut. Kinds never pool: a number changed is not vouched for by paraphrases that kept their numbers.

*Labels.* A verified lookup is one whose fresh upstream answer was compared with the candidate entry's cached
answer: ``wrong`` when they differ. ``exact`` when the comparison was exact (structured answers, or the same text);
otherwise an answer-equivalence check made it, which misses a share of the wrong ones: its measured sensitivity
(lower bound) ``checker_sensitivity`` divides the bound of a region holding such labels (``w <= o / s``: a check
that flags a wrong answer with probability at least ``s`` and never invents agreement can hide at most that much).

*Serving.* The regions are tested in a fixed sequence, narrowest first, each at one-sided ``1 - alpha`` (Wilson
upper bound on the wrong share at most ``max_error``); the sequence stops at the first region that fails, or that
holds a band on its own clearly worse than ``max_error`` (Wilson lower bound above it: pooling must not let a good
band carry a bad one). Testing nested hypotheses in an order fixed in advance needs no split of ``alpha`` over the
cuts (fixed-sequence testing controls the family-wise error at ``alpha`` whatever the dependence). The order is
fixed by the labels' scores alone, never by their outcomes: a region enters the sequence only once it holds as many
labels as a clean region needs to pass (:func:`labels_to_pass`), so the sequence starts at the narrowest region
that could pass. A lookup may be served when its score reaches the widest region that passed and whose own band
holds at least ``min_labels`` labels. With no such cut nothing is served: until the evidence is there the cache
only verifies.

*Staying honest.* A servable lookup is still verified with probability ``explore`` (its answer is fresh, the hit is
given up), so the served region keeps receiving an unbiased sample of labels. If the latest 8, 16, 32 or ``recent``
labels that arrived in the served region while it was served are wrong more often than ``max_error`` with
confidence (Wilson *lower* bound above ``max_error``, Bonferroni over the four windows), the traffic has changed:
in the bands where they found wrong answers the older labels are dropped, and the region must be certified again
from new evidence. Each band keeps at most ``window`` labels (newest), so old traffic is forgotten.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist

from tokenomy.cache.semantic.features import FEATURE_NAMES
from tokenomy.cache.semantic.online import Z_95, wrong_share_upper

CUTS = (0.99, 0.98, 0.96, 0.94, 0.92, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
NEVER = 1.01
ALARM_WINDOWS = (8, 16, 32)  # and the whole ``recent`` window
PROBATION = 8  # clean labels a wrong one in the served region must be followed by before it serves again
ALPHA = 0.025  # each region's test is one-sided 97.5 % (the sequence needs no split over the cuts)
SHIFT_BUDGET = 0.5  # the share of the allowed wrong hits a change of the traffic may cost before it is seen
PRIOR_HITS = 20  # hits credited to a fresh region for that budget (at max_error 0.1: one wrong hit)
Z_ALARM = NormalDist().inv_cdf(1 - 0.05 / (len(ALARM_WINDOWS) + 1))
KINDS = ("plain", "number differs", "negation, opposite, question or relation word differs")
_NUMBERS = FEATURE_NAMES.index("numbers_differ")
_WORDS = tuple(FEATURE_NAMES.index(name) for name in (
    "negation_differs", "opposed", "question_word_differs", "relation_words_differ", "direction_swapped"))


def kind_of(features: tuple[float, ...] | list[float]) -> int:
    """The lookup's kind (an index into :data:`KINDS`) from its pair features."""
    if features[_NUMBERS]:
        return 1
    return 2 if any(features[i] for i in _WORDS) else 0


def labels_to_pass(max_error: float, z: float) -> int:
    """The fewest labels, none wrong, whose Wilson upper bound on the wrong share is at most ``max_error``."""
    n = max(1, math.ceil(z * z * (1 - max_error) / max_error) - 1)
    while wrong_share_upper(0, n, z) > max_error:
        n += 1
    return n


def wrong_share_lower(wrong: int, n: int, z: float = Z_95) -> float:
    """Wilson score lower confidence bound on ``wrong / n``."""
    return 0.0 if n == 0 else max(0.0, 1.0 - wrong_share_upper(n - wrong, n, z))


@dataclass(frozen=True, slots=True)
class Label:
    score: float
    wrong: bool
    exact: bool = True  # an exact comparison; False: the answer-equivalence check said so
    kind: int = 0  # see KINDS


@dataclass(slots=True)
class _Band:
    labels: deque[tuple[int, bool, bool]]  # (seq, wrong, exact), oldest first
    wrong: int = 0
    inexact: int = 0


class Evidence:
    """One :class:`Ladder` of regions per kind."""

    def __init__(self, max_error: float, *, alpha: float = ALPHA, min_labels: int = 20, window: int = 2000,
                 recent: int = 50, checker_sensitivity: float = 1.0, cuts: tuple[float, ...] = CUTS,
                 probation: int = PROBATION, shift_budget: float = SHIFT_BUDGET) -> None:
        self.max_error = max_error
        self._ladders = [Ladder(max_error, alpha=alpha, min_labels=min_labels, window=window, recent=recent,
                                checker_sensitivity=checker_sensitivity, cuts=cuts, probation=probation,
                                shift_budget=shift_budget) for _ in KINDS]
        self.cuts, self.floor, self.z = self._ladders[0].cuts, self._ladders[0].floor, self._ladders[0].z

    @property
    def threshold(self) -> float:
        """The lowest score served now for plain lookups (NEVER when none is)."""
        return self._ladders[0].threshold

    def thresholds(self) -> dict[str, float]:
        return {name: ladder.threshold for name, ladder in zip(KINDS, self._ladders, strict=True)}

    def servable(self, score: float, kind: int = 0) -> bool:
        return self._ladders[kind].servable(score)

    def verify_share(self, kind: int, floor: float) -> float:
        """The probability that a servable lookup of this kind is verified rather than served (see ``Ladder``)."""
        return self._ladders[kind].verify_share(floor)

    def served(self, kind: int) -> None:
        """A lookup of this kind was served (it counts towards the kind's shift budget)."""
        self._ladders[kind].served_hits += 1

    def observe(self, label: Label) -> None:
        self._ladders[label.kind if 0 <= label.kind < len(KINDS) else 0].observe(label)

    def bound(self, cut: int, kind: int = 0) -> tuple[int, int, float]:
        return self._ladders[kind].bound(cut)

    @property
    def observed(self) -> int:
        return sum(ladder.observed for ladder in self._ladders)

    @property
    def resets(self) -> int:
        return sum(ladder.resets for ladder in self._ladders)


class Ladder:
    """The nested regions of one kind."""

    def __init__(self, max_error: float, *, alpha: float = ALPHA, min_labels: int = 20, window: int = 2000,
                 recent: int = 50, checker_sensitivity: float = 1.0, cuts: tuple[float, ...] = CUTS,
                 probation: int = PROBATION, shift_budget: float = SHIFT_BUDGET) -> None:
        if not 0 < checker_sensitivity <= 1:
            raise ValueError("checker_sensitivity must be in (0, 1]")
        if probation < 0 or shift_budget < 0:
            raise ValueError("probation and shift_budget must not be negative")
        self._probation, self._budget = probation, shift_budget
        self._clean_run = probation  # clean labels in the served region since its latest wrong one
        self.served_hits = 0  # lookups served since the latest alarm (this process's own)
        self.max_error = max_error
        self.cuts = tuple(sorted(cuts, reverse=True))
        self.floor = self.cuts[-1]
        self.z = NormalDist().inv_cdf(1 - alpha)
        # a region enters the sequence with as many labels as a clean one needs to pass were they all checked
        # inexactly (a count fixed in advance: whether a label is exact depends on the answers)
        self._to_pass = labels_to_pass(max_error * checker_sensitivity, self.z)
        self._min_labels, self._window, self._sensitivity = min_labels, window, checker_sensitivity
        self._bands = [_Band(deque()) for _ in self.cuts]
        self._seq = 0
        self._served = -1  # index of the lowest certified cut; -1: none
        self._recent: deque[tuple[int, bool, int]] = deque(maxlen=recent)  # (seq, wrong, band), served region
        self._recent_wrong = 0
        self.resets = 0
        self.observed = 0

    @property
    def threshold(self) -> float:
        """The lowest score served now (NEVER when nothing is)."""
        return self.cuts[self._served] if self._served >= 0 else NEVER

    def servable(self, score: float) -> bool:
        """Certified, and not on probation (a wrong label in the served region not yet followed by ``probation``
        clean ones: until then every lookup there is verified, so the alarm gets its labels at once)."""
        return self._served >= 0 and score >= self.cuts[self._served] and self._clean_run >= self._probation

    @property
    def on_probation(self) -> bool:
        return self._clean_run < self._probation

    def verify_share(self, floor: float) -> float:
        """``max(floor, 1 / (1 + shift_budget * max_error * (served_hits + PRIOR_HITS)))``: a servable lookup is
        verified with this probability. After a change of the traffic, (1 - e) / e wrong hits are served (in
        expectation) before the first wrong label puts the region on probation; this keeps that at most
        ``shift_budget * max_error * (served_hits + PRIOR_HITS)``: a share ``shift_budget`` of the wrong hits the
        bound allows over what was served so far, plus 20 hits' worth for a fresh region (at ``max_error`` 0.02 a
        fresh region verifies 5 lookups in 6, at 0.1 one in 2)."""
        if not self._budget:
            return floor
        return max(floor, 1.0 / (1.0 + self._budget * self.max_error * (self.served_hits + PRIOR_HITS)))

    def _band_of(self, score: float) -> int:
        for i, cut in enumerate(self.cuts):
            if score >= cut:
                return i
        return -1

    def observe(self, label: Label) -> None:
        band = self._band_of(label.score)
        if band < 0:
            return
        self.observed += 1
        self._seq += 1
        b = self._bands[band]
        b.labels.append((self._seq, label.wrong, label.exact))
        b.wrong += label.wrong
        b.inexact += not label.exact
        if len(b.labels) > self._window:
            _, wrong, exact = b.labels.popleft()
            b.wrong -= wrong
            b.inexact -= not exact
        if 0 <= band <= self._served:
            self._clean_run = 0 if label.wrong else self._clean_run + 1
            if len(self._recent) == self._recent.maxlen:
                self._recent_wrong -= self._recent[0][1]
            self._recent.append((self._seq, label.wrong, band))
            self._recent_wrong += label.wrong
            if self._changed():
                self._reset(self._served)
        self._certify()

    def _changed(self) -> bool:
        """Are the latest 8, 16, 32 or ``recent`` labels of the served region wrong more often than ``max_error``
        with confidence (Bonferroni over the windows)? Short windows see a sudden change sooner; long ones a slow."""
        latest = list(self._recent)
        for k in ALARM_WINDOWS:
            tail = latest[-k:]
            if len(tail) == k and wrong_share_lower(sum(w for _, w, _ in tail), k, Z_ALARM) > self.max_error:
                return True
        return wrong_share_lower(self._recent_wrong, len(latest), Z_ALARM) > self.max_error

    def _reset(self, served: int) -> None:
        """The served region went bad: in each band where the latest labels found wrong answers, forget the labels
        from before those latest ones (the other bands keep theirs)."""
        cutoff = self._recent[0][0]
        bad = {band for _, wrong, band in self._recent if wrong}
        for band in (self._bands[i] for i in sorted(bad)):
            while band.labels and band.labels[0][0] < cutoff:
                _, wrong, exact = band.labels.popleft()
                band.wrong -= wrong
                band.inexact -= not exact
        self.resets += 1
        self.served_hits = 0  # a region certified again starts with a high verify share
        self._served = -1
        self._recent.clear()
        self._recent_wrong = 0

    def bound(self, cut: int) -> tuple[int, int, float]:
        """Labels, wrong labels and the upper bound of the wrong share for the region of ``cuts[cut]``."""
        n = wrong = inexact = 0
        for band in self._bands[:cut + 1]:
            n += len(band.labels)
            wrong += band.wrong
            inexact += band.inexact
        return n, wrong, self._upper(wrong, n, inexact)

    def _upper(self, wrong: int, n: int, inexact: int) -> float:
        upper = wrong_share_upper(wrong, n, self.z)
        return min(1.0, upper / self._sensitivity) if inexact else upper

    def _certify(self) -> None:
        """The widest region that passed the fixed sequence (narrowest first; a region enters it once it holds
        ``labels_to_pass`` labels; it stops at the first region over ``max_error`` or holding a band clearly worse
        than ``max_error``) and whose own band holds ``min_labels``."""
        served = -1
        n = wrong = inexact = 0
        for i, band in enumerate(self._bands):
            if wrong_share_lower(band.wrong, len(band.labels)) > self.max_error:
                break
            n += len(band.labels)
            wrong += band.wrong
            inexact += band.inexact
            if n < self._to_pass:
                continue  # not in the sequence yet: too few labels to pass even if every one were right
            if self._upper(wrong, n, inexact) > self.max_error:
                break
            if len(band.labels) >= self._min_labels:
                served = i
        if served != self._served:
            self._served = served
            self._recent.clear()
            self._recent_wrong = 0

    def regions(self) -> list[dict[str, float | int]]:
        """Per cut: its labels, wrong labels and bound (for ``/healthz``-style reports and tests)."""
        out = []
        for i, cut in enumerate(self.cuts):
            n, wrong, upper = self.bound(i)
            out.append({"cut": cut, "labels": n, "wrong": wrong, "upper": round(upper, 4)})
        return out
