"""Paraphrase matching on a sample, with hand-made unit vectors standing in for the embedder."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tokenomy.audit.paraphrase import ParaphraseSample, SampleItem

VECTORS = {"a": [1.0, 0.0], "a'": [0.95, 0.312], "b": [0.0, 1.0], "far": [0.6, 0.8]}


def _embed(texts: list[str]) -> np.ndarray:
    return np.array([VECTORS[t] for t in texts]) / np.linalg.norm([VECTORS[t] for t in texts], axis=1, keepdims=True)


def _item(ts: float, text: str, group: str = "m:p", usd: str = "1") -> SampleItem:
    return SampleItem(ts, group, text, Decimal(usd), Decimal(usd) / 2)


def test_hits_need_an_earlier_similar_prompt_in_the_same_group_within_the_ttl() -> None:
    sample = ParaphraseSample(ttl_s=100, size=10, threshold=0.92)
    for item in [_item(0, "a"), _item(10, "a'", usd="2"),  # paraphrase of an earlier one: hit
                 _item(20, "b"), _item(30, "far"),  # cos(a, far) = 0.6: no
                 _item(40, "a'", group="other:p"),  # other model or prefix: no
                 _item(500, "a'", usd="4"),  # the earlier ones are older than the TTL: no
                 _item(510, "a", usd="8")]:  # the a' at 500 is within the TTL: hit
        sample.offer(item)
    result = sample.measure(_embed)
    assert (result.sampled, result.hits) == (7, 2)
    assert result.cost_usd == Decimal(10) and result.remaining_usd == Decimal(5)
    assert result.sample_cost_usd == Decimal(1 + 2 + 1 + 1 + 1 + 4 + 8)


def test_the_sample_is_bounded_to_the_first_requests() -> None:
    sample = ParaphraseSample(ttl_s=100, size=2)
    for ts in range(5):
        sample.offer(_item(ts, "a"))
    result = sample.measure(_embed)
    assert (result.sampled, result.hits) == (2, 1)
    assert pytest.approx(float(np.dot(*_embed(["a", "a'"])))) == 0.95 / np.hypot(0.95, 0.312)
