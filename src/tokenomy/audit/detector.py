"""How good the audit's paraphrase detector is, and what its hit count says about the true paraphrase share.

The detector (``paraphrase.py``: WordLlama cosine ≥ a threshold, and the same numbers) was measured on labelled pairs by
``bench/paraphrase_detector.py``; the counts at the audit's threshold ship in ``data/paraphrase_detector.json`` and
``tests/audit/test_detector.py`` measures them again. From them, with 95 % Wilson score intervals:

- precision P = true hits / hits; recall R = true hits / true pairs;
- the paraphrase share a log really has is estimated as observed share × P / R, bounded by the observed share's own
  interval (the sample is finite) combined with the ends of P's and R's intervals:
  low = observed_low × P_low / R_high, high = min(1, observed_high × P_high / R_low).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MEASURED = Path(__file__).with_name("data") / "paraphrase_detector.json"
Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def document(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "low": round(self.low, 4), "high": round(self.high, 4)}


def wilson(successes: int, trials: int) -> Interval:
    """The share ``successes / trials`` with its 95 % Wilson score interval (0 to 1 when there are no trials)."""
    if trials <= 0:
        return Interval(0.0, 0.0, 1.0)
    share = successes / trials
    centre = (share + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * math.sqrt(share * (1 - share) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class DetectorQuality:
    threshold: float
    true_hits: int
    true_pairs: int
    negatives: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (false hits, pairs)
    pairs_source: str = ""

    @property
    def false_hits(self) -> int:
        return sum(hits for hits, _ in self.negatives.values())

    def precision(self) -> Interval:
        return wilson(self.true_hits, self.true_hits + self.false_hits)

    def recall(self) -> Interval:
        return wilson(self.true_hits, self.true_pairs)

    def estimate(self, hits: int, sampled: int) -> Interval:
        """The true paraphrase share of a sample in which the detector found ``hits`` of ``sampled``."""
        seen, p, r = wilson(hits, sampled), self.precision(), self.recall()
        if r.value == 0 or r.low == 0:
            return Interval(seen.value, seen.low, 1.0)
        return Interval(min(1.0, seen.value * p.value / r.value), seen.low * p.low / r.high,
                        min(1.0, seen.high * p.high / r.low))

    def document(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "true_hits": self.true_hits, "true_pairs": self.true_pairs,
                "negatives": {k: {"false_hits": h, "pairs": n} for k, (h, n) in sorted(self.negatives.items())},
                "precision": self.precision().document(), "recall": self.recall().document(),
                "pairs_source": self.pairs_source}

    @classmethod
    def load(cls, path: Path = MEASURED) -> DetectorQuality:
        raw = json.loads(path.read_text(encoding="utf-8"))
        negatives = {k: (int(v["false_hits"]), int(v["pairs"])) for k, v in raw["negatives"].items()}
        return cls(float(raw["threshold"]), int(raw["true_hits"]), int(raw["true_pairs"]), negatives,
                   str(raw.get("pairs_source", "")))


def count_pairs(pairs: Iterable[Mapping[str, Any]], embed: Callable[[list[str]], np.ndarray],
                threshold: float) -> DetectorQuality:
    """Hits of the audit's detector (``cosine >= threshold`` and the same numbers) over labelled pairs (``a``, ``b``,
    ``same``, ``kind``); ``embed`` returns unit vectors, one row per text."""
    import numpy as np

    from tokenomy.audit.paraphrase import numbers_of

    rows = list(pairs)
    a = embed([str(r["a"]) for r in rows])
    b = embed([str(r["b"]) for r in rows])
    same_numbers = np.array([numbers_of(str(r["a"])) == numbers_of(str(r["b"])) for r in rows])
    hit = (np.einsum("ij,ij->i", a, b) >= threshold) & same_numbers
    true_hits = sum(1 for r, h in zip(rows, hit, strict=True) if r["same"] and h)
    negatives: dict[str, tuple[int, int]] = {}
    for r, h in zip(rows, hit, strict=True):
        if not r["same"]:
            hits, n = negatives.get(str(r["kind"]), (0, 0))
            negatives[str(r["kind"])] = (hits + int(bool(h)), n + 1)
    positives = sum(1 for r in rows if r["same"])
    return DetectorQuality(threshold, true_hits, positives, negatives,
                           f"{positives:,} paraphrase and {len(rows) - positives:,} other labelled pairs "
                           "(bench/data/paraphrase_pairs.jsonl)")
