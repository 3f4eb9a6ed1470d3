"""The paraphrase detector's shipped quality figures are what it measures on the labelled pairs, and the estimate of
a log's true paraphrase share follows from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenomy.audit.detector import DetectorQuality, count_pairs, wilson
from tokenomy.audit.paraphrase import THRESHOLD, numbers_of

PAIRS = Path(__file__).parents[2] / "bench" / "data" / "paraphrase_pairs.jsonl"


def test_the_shipped_figures_are_measured_again_here() -> None:
    pytest.importorskip("wordllama")
    from tokenomy.embeddings.static import WordLlamaEmbedder

    embedder = WordLlamaEmbedder.load()
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    measured = count_pairs(pairs, lambda texts: embedder.embed(texts).vectors, THRESHOLD)
    shipped = DetectorQuality.load()
    assert measured.document() == shipped.document()
    assert shipped.threshold == THRESHOLD and shipped.true_pairs == 999
    assert shipped.negatives["gsm8k-number"][0] == 0  # one number changed is never a hit: the numbers guard


def test_numbers_guard_and_wilson_intervals() -> None:
    assert numbers_of("Janet has 3 apples and 12 pears") == ("12", "3")
    assert numbers_of("Janet has 5 apples and 12 pears") != numbers_of("Janet has 3 apples and 12 pears")
    # 8 of 10: Wilson 95 % is about [0.490, 0.943]
    interval = wilson(8, 10)
    assert interval.value == 0.8 and interval.low == pytest.approx(0.490, abs=1e-3)
    assert interval.high == pytest.approx(0.943, abs=1e-3)
    assert wilson(0, 0).high == 1.0


def test_the_estimate_corrects_the_observed_share_by_precision_over_recall() -> None:
    quality = DetectorQuality(0.85, true_hits=75, true_pairs=100, negatives={"x": (0, 100)})
    estimate = quality.estimate(hits=150, sampled=5_000)
    # observed 3 %, precision 1.0, recall 0.75: 3 % / 0.75 = 4 %
    assert estimate.value == pytest.approx(0.04)
    assert estimate.low < 0.04 < estimate.high
    seen, p, r = wilson(150, 5_000), quality.precision(), quality.recall()
    assert estimate.low == pytest.approx(seen.low * p.low / r.high)
    assert estimate.high == pytest.approx(seen.high * p.high / r.low)
