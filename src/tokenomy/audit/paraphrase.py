"""Semantic-cache potential: paraphrases among the log's first requests, found with WordLlama static embeddings.

The sample is the first ``size`` requests that have a prompt and are not exact repeats (contiguous, so every
earlier request a paraphrase could match is in it; biased to the start of the log). A request is a hit when an
earlier sampled request with the same model and the same prefix (system prompt, tools, earlier turns), seen within
the TTL, has a last user message with cosine similarity >= ``threshold`` and the same numbers in it (static
embeddings hardly see numbers: "3 apples" and "5 apples" score ~0.99, and a cached answer to one is wrong for the
other). Embedding and matching run once, after the streaming pass, in one batch; memory is bounded by ``size``.
The detector's measured precision and recall are in ``detector.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

THRESHOLD = 0.85
SAMPLE_SIZE = 5_000
_CHUNK = 1_000
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_of(text: str) -> tuple[str, ...]:
    """The numbers a text mentions, sorted: two prompts are paraphrase candidates only when these are equal."""
    return tuple(sorted(_NUMBER.findall(text)))


@dataclass(frozen=True, slots=True)
class SampleItem:
    ts: float
    group: str  # model + prefix hash: a semantic cache answers only within the same model and context
    text: str
    cost_usd: Decimal
    remaining_usd: Decimal  # what the request still costs after routing, prompt caching and batch


@dataclass(frozen=True, slots=True)
class ParaphraseResult:
    sampled: int
    hits: int
    cost_usd: Decimal  # what the hits cost
    remaining_usd: Decimal  # what the hits still cost after the other strategies (saved on top of them)
    sample_cost_usd: Decimal


@dataclass
class ParaphraseSample:
    ttl_s: int
    size: int = SAMPLE_SIZE
    threshold: float = THRESHOLD
    items: list[SampleItem] = field(default_factory=list)

    def offer(self, item: SampleItem) -> None:
        if len(self.items) < self.size:
            self.items.append(item)

    def measure(self, embed: Callable[[list[str]], np.ndarray]) -> ParaphraseResult:
        """``embed`` returns unit vectors, one row per text."""
        import numpy as np

        items = self.items
        hits = np.zeros(len(items), dtype=bool)
        if items:
            vectors = embed([i.text for i in items])
            ts = np.array([i.ts for i in items])
            groups = np.unique([f"{i.group}|{' '.join(numbers_of(i.text))}" for i in items], return_inverse=True)[1]
            for start in range(0, len(items), _CHUNK):
                rows = slice(start, min(start + _CHUNK, len(items)))
                sims = vectors[rows] @ vectors.T  # (chunk, n)
                earlier = np.arange(len(items))[None, :] < np.arange(rows.start, rows.stop)[:, None]
                fresh = (ts[rows][:, None] - ts[None, :]) <= self.ttl_s
                same = groups[rows][:, None] == groups[None, :]
                hits[rows] = ((sims >= self.threshold) & earlier & fresh & same).any(axis=1)
        chosen = [item for item, hit in zip(items, hits, strict=True) if hit]
        return ParaphraseResult(len(items), len(chosen), sum((i.cost_usd for i in chosen), Decimal(0)),
                                sum((i.remaining_usd for i in chosen), Decimal(0)),
                                sum((i.cost_usd for i in items), Decimal(0)))
